// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @notice What EntitlementsV2 needs of its token: a balance and burning its own tokens.
interface IBurnableToken {
    function balanceOf(address account) external view returns (uint256);
    function burn(uint256 value) external;
}

/// @title Entitlements of one project's beneficiaries, with vendor balances and settlement.
/// @notice Version 2 of Entitlements. Redeemed value no longer leaves the contract for a vendor
/// address nobody can spend from: it stays here as `vendorBalanceOf(vendor)`, and `settle` burns
/// it once the vendor has been paid off chain (bank or mobile money). Tokens therefore never
/// leave this contract except by burning (settle) or by the admin (`withdrawUnallocated`).
///
/// Powers are split. The operator (the portal's hot key) allocates, revokes, redeems, registers
/// vendors and settles, each value move within caps per transaction and per day that only the
/// admin sets. The admin (the treasury signer, given at deploy) sets caps, grants roles and
/// withdraws what is not promised to anyone. A guardian pauses and resumes the value moves.
/// A stolen operator key can therefore, at worst, move value between entitlements and vendor
/// balances inside the contract and burn vendor balances, at the capped rate; it can take
/// nothing out.
///
/// Invariant: `outstanding` is the sum of `entitlementOf`, `vendorHeld` the sum of
/// `vendorBalanceOf`, and both together never exceed the token balance of this contract.
contract EntitlementsV2 is AccessControl, Pausable {
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @notice The value moves that are capped, each with its own limits and daily usage.
    enum Action {
        Allocate,
        Redeem,
        Settle
    }

    struct Limit {
        uint128 perTx;
        uint128 perDay;
    }

    /// @dev One slot: the day (block.timestamp / 1 days) and what was used on it.
    struct Usage {
        uint64 day;
        uint192 used;
    }

    IBurnableToken public immutable token;

    mapping(address beneficiary => uint256) public entitlementOf;
    uint256 public outstanding;
    mapping(address vendor => uint256) public vendorBalanceOf;
    uint256 public vendorHeld;
    mapping(address vendor => bool) public isVendor;
    mapping(bytes32 batchId => bool) public batchDone;
    mapping(bytes32 redemptionId => bool) public redemptionDone;
    mapping(bytes32 settlementId => bool) public settlementDone;
    mapping(Action action => Limit) public limits;
    mapping(Action action => Usage) public usage;

    event Allocated(address indexed beneficiary, uint256 amount);
    event BatchAllocated(bytes32 indexed batchId, uint256 count, uint256 amountEach);
    event Redeemed(
        bytes32 indexed redemptionId, address indexed beneficiary, address indexed vendor, uint256 amount
    );
    event Revoked(address indexed beneficiary, uint256 amount);
    event Settled(bytes32 indexed settlementId, address indexed vendor, uint256 amount);
    event VendorRegistered(address indexed vendor);
    event VendorUnregistered(address indexed vendor);
    event LimitSet(Action indexed action, uint256 perTx, uint256 perDay);
    event UnallocatedWithdrawn(address indexed to, uint256 amount);
    /// @notice A balance carried over from a contract of an earlier version (see `importBalances`).
    event Imported(bytes32 indexed batchId, address indexed account, bool vendor, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error ZeroId();
    error EmptyBatch();
    error LengthMismatch();
    error BatchAlreadyDone(bytes32 batchId);
    error RedemptionAlreadyDone(bytes32 redemptionId);
    error SettlementAlreadyDone(bytes32 settlementId);
    error NotRegisteredVendor(address vendor);
    error NotOperatorOrAdmin(address caller);
    /// @param needed what the call would promise (count × amount)
    /// @param available the unpromised balance, as `available()` returns it
    error InsufficientFunding(uint256 needed, uint256 available);
    error InsufficientEntitlement(uint256 available, uint256 requested);
    error InsufficientVendorBalance(uint256 available, uint256 requested);
    error OverTransactionCap(Action action, uint256 amount, uint256 cap);
    /// @param used what the action already moved on `day`
    error OverDailyCap(Action action, uint256 day, uint256 used, uint256 amount, uint256 cap);

    /// @param admin the treasury signer: DEFAULT_ADMIN and GUARDIAN (it may grant GUARDIAN to
    /// others and renounce its own)
    /// @param perTx caps per transaction for allocate, redeem and settle, in base units
    /// @param perDay caps per day for the same actions
    constructor(
        address token_,
        address admin,
        address operator,
        uint128[3] memory perTx,
        uint128[3] memory perDay
    ) {
        if (token_ == address(0) || admin == address(0) || operator == address(0)) {
            revert ZeroAddress();
        }
        token = IBurnableToken(token_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GUARDIAN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        for (uint256 i; i < 3; ++i) {
            _setLimit(Action(i), perTx[i], perDay[i]);
        }
    }

    // ---- value moves (operator, capped, pausable) ----

    /// @notice Adds `amount` to the entitlement of each address in `beneficiaries`.
    function allocate(bytes32 batchId, address[] calldata beneficiaries, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
    {
        if (batchId == bytes32(0)) revert ZeroId();
        if (batchDone[batchId]) revert BatchAlreadyDone(batchId);
        if (amount == 0) revert ZeroAmount();
        uint256 count = beneficiaries.length;
        if (count == 0) revert EmptyBatch();

        uint256 needed = count * amount;
        _spend(Action.Allocate, needed);
        uint256 unallocated = available();
        if (needed > unallocated) revert InsufficientFunding(needed, unallocated);

        for (uint256 i; i < count;) {
            address beneficiary = beneficiaries[i];
            if (beneficiary == address(0)) revert ZeroAddress();
            unchecked {
                // Bounded by `outstanding + needed`, at most the token balance (a uint256).
                entitlementOf[beneficiary] += amount;
                ++i;
            }
            emit Allocated(beneficiary, amount);
        }

        outstanding += needed;
        batchDone[batchId] = true;
        emit BatchAllocated(batchId, count, amount);
    }

    /// @notice Moves `amount` of `beneficiary`'s entitlement to `vendor`'s balance in this
    /// contract. Only a registered vendor can be paid.
    function redeem(bytes32 redemptionId, address beneficiary, address vendor, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
    {
        if (redemptionId == bytes32(0)) revert ZeroId();
        if (redemptionDone[redemptionId]) revert RedemptionAlreadyDone(redemptionId);
        if (beneficiary == address(0) || vendor == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (!isVendor[vendor]) revert NotRegisteredVendor(vendor);
        uint256 entitled = entitlementOf[beneficiary];
        if (amount > entitled) revert InsufficientEntitlement(entitled, amount);
        _spend(Action.Redeem, amount);

        redemptionDone[redemptionId] = true;
        unchecked {
            // amount <= entitled <= outstanding; vendor sums are bounded by the token balance.
            entitlementOf[beneficiary] = entitled - amount;
            outstanding -= amount;
            vendorBalanceOf[vendor] += amount;
            vendorHeld += amount;
        }
        emit Redeemed(redemptionId, beneficiary, vendor, amount);
    }

    /// @notice Burns `amount` of `vendor`'s balance: the vendor was paid off chain. Once per
    /// `settlementId`. An unregistered vendor can still be settled: a shop that left the
    /// project is still owed what it redeemed.
    function settle(bytes32 settlementId, address vendor, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
    {
        if (settlementId == bytes32(0)) revert ZeroId();
        if (settlementDone[settlementId]) revert SettlementAlreadyDone(settlementId);
        if (vendor == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 held = vendorBalanceOf[vendor];
        if (amount > held) revert InsufficientVendorBalance(held, amount);
        _spend(Action.Settle, amount);

        settlementDone[settlementId] = true;
        unchecked {
            vendorBalanceOf[vendor] = held - amount;
            vendorHeld -= amount;
        }
        token.burn(amount);
        emit Settled(settlementId, vendor, amount);
    }

    /// @notice Cancels what is left of `beneficiary`'s entitlement (back to the unpromised
    /// pool). Not capped and not paused: it moves nothing out and only lowers what is promised.
    function revoke(address beneficiary) external onlyRole(OPERATOR_ROLE) returns (uint256 amount) {
        if (beneficiary == address(0)) revert ZeroAddress();
        amount = entitlementOf[beneficiary];
        if (amount != 0) {
            entitlementOf[beneficiary] = 0;
            unchecked {
                outstanding -= amount;
            }
        }
        emit Revoked(beneficiary, amount);
    }

    // ---- vendor allow-list (operator or admin) ----

    /// @notice Allows `vendor` to be paid by `redeem`. Registering twice is not an error, so a
    /// retried job succeeds; the event is emitted only for a change.
    function registerVendor(address vendor) external onlyOperatorOrAdmin {
        if (vendor == address(0)) revert ZeroAddress();
        if (!isVendor[vendor]) {
            isVendor[vendor] = true;
            emit VendorRegistered(vendor);
        }
    }

    /// @notice Stops new redemptions to `vendor`; its balance stays and can still be settled.
    function unregisterVendor(address vendor) external onlyOperatorOrAdmin {
        if (isVendor[vendor]) {
            isVendor[vendor] = false;
            emit VendorUnregistered(vendor);
        }
    }

    // ---- admin ----

    function setLimit(Action action, uint128 perTx, uint128 perDay)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setLimit(action, perTx, perDay);
    }

    /// @notice Sends unpromised tokens (neither entitled nor held for vendors) to `to`.
    function withdrawUnallocated(address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 unallocated = available();
        if (amount > unallocated) revert InsufficientFunding(amount, unallocated);
        SafeERC20.safeTransfer(IERC20(address(token)), to, amount);
        emit UnallocatedWithdrawn(to, amount);
    }

    /// @notice Carries entitlements (`vendor` false) or vendor balances (`vendor` true) over from
    /// a contract of an earlier version, out of this contract's unpromised balance (minted for
    /// it beforehand). Admin only, once per `batchId`, so an interrupted migration can be re-run.
    function importBalances(
        bytes32 batchId,
        address[] calldata accounts,
        uint256[] calldata amounts,
        bool vendor
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (batchId == bytes32(0)) revert ZeroId();
        if (batchDone[batchId]) revert BatchAlreadyDone(batchId);
        uint256 count = accounts.length;
        if (count == 0) revert EmptyBatch();
        if (amounts.length != count) revert LengthMismatch();
        uint256 total;
        for (uint256 i; i < count; ++i) {
            address account = accounts[i];
            uint256 amount = amounts[i];
            if (account == address(0)) revert ZeroAddress();
            total += amount;
            if (vendor) {
                vendorBalanceOf[account] += amount;
            } else {
                entitlementOf[account] += amount;
            }
            emit Imported(batchId, account, vendor, amount);
        }
        uint256 unallocated = available();
        if (total > unallocated) revert InsufficientFunding(total, unallocated);
        if (vendor) vendorHeld += total;
        else outstanding += total;
        batchDone[batchId] = true;
    }

    // ---- guardian ----

    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(GUARDIAN_ROLE) {
        _unpause();
    }

    // ---- views ----

    /// @notice Token balance promised to nobody (neither entitled nor held for a vendor).
    function available() public view returns (uint256) {
        uint256 balance = token.balanceOf(address(this));
        uint256 promised = outstanding + vendorHeld;
        return balance > promised ? balance - promised : 0;
    }

    /// @notice What `action` may still move today.
    function remainingToday(Action action) external view returns (uint256) {
        Limit memory limit = limits[action];
        Usage memory used = usage[action];
        uint256 spent = used.day == block.timestamp / 1 days ? used.used : 0;
        return limit.perDay > spent ? limit.perDay - spent : 0;
    }

    // ---- internals ----

    modifier onlyOperatorOrAdmin() {
        if (!hasRole(OPERATOR_ROLE, msg.sender) && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert NotOperatorOrAdmin(msg.sender);
        }
        _;
    }

    function _setLimit(Action action, uint128 perTx, uint128 perDay) private {
        limits[action] = Limit(perTx, perDay);
        emit LimitSet(action, perTx, perDay);
    }

    /// @dev Counts `amount` against the caps of `action`; a new day starts from zero.
    function _spend(Action action, uint256 amount) private {
        Limit memory limit = limits[action];
        if (amount > limit.perTx) revert OverTransactionCap(action, amount, limit.perTx);
        uint256 today = block.timestamp / 1 days;
        Usage memory used = usage[action];
        uint256 spent = used.day == today ? used.used : 0;
        uint256 total = spent + amount;
        if (total > limit.perDay) revert OverDailyCap(action, today, spent, amount, limit.perDay);
        // Both fit: today < 2^64 for billions of years, total <= perDay < 2^128.
        usage[action] = Usage(uint64(today), uint192(total));
    }
}
