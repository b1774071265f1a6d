// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title Direct payments of a cash-transfer project.
/// @notice Unlike Entitlements, the tokens go straight to wallets the beneficiaries gave the
/// portal. The contract holds the project's funds; the portal's signer (OPERATOR_ROLE) pays a
/// batch of recipients the same amount each. A `batchId` is recorded on success so that a job
/// retried after a crash never pays a batch twice; the portal reads `batchDone` before resending.
contract CashTransfer is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    IERC20 public immutable token;

    mapping(bytes32 batchId => bool) public batchDone;

    event BatchDisbursed(bytes32 indexed batchId, uint256 count, uint256 amountEach);
    event Withdrawn(address indexed to, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error ZeroId();
    error EmptyBatch();
    error BatchAlreadyDone(bytes32 batchId);
    /// @param needed count × amount
    /// @param available this contract's token balance
    error InsufficientFunding(uint256 needed, uint256 available);

    constructor(address token_, address admin, address operator) {
        if (token_ == address(0) || admin == address(0) || operator == address(0)) {
            revert ZeroAddress();
        }
        token = IERC20(token_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    /// @notice Sends `amount` to each of `recipients` from this contract's balance. Each transfer
    /// emits the token's own Transfer event, which is what the portal indexes per recipient.
    function disburse(bytes32 batchId, address[] calldata recipients, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (batchId == bytes32(0)) revert ZeroId();
        if (batchDone[batchId]) revert BatchAlreadyDone(batchId);
        if (amount == 0) revert ZeroAmount();
        uint256 count = recipients.length;
        if (count == 0) revert EmptyBatch();

        // Checked up front so a short balance fails with the whole batch's figures rather than
        // the token's error on whichever transfer ran dry.
        uint256 needed = count * amount;
        uint256 balance = token.balanceOf(address(this));
        if (needed > balance) revert InsufficientFunding(needed, balance);

        // Marked before the external calls: the token is trusted, but the order costs nothing.
        batchDone[batchId] = true;
        for (uint256 i; i < count;) {
            address recipient = recipients[i];
            if (recipient == address(0)) revert ZeroAddress();
            token.safeTransfer(recipient, amount);
            unchecked {
                ++i;
            }
        }
        emit BatchDisbursed(batchId, count, amount);
    }

    /// @notice Returns funds (e.g. what is left when the project closes).
    function withdraw(address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        token.safeTransfer(to, amount);
        emit Withdrawn(to, amount);
    }
}
