// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title The value unit of one project.
/// @notice Each project gets its own token so that its funds, decimals and supply are never mixed
/// with another project's. Only holders of MINTER_ROLE create supply; the admin starts with both
/// roles and may hand minting to a treasury and renounce it afterwards.
contract ProjectToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @dev Kept in the bytecode (immutable) rather than in storage: it never changes and every
    /// balance display in the portal reads it.
    uint8 private immutable _decimals;

    error ZeroAddress();

    constructor(string memory name_, string memory symbol_, uint8 decimals_, address admin)
        ERC20(name_, symbol_)
    {
        if (admin == address(0)) revert ZeroAddress();
        _decimals = decimals_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Creates `amount` base units for `to`.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice The number of decimals chosen for this project's currency (e.g. 2 for a voucher
    /// in cents, 0 for whole food parcels, 18 for an on-chain stable unit).
    function decimals() public view override returns (uint8) {
        return _decimals;
    }
}
