"""EntitlementsV2: vendor balances kept in the contract, settlement by burning, split powers,
caps per transaction and per day, pause, the vendor allow-list and the import of earlier balances.

Invariant checked along the way: the contract's token balance is
``outstanding + vendorHeld + available()``, and the token's supply falls by what is settled.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from .conftest import (
    DEFAULT_ADMIN_ROLE,
    MINTER_ROLE,
    OPERATOR_ROLE,
    Chain,
    batch_id,
    pseudonym,
    redemption_id,
    role,
)

GUARDIAN_ROLE = role("GUARDIAN_ROLE")
ALLOCATE, REDEEM, SETTLE = 0, 1, 2
FUNDING = 1_000_000
BIG = 10**30
BENEFICIARIES = [pseudonym(i) for i in range(3)]


def settlement_id(label: str) -> bytes:
    return keccak(text=f"settlement:{label}")


@dataclass
class Project:
    chain: Chain
    token: Contract
    ent: Contract

    @property
    def actors(self):
        return self.chain.actors

    def fund(self, amount: int) -> None:
        # Minting is the treasury's (the admin given at deploy), never the operator's.
        self.chain.transact(self.token.functions.mint(self.ent.address, amount), self.actors.admin)

    def op(self, fn):
        return self.chain.transact(fn, self.actors.operator)

    def allocate(self, label: str, beneficiaries: list[str], amount: int):
        return self.op(self.ent.functions.allocate(batch_id(label), beneficiaries, amount))

    def register(self, vendor: str | None = None):
        return self.op(self.ent.functions.registerVendor(vendor or self.actors.vendor))

    def redeem(self, label: str, beneficiary: str, amount: int, vendor: str | None = None):
        fn = self.ent.functions.redeem(
            redemption_id(label), beneficiary, vendor or self.actors.vendor, amount
        )
        return self.op(fn)

    def settle(self, label: str, amount: int, vendor: str | None = None):
        fn = self.ent.functions.settle(settlement_id(label), vendor or self.actors.vendor, amount)
        return self.op(fn)

    def set_limit(self, action: int, per_tx: int, per_day: int):
        fn = self.ent.functions.setLimit(action, per_tx, per_day)
        return self.chain.transact(fn, self.actors.admin)

    def view(self, name: str, *args):
        return getattr(self.ent.functions, name)(*args).call()

    def assert_books(self) -> None:
        balance = self.token.functions.balanceOf(self.ent.address).call()
        promised = self.view("outstanding") + self.view("vendorHeld")
        assert balance == promised + self.view("available")


def deploy(chain: Chain, per_tx=(BIG, BIG, BIG), per_day=(BIG, BIG, BIG)) -> Project:
    a = chain.actors
    token = chain.deploy("ProjectTokenV2", "Voucher", "VNPR", 2, a.admin)
    ent = chain.deploy(
        "EntitlementsV2", token.address, a.admin, a.operator, list(per_tx), list(per_day)
    )
    return Project(chain, token, ent)


@pytest.fixture
def project(chain) -> Project:
    return deploy(chain)


@pytest.fixture
def ready(project) -> Project:
    """Funded, three beneficiaries with 1,000 each, the vendor registered."""
    project.fund(FUNDING)
    project.allocate("b1", BENEFICIARIES, 1_000)
    project.register()
    return project


# ---- roles ----


def test_roles_after_deploy(project, actors):
    has = project.ent.functions.hasRole
    token_has = project.token.functions.hasRole
    assert has(DEFAULT_ADMIN_ROLE, actors.admin).call()
    assert has(GUARDIAN_ROLE, actors.admin).call()
    assert has(OPERATOR_ROLE, actors.operator).call()
    assert token_has(MINTER_ROLE, actors.admin).call()
    assert token_has(DEFAULT_ADMIN_ROLE, actors.admin).call()
    # The hot key holds nothing but the operator role.
    for r in (DEFAULT_ADMIN_ROLE, GUARDIAN_ROLE):
        assert not has(r, actors.operator).call()
    for r in (DEFAULT_ADMIN_ROLE, MINTER_ROLE):
        assert not token_has(r, actors.operator).call()


def test_the_operator_cannot_mint_grant_cap_withdraw_or_pause(ready, chain, actors):
    op = actors.operator
    denied = "AccessControlUnauthorizedAccount"
    cases = [
        (ready.token, ready.token.functions.mint(op, 1), MINTER_ROLE),
        (ready.token, ready.token.functions.grantRole(MINTER_ROLE, op), DEFAULT_ADMIN_ROLE),
        (ready.ent, ready.ent.functions.grantRole(DEFAULT_ADMIN_ROLE, op), DEFAULT_ADMIN_ROLE),
        (ready.ent, ready.ent.functions.grantRole(OPERATOR_ROLE, op), DEFAULT_ADMIN_ROLE),
        (ready.ent, ready.ent.functions.setLimit(SETTLE, BIG, BIG), DEFAULT_ADMIN_ROLE),
        (ready.ent, ready.ent.functions.withdrawUnallocated(op, 1), DEFAULT_ADMIN_ROLE),
        (
            ready.ent,
            ready.ent.functions.importBalances(batch_id("i"), [op], [1], True),
            DEFAULT_ADMIN_ROLE,
        ),
        (ready.ent, ready.ent.functions.pause(), GUARDIAN_ROLE),
    ]
    for where, fn, needed in cases:
        chain.assert_reverts(fn, op, where, denied, op, needed)


@pytest.mark.parametrize("who", ["admin", "outsider", "vendor"])
def test_only_the_operator_moves_value(ready, chain, actors, who):
    sender = getattr(actors, who)
    calls = [
        ready.ent.functions.allocate(batch_id("x"), BENEFICIARIES, 1),
        ready.ent.functions.redeem(redemption_id("x"), BENEFICIARIES[0], actors.vendor, 1),
        ready.ent.functions.settle(settlement_id("x"), actors.vendor, 1),
        ready.ent.functions.revoke(BENEFICIARIES[0]),
    ]
    for fn in calls:
        chain.assert_reverts(
            fn, sender, ready.ent, "AccessControlUnauthorizedAccount", sender, OPERATOR_ROLE
        )


def test_the_admin_hands_out_the_guardian_role(ready, chain, actors):
    grant = ready.ent.functions.grantRole(GUARDIAN_ROLE, actors.outsider)
    chain.transact(grant, actors.admin)
    chain.transact(ready.ent.functions.pause(), actors.outsider)
    assert ready.view("paused")


# ---- vendor allow-list ----


def test_redeem_pays_only_registered_vendors(project, chain, actors):
    project.fund(FUNDING)
    project.allocate("b1", BENEFICIARIES, 1_000)
    fn = project.ent.functions.redeem(redemption_id("r"), BENEFICIARIES[0], actors.vendor, 10)
    chain.assert_reverts(fn, actors.operator, project.ent, "NotRegisteredVendor", actors.vendor)
    receipt = project.register()
    assert chain.events(project.ent, "VendorRegistered", receipt) == [{"vendor": actors.vendor}]
    project.redeem("r", BENEFICIARIES[0], 10)
    assert project.view("vendorBalanceOf", actors.vendor) == 10


def test_registering_twice_is_quiet_and_the_admin_may_register(project, chain, actors):
    assert chain.events(project.ent, "VendorRegistered", project.register()) != []
    assert chain.events(project.ent, "VendorRegistered", project.register()) == []
    chain.transact(project.ent.functions.registerVendor(actors.outsider), actors.admin)
    assert project.view("isVendor", actors.outsider)
    fn = project.ent.functions.registerVendor(actors.treasury)
    chain.assert_reverts(fn, actors.vendor, project.ent, "NotOperatorOrAdmin", actors.vendor)


def test_an_unregistered_vendor_is_still_settled(ready, chain, actors):
    ready.redeem("r", BENEFICIARIES[0], 300)
    receipt = ready.op(ready.ent.functions.unregisterVendor(actors.vendor))
    assert chain.events(ready.ent, "VendorUnregistered", receipt) == [{"vendor": actors.vendor}]
    fn = ready.ent.functions.redeem(redemption_id("r2"), BENEFICIARIES[0], actors.vendor, 1)
    chain.assert_reverts(fn, actors.operator, ready.ent, "NotRegisteredVendor", actors.vendor)
    ready.settle("s", 300)
    assert ready.view("vendorBalanceOf", actors.vendor) == 0


# ---- redeem keeps value inside; settle burns once ----


def test_redeem_keeps_the_value_in_the_contract(ready, chain, actors):
    receipt = ready.redeem("r", BENEFICIARIES[0], 400)
    assert chain.events(ready.ent, "Redeemed", receipt) == [
        {
            "redemptionId": redemption_id("r"),
            "beneficiary": BENEFICIARIES[0],
            "vendor": actors.vendor,
            "amount": 400,
        }
    ]
    assert ready.token.functions.balanceOf(actors.vendor).call() == 0
    assert ready.token.functions.balanceOf(ready.ent.address).call() == FUNDING
    assert ready.view("vendorBalanceOf", actors.vendor) == 400
    assert ready.view("vendorHeld") == 400
    assert ready.view("outstanding") == 2_600
    ready.assert_books()


def test_settle_burns_once_per_id(ready, chain, actors):
    ready.redeem("r", BENEFICIARIES[0], 400)
    supply = ready.token.functions.totalSupply().call()
    receipt = ready.settle("s1", 150)
    assert chain.events(ready.ent, "Settled", receipt) == [
        {"settlementId": settlement_id("s1"), "vendor": actors.vendor, "amount": 150}
    ]
    assert ready.token.functions.totalSupply().call() == supply - 150
    assert ready.view("vendorBalanceOf", actors.vendor) == 250
    assert ready.view("settlementDone", settlement_id("s1"))
    assert not ready.view("settlementDone", settlement_id("s2"))
    again = ready.ent.functions.settle(settlement_id("s1"), actors.vendor, 1)
    chain.assert_reverts(
        again, actors.operator, ready.ent, "SettlementAlreadyDone", settlement_id("s1")
    )
    ready.assert_books()


def test_cannot_settle_more_than_the_vendor_holds(ready, chain, actors):
    ready.redeem("r", BENEFICIARIES[0], 100)
    fn = ready.ent.functions.settle(settlement_id("s"), actors.vendor, 101)
    chain.assert_reverts(fn, actors.operator, ready.ent, "InsufficientVendorBalance", 100, 101)
    for bad, error, args in [
        (ready.ent.functions.settle(b"\0" * 32, actors.vendor, 1), "ZeroId", ()),
        (ready.ent.functions.settle(settlement_id("z"), actors.vendor, 0), "ZeroAmount", ()),
        (ready.ent.functions.settle(settlement_id("z"), "0x" + "00" * 20, 1), "ZeroAddress", ()),
    ]:
        chain.assert_reverts(bad, actors.operator, ready.ent, error, *args)


def test_withdraw_never_touches_entitlements_or_vendor_balances(ready, chain, actors):
    ready.redeem("r", BENEFICIARIES[0], 400)
    free = FUNDING - 3_000
    assert ready.view("available") == free
    fn = ready.ent.functions.withdrawUnallocated(actors.treasury, free + 1)
    chain.assert_reverts(fn, actors.admin, ready.ent, "InsufficientFunding", free + 1, free)
    chain.transact(ready.ent.functions.withdrawUnallocated(actors.treasury, free), actors.admin)
    assert ready.token.functions.balanceOf(actors.treasury).call() == free
    ready.assert_books()


def test_revoke_returns_the_rest_to_the_pool(ready, chain, actors):
    ready.redeem("r", BENEFICIARIES[0], 400)
    receipt = ready.op(ready.ent.functions.revoke(BENEFICIARIES[0]))
    assert chain.events(ready.ent, "Revoked", receipt) == [
        {"beneficiary": BENEFICIARIES[0], "amount": 600}
    ]
    assert ready.view("entitlementOf", BENEFICIARIES[0]) == 0
    assert ready.view("available") == FUNDING - 2_000 - 400
    ready.assert_books()


# ---- caps ----


def test_cap_per_transaction(chain, actors):
    p = deploy(chain, per_tx=(3_000, 500, 200), per_day=(BIG, BIG, BIG))
    p.fund(FUNDING)
    p.register()
    fn = p.ent.functions.allocate(batch_id("big"), BENEFICIARIES, 1_001)
    chain.assert_reverts(fn, actors.operator, p.ent, "OverTransactionCap", ALLOCATE, 3_003, 3_000)
    p.allocate("ok", BENEFICIARIES, 1_000)
    fn = p.ent.functions.redeem(redemption_id("r"), BENEFICIARIES[0], actors.vendor, 501)
    chain.assert_reverts(fn, actors.operator, p.ent, "OverTransactionCap", REDEEM, 501, 500)
    p.redeem("r", BENEFICIARIES[0], 500)
    fn = p.ent.functions.settle(settlement_id("s"), actors.vendor, 201)
    chain.assert_reverts(fn, actors.operator, p.ent, "OverTransactionCap", SETTLE, 201, 200)
    p.settle("s", 200)


def test_cap_per_day_and_its_rollover(chain, actors):
    p = deploy(chain, per_tx=(BIG, BIG, BIG), per_day=(BIG, 700, BIG))
    p.fund(FUNDING)
    p.register()
    p.allocate("b", BENEFICIARIES, 1_000)
    tester = chain.w3.provider.ethereum_tester
    # Start just after a day boundary, so the next blocks stay on the same day.
    now = chain.w3.eth.get_block("latest")["timestamp"]
    tester.time_travel((now // 86400 + 1) * 86400 + 10)
    tester.mine_blocks(1)
    day = chain.w3.eth.get_block("latest")["timestamp"] // 86400
    p.redeem("r1", BENEFICIARIES[0], 400)
    p.redeem("r2", BENEFICIARIES[1], 300)
    assert p.view("remainingToday", REDEEM) == 0
    fn = p.ent.functions.redeem(redemption_id("r3"), BENEFICIARIES[2], actors.vendor, 1)
    data = chain.revert_data(fn, actors.operator)
    from .conftest import encode_error

    # The pending block may already be a second later but it is the same day.
    assert data == encode_error(p.ent, "OverDailyCap", REDEEM, day, 700, 1, 700)
    tester.time_travel((day + 1) * 86400 + 5)
    tester.mine_blocks(1)
    assert p.view("remainingToday", REDEEM) == 700
    p.redeem("r3", BENEFICIARIES[2], 700)


def test_only_the_admin_changes_caps_and_it_is_reported(project, chain, actors):
    receipt = project.set_limit(SETTLE, 10, 20)
    assert chain.events(project.ent, "LimitSet", receipt) == [
        {"action": SETTLE, "perTx": 10, "perDay": 20}
    ]
    assert project.view("limits", SETTLE) == [10, 20]


# ---- pause ----


def test_the_guardian_pauses_value_moves(ready, chain, actors):
    ready.redeem("r", BENEFICIARIES[0], 100)
    chain.transact(ready.ent.functions.pause(), actors.admin)
    paused = [
        ready.ent.functions.allocate(batch_id("p"), BENEFICIARIES, 1),
        ready.ent.functions.redeem(redemption_id("p"), BENEFICIARIES[0], actors.vendor, 1),
        ready.ent.functions.settle(settlement_id("p"), actors.vendor, 1),
    ]
    for fn in paused:
        chain.assert_reverts(fn, actors.operator, ready.ent, "EnforcedPause")
    # Revoking lowers what is promised; it stays possible while value moves are stopped.
    ready.op(ready.ent.functions.revoke(BENEFICIARIES[2]))
    chain.transact(ready.ent.functions.unpause(), actors.admin)
    ready.settle("p", 100)


# ---- importing balances of an earlier contract ----


def test_import_carries_balances_over_once(project, chain, actors):
    project.fund(5_000)
    fn = project.ent.functions.importBalances(
        batch_id("m1"), BENEFICIARIES[:2], [1_000, 2_000], False
    )
    chain.transact(fn, actors.admin)
    chain.transact(
        project.ent.functions.importBalances(batch_id("m2"), [actors.vendor], [1_500], True),
        actors.admin,
    )
    assert project.view("entitlementOf", BENEFICIARIES[1]) == 2_000
    assert project.view("vendorBalanceOf", actors.vendor) == 1_500
    assert project.view("available") == 500
    chain.assert_reverts(fn, actors.admin, project.ent, "BatchAlreadyDone", batch_id("m1"))
    over = project.ent.functions.importBalances(batch_id("m3"), [actors.vendor], [501], True)
    chain.assert_reverts(over, actors.admin, project.ent, "InsufficientFunding", 501, 500)
    project.assert_books()


# ---- gas ----


def test_gas_per_settlement_is_measured(ready, capsys):
    ready.redeem("r", BENEFICIARIES[0], 1_000)
    first = ready.settle("g1", 100)["gasUsed"]
    later = ready.settle("g2", 100)["gasUsed"]
    with capsys.disabled():
        print(f"\nEntitlementsV2.settle gas: first {first}, later {later}")
    # A fresh settlement id slot, a vendor balance, the daily usage and a burn.
    assert later < 90_000


# ---- the books balance whatever the order of operations ----

OPS = st.lists(
    st.tuples(
        st.sampled_from(["allocate", "redeem", "settle", "revoke", "unregister"]),
        st.integers(min_value=0, max_value=2),  # which beneficiary / vendor
        st.integers(min_value=1, max_value=900),  # amount
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_the_books_always_balance(ops):
    """Any sequence of value moves, refused or not, keeps every total exact: what each call
    changes is mirrored in Python, and a refused call changes nothing."""
    from web3 import EthereumTesterProvider, Web3

    chain = Chain(Web3(EthereumTesterProvider()))
    p = deploy(chain)
    p.fund(5_000)
    vendors = [chain.actors.vendor, chain.actors.treasury, chain.actors.outsider]
    for v in vendors:
        p.register(v)
    ent = dict.fromkeys(BENEFICIARIES, 0)
    held = dict.fromkeys(vendors, 0)
    burned = 0
    for n, (op, who, amount) in enumerate(ops):
        person, vendor = BENEFICIARIES[who], vendors[who]
        if op == "allocate":
            fn = p.ent.functions.allocate(batch_id(f"h{n}"), [person], amount)
            ok = amount <= p.view("available")
            if ok:
                ent[person] += amount
        elif op == "redeem":
            fn = p.ent.functions.redeem(redemption_id(f"h{n}"), person, vendor, amount)
            ok = amount <= ent[person] and p.view("isVendor", vendor)
            if ok:
                ent[person] -= amount
                held[vendor] += amount
        elif op == "settle":
            fn = p.ent.functions.settle(settlement_id(f"h{n}"), vendor, amount)
            ok = amount <= held[vendor]
            if ok:
                held[vendor] -= amount
                burned += amount
        elif op == "revoke":
            fn = p.ent.functions.revoke(person)
            ok = True
            ent[person] = 0
        else:
            fn = p.ent.functions.unregisterVendor(vendor)
            ok = True
        tx = fn.transact({"from": chain.actors.operator, "gas": 8_000_000})
        status = chain.w3.eth.wait_for_transaction_receipt(tx)["status"]
        assert status == (1 if ok else 0), (op, who, amount)
        for person_ in BENEFICIARIES:
            assert p.view("entitlementOf", person_) == ent[person_]
        for vendor_ in vendors:
            assert p.view("vendorBalanceOf", vendor_) == held[vendor_]
        assert p.view("outstanding") == sum(ent.values())
        assert p.view("vendorHeld") == sum(held.values())
        assert p.token.functions.totalSupply().call() == 5_000 - burned
        p.assert_books()
