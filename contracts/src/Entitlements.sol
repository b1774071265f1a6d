// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title Entitlements of one project's beneficiaries.
/// @notice The contract holds the project's tokens. The portal's signer (OPERATOR_ROLE) allocates
/// entitlements to pseudonymous beneficiary addresses (nobody holds their keys) and, when a vendor
/// redeems, moves tokens from this contract to the vendor. Funds never leave for a beneficiary
/// address, so a beneficiary "balance" is only the number in `entitlementOf`.
///
/// Invariant: `outstanding` equals the sum of all `entitlementOf` values and never exceeds the
/// token balance of this contract; `available()` is the part of the balance not yet promised.
///
/// Every operator call that moves value carries an id chosen by the portal (`batchId`,
/// `redemptionId`). The id is recorded on success, so a job that is retried after a crash (when
/// the portal cannot know whether its transaction was mined) fails with a clear error instead of
/// paying twice; the portal reads `batchDone` / `redemptionDone` before resending.
contract Entitlements is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    IERC20 public immutable token;

    mapping(address beneficiary => uint256) public entitlementOf;
    uint256 public outstanding;
    mapping(bytes32 batchId => bool) public batchDone;
    mapping(bytes32 redemptionId => bool) public redemptionDone;

    event Allocated(address indexed beneficiary, uint256 amount);
    event BatchAllocated(bytes32 indexed batchId, uint256 count, uint256 amountEach);
    event Redeemed(
        bytes32 indexed redemptionId, address indexed beneficiary, address indexed vendor, uint256 amount
    );
    event Revoked(address indexed beneficiary, uint256 amount);
    event UnallocatedWithdrawn(address indexed to, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error ZeroId();
    error EmptyBatch();
    error BatchAlreadyDone(bytes32 batchId);
    error RedemptionAlreadyDone(bytes32 redemptionId);
    /// @param needed what the batch would add to `outstanding` (count × amount)
    /// @param available the unallocated balance, as `available()` returns it
    error InsufficientFunding(uint256 needed, uint256 available);
    error InsufficientEntitlement(uint256 available, uint256 requested);

    constructor(address token_, address admin, address operator) {
        if (token_ == address(0) || admin == address(0) || operator == address(0)) {
            revert ZeroAddress();
        }
        token = IERC20(token_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    /// @notice Adds `amount` to the entitlement of each address in `beneficiaries`.
    /// @dev This is the hot path (tens of thousands of addresses per distribution), so the loop
    /// does only what each item needs: one calldata read, the zero-address check, one storage
    /// update and one event. The running total is computed once before the loop and written once.
    function allocate(bytes32 batchId, address[] calldata beneficiaries, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (batchId == bytes32(0)) revert ZeroId();
        if (batchDone[batchId]) revert BatchAlreadyDone(batchId);
        if (amount == 0) revert ZeroAmount();
        uint256 count = beneficiaries.length;
        if (count == 0) revert EmptyBatch();

        // Checked multiplication and addition: an overflow here must revert, not wrap.
        uint256 needed = count * amount;
        uint256 unallocated = available();
        if (needed > unallocated) revert InsufficientFunding(needed, unallocated);

        for (uint256 i; i < count;) {
            address beneficiary = beneficiaries[i];
            if (beneficiary == address(0)) revert ZeroAddress();
            unchecked {
                // Cannot overflow: every entitlement is part of `outstanding + needed`, which was
                // just shown to be at most the token balance (a uint256).
                entitlementOf[beneficiary] += amount;
                ++i;
            }
            emit Allocated(beneficiary, amount);
        }

        outstanding += needed;
        batchDone[batchId] = true;
        emit BatchAllocated(batchId, count, amount);
    }

    /// @notice Pays `amount` of `beneficiary`'s entitlement to `vendor`.
    function redeem(bytes32 redemptionId, address beneficiary, address vendor, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (redemptionId == bytes32(0)) revert ZeroId();
        if (redemptionDone[redemptionId]) revert RedemptionAlreadyDone(redemptionId);
        if (beneficiary == address(0) || vendor == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 entitled = entitlementOf[beneficiary];
        if (amount > entitled) revert InsufficientEntitlement(entitled, amount);

        // State first, transfer last: the token is trusted, but the order costs nothing.
        redemptionDone[redemptionId] = true;
        unchecked {
            // amount <= entitled <= outstanding (the invariant), so neither can underflow.
            entitlementOf[beneficiary] = entitled - amount;
            outstanding -= amount;
        }
        token.safeTransfer(vendor, amount);
        emit Redeemed(redemptionId, beneficiary, vendor, amount);
    }

    /// @notice Cancels what is left of `beneficiary`'s entitlement and returns it to the
    /// unallocated pool. Revoking an address with nothing left succeeds and reports 0, so a
    /// retried revoke job does not fail.
    /// @return amount the entitlement that was released
    function revoke(address beneficiary) external onlyRole(OPERATOR_ROLE) returns (uint256 amount) {
        if (beneficiary == address(0)) revert ZeroAddress();
        amount = entitlementOf[beneficiary];
        if (amount != 0) {
            entitlementOf[beneficiary] = 0;
            unchecked {
                // amount <= outstanding (the invariant).
                outstanding -= amount;
            }
        }
        emit Revoked(beneficiary, amount);
    }

    /// @notice Token balance not promised to any beneficiary.
    function available() public view returns (uint256) {
        uint256 balance = token.balanceOf(address(this));
        uint256 promised = outstanding;
        // Saturates rather than reverting so the view stays usable even with a token that can
        // shrink balances behind the contract's back (our ProjectToken cannot).
        return balance > promised ? balance - promised : 0;
    }

    /// @notice Sends unallocated tokens back (e.g. at the end of a project); never touches what
    /// beneficiaries are entitled to.
    function withdrawUnallocated(address to, uint256 amount)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 unallocated = available();
        if (amount > unallocated) revert InsufficientFunding(amount, unallocated);
        token.safeTransfer(to, amount);
        emit UnallocatedWithdrawn(to, amount);
    }
}
