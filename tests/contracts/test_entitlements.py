"""Entitlements: allocation, redemption, revocation and the bookkeeping the portal relies on.

Invariant checked after every step: ``outstanding`` is the sum of the entitlements, and
``available() == balance - outstanding``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from web3.contract import Contract

from .conftest import (
    DEFAULT_ADMIN_ROLE,
    OPERATOR_ROLE,
    Chain,
    batch_id,
    encode_error,
    pseudonym,
    redemption_id,
)

ZERO = "0x" + "00" * 20
FUNDING = 1_000_000  # 10,000.00 in a 2-decimal currency


@dataclass
class Project:
    chain: Chain
    token: Contract
    ent: Contract

    def fund(self, amount: int) -> None:
        self.chain.transact(
            self.token.functions.mint(self.ent.address, amount), self.chain.actors.admin
        )

    def allocate(self, label: str, beneficiaries: list[str], amount: int):
        fn = self.ent.functions.allocate(batch_id(label), beneficiaries, amount)
        return self.chain.transact(fn, self.chain.actors.operator)

    def redeem(self, label: str, beneficiary: str, amount: int, vendor: str | None = None):
        fn = self.ent.functions.redeem(
            redemption_id(label), beneficiary, vendor or self.chain.actors.vendor, amount
        )
        return self.chain.transact(fn, self.chain.actors.operator)

    def entitlement(self, beneficiary: str) -> int:
        return self.ent.functions.entitlementOf(beneficiary).call()

    def outstanding(self) -> int:
        return self.ent.functions.outstanding().call()

    def available(self) -> int:
        return self.ent.functions.available().call()

    def balance(self, who: str) -> int:
        return self.token.functions.balanceOf(who).call()

    def assert_books(self, outstanding: int, available: int) -> None:
        assert (self.outstanding(), self.available()) == (outstanding, available)
        assert self.balance(self.ent.address) == outstanding + available


@pytest.fixture
def project(chain, actors) -> Project:
    token = chain.token(decimals=2)
    ent = chain.deploy("Entitlements", token.address, actors.admin, actors.operator)
    return Project(chain, token, ent)


@pytest.fixture
def funded(project) -> Project:
    project.fund(FUNDING)
    return project


BENEFICIARIES = [pseudonym(i) for i in range(3)]


# --- roles -------------------------------------------------------------------------------


def test_roles_after_deploy(project, actors):
    ent = project.ent

    assert ent.functions.OPERATOR_ROLE().call() == OPERATOR_ROLE
    assert ent.functions.token().call() == project.token.address
    assert ent.functions.hasRole(OPERATOR_ROLE, actors.operator).call()
    assert ent.functions.hasRole(DEFAULT_ADMIN_ROLE, actors.admin).call()
    # Separate duties: the admin does not operate, the operator does not administer.
    assert not ent.functions.hasRole(OPERATOR_ROLE, actors.admin).call()
    assert not ent.functions.hasRole(DEFAULT_ADMIN_ROLE, actors.operator).call()


@pytest.mark.parametrize("who", ["admin", "outsider", "vendor"])
def test_only_the_operator_allocates(funded, chain, actors, who):
    sender = getattr(actors, who)
    fn = funded.ent.functions.allocate(batch_id("b1"), BENEFICIARIES, 100)

    chain.assert_reverts(
        fn, sender, funded.ent, "AccessControlUnauthorizedAccount", sender, OPERATOR_ROLE
    )
    assert funded.entitlement(BENEFICIARIES[0]) == 0
    assert not funded.ent.functions.batchDone(batch_id("b1")).call()
    funded.assert_books(outstanding=0, available=FUNDING)


@pytest.mark.parametrize("who", ["admin", "outsider", "vendor"])
def test_only_the_operator_redeems(funded, chain, actors, who):
    funded.allocate("b1", BENEFICIARIES, 100)
    sender = getattr(actors, who)
    fn = funded.ent.functions.redeem(redemption_id("r1"), BENEFICIARIES[0], sender, 100)

    chain.assert_reverts(
        fn, sender, funded.ent, "AccessControlUnauthorizedAccount", sender, OPERATOR_ROLE
    )
    assert funded.entitlement(BENEFICIARIES[0]) == 100
    assert funded.balance(sender) == 0


@pytest.mark.parametrize("who", ["admin", "outsider", "vendor"])
def test_only_the_operator_revokes(funded, chain, actors, who):
    funded.allocate("b1", BENEFICIARIES, 100)
    sender = getattr(actors, who)
    fn = funded.ent.functions.revoke(BENEFICIARIES[0])

    chain.assert_reverts(
        fn, sender, funded.ent, "AccessControlUnauthorizedAccount", sender, OPERATOR_ROLE
    )
    assert funded.entitlement(BENEFICIARIES[0]) == 100


@pytest.mark.parametrize("who", ["operator", "outsider"])
def test_only_the_admin_withdraws(funded, chain, actors, who):
    sender = getattr(actors, who)
    fn = funded.ent.functions.withdrawUnallocated(sender, 1)

    chain.assert_reverts(
        fn, sender, funded.ent, "AccessControlUnauthorizedAccount", sender, DEFAULT_ADMIN_ROLE
    )
    assert funded.balance(sender) == 0


def test_only_the_admin_appoints_operators(project, chain, actors):
    fn = project.ent.functions.grantRole(OPERATOR_ROLE, actors.outsider)

    chain.assert_reverts(
        fn,
        actors.operator,
        project.ent,
        "AccessControlUnauthorizedAccount",
        actors.operator,
        DEFAULT_ADMIN_ROLE,
    )
    chain.transact(fn, actors.admin)
    assert project.ent.functions.hasRole(OPERATOR_ROLE, actors.outsider).call()


@pytest.mark.parametrize("position", [0, 1, 2])
def test_constructor_refuses_zero_addresses(chain, actors, project, position):
    args = [project.token.address, actors.admin, actors.operator]
    args[position] = ZERO

    data = chain.deploy_revert_data("Entitlements", *args)

    assert data == encode_error(project.ent, "ZeroAddress")


# --- allocate ----------------------------------------------------------------------------


def test_allocate_credits_each_beneficiary_and_reports_it(funded):
    receipt = funded.allocate("b1", BENEFICIARIES, 2_500)

    assert [funded.entitlement(b) for b in BENEFICIARIES] == [2_500, 2_500, 2_500]
    assert funded.entitlement(pseudonym(99)) == 0
    assert funded.ent.functions.batchDone(batch_id("b1")).call()
    funded.assert_books(outstanding=7_500, available=FUNDING - 7_500)
    # What the portal indexes: one Allocated per beneficiary, in order, then the batch.
    assert funded.chain.events(funded.ent, "Allocated", receipt) == [
        {"beneficiary": b, "amount": 2_500} for b in BENEFICIARIES
    ]
    assert funded.chain.events(funded.ent, "BatchAllocated", receipt) == [
        {"batchId": batch_id("b1"), "count": 3, "amountEach": 2_500}
    ]


def test_allocations_add_up(funded):
    funded.allocate("b1", BENEFICIARIES, 1_000)
    funded.allocate("b2", BENEFICIARIES[:1], 500)

    assert [funded.entitlement(b) for b in BENEFICIARIES] == [1_500, 1_000, 1_000]
    funded.assert_books(outstanding=3_500, available=FUNDING - 3_500)


def test_a_beneficiary_listed_twice_in_a_batch_is_credited_twice(funded):
    # The portal de-duplicates; the contract's books stay right if it does not.
    funded.allocate("b1", [BENEFICIARIES[0], BENEFICIARIES[0]], 300)

    assert funded.entitlement(BENEFICIARIES[0]) == 600
    funded.assert_books(outstanding=600, available=FUNDING - 600)


def test_cannot_allocate_beyond_funding(project, chain, actors):
    project.fund(1_000)
    fn = project.ent.functions.allocate(batch_id("b1"), BENEFICIARIES, 400)

    chain.assert_reverts(fn, actors.operator, project.ent, "InsufficientFunding", 1_200, 1_000)
    assert [project.entitlement(b) for b in BENEFICIARIES] == [0, 0, 0]
    # A refused batch is not spent: the same id goes through once the money is there.
    assert not project.ent.functions.batchDone(batch_id("b1")).call()
    project.fund(200)
    project.allocate("b1", BENEFICIARIES, 400)
    project.assert_books(outstanding=1_200, available=0)


def test_funding_already_promised_counts(project, chain, actors):
    project.fund(1_000)
    project.allocate("b1", BENEFICIARIES[:2], 300)

    fn = project.ent.functions.allocate(batch_id("b2"), BENEFICIARIES[1:], 300)
    chain.assert_reverts(fn, actors.operator, project.ent, "InsufficientFunding", 600, 400)
    project.assert_books(outstanding=600, available=400)


def test_allocate_exactly_the_funding(project):
    project.fund(900)

    project.allocate("b1", BENEFICIARIES, 300)

    project.assert_books(outstanding=900, available=0)


def test_a_batch_id_is_used_once(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES, 100)

    # Same id, even with other beneficiaries: a retried job must never allocate twice.
    fn = funded.ent.functions.allocate(batch_id("b1"), [pseudonym(7)], 100)
    chain.assert_reverts(fn, actors.operator, funded.ent, "BatchAlreadyDone", batch_id("b1"))
    assert funded.entitlement(pseudonym(7)) == 0
    assert [funded.entitlement(b) for b in BENEFICIARIES] == [100, 100, 100]
    funded.assert_books(outstanding=300, available=FUNDING - 300)


def test_a_zero_address_spoils_the_whole_batch(funded, chain, actors):
    fn = funded.ent.functions.allocate(batch_id("b1"), [BENEFICIARIES[0], ZERO], 100)

    chain.assert_reverts(fn, actors.operator, funded.ent, "ZeroAddress")
    assert funded.entitlement(BENEFICIARIES[0]) == 0
    funded.assert_books(outstanding=0, available=FUNDING)


@pytest.mark.parametrize(
    ("label", "beneficiaries", "amount", "error"),
    [
        ("b1", BENEFICIARIES, 0, "ZeroAmount"),
        ("b1", [], 100, "EmptyBatch"),
        (None, BENEFICIARIES, 100, "ZeroId"),
    ],
)
def test_allocate_refuses_degenerate_input(
    funded, chain, actors, label, beneficiaries, amount, error
):
    bid = batch_id(label) if label else b"\x00" * 32
    fn = funded.ent.functions.allocate(bid, beneficiaries, amount)

    chain.assert_reverts(fn, actors.operator, funded.ent, error)
    funded.assert_books(outstanding=0, available=FUNDING)


def test_allocate_cannot_overflow(funded, chain, actors):
    # count x amount overflows uint256: the checked multiplication reverts (panic 0x11).
    fn = funded.ent.functions.allocate(batch_id("b1"), BENEFICIARIES[:2], 2**255)

    data = chain.revert_data(fn, actors.operator)
    assert data == bytes.fromhex("4e487b71") + (0x11).to_bytes(32, "big")


def test_allocate_gas_per_new_beneficiary_is_within_target(funded):
    # The same target as bench/disburse_gas.py (there on anvil, here on py-evm's Prague).
    fresh = [pseudonym(1_000 + i) for i in range(200)]

    receipt = funded.allocate("gas", fresh, 10)

    per_beneficiary = receipt["gasUsed"] / len(fresh)
    assert 23_800 < per_beneficiary <= 25_500


# --- redeem ------------------------------------------------------------------------------


def test_redeem_pays_the_vendor_and_reports_it(funded, actors):
    funded.allocate("b1", BENEFICIARIES, 2_500)

    receipt = funded.redeem("r1", BENEFICIARIES[0], 1_000)

    assert funded.entitlement(BENEFICIARIES[0]) == 1_500
    assert funded.balance(actors.vendor) == 1_000
    assert funded.ent.functions.redemptionDone(redemption_id("r1")).call()
    funded.assert_books(outstanding=6_500, available=FUNDING - 7_500)
    assert funded.chain.events(funded.ent, "Redeemed", receipt) == [
        {
            "redemptionId": redemption_id("r1"),
            "beneficiary": BENEFICIARIES[0],
            "vendor": actors.vendor,
            "amount": 1_000,
        }
    ]
    assert funded.chain.events(funded.token, "Transfer", receipt) == [
        {"from": funded.ent.address, "to": actors.vendor, "value": 1_000}
    ]


def test_redeem_the_whole_entitlement(funded, actors):
    funded.allocate("b1", BENEFICIARIES[:1], 2_500)

    funded.redeem("r1", BENEFICIARIES[0], 2_500)

    assert funded.entitlement(BENEFICIARIES[0]) == 0
    funded.assert_books(outstanding=0, available=FUNDING - 2_500)


def test_cannot_redeem_more_than_the_entitlement(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES, 2_500)
    fn = funded.ent.functions.redeem(redemption_id("r1"), BENEFICIARIES[0], actors.vendor, 2_501)

    chain.assert_reverts(fn, actors.operator, funded.ent, "InsufficientEntitlement", 2_500, 2_501)
    assert funded.entitlement(BENEFICIARIES[0]) == 2_500
    assert funded.balance(actors.vendor) == 0
    # Another beneficiary's entitlement is no help.
    funded.redeem("r2", BENEFICIARIES[0], 2_000)
    fn = funded.ent.functions.redeem(redemption_id("r3"), BENEFICIARIES[0], actors.vendor, 600)
    chain.assert_reverts(fn, actors.operator, funded.ent, "InsufficientEntitlement", 500, 600)


def test_cannot_redeem_for_someone_never_allocated(funded, chain, actors):
    fn = funded.ent.functions.redeem(redemption_id("r1"), pseudonym(50), actors.vendor, 1)

    chain.assert_reverts(fn, actors.operator, funded.ent, "InsufficientEntitlement", 0, 1)


def test_a_redemption_id_is_used_once(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES, 2_500)
    funded.redeem("r1", BENEFICIARIES[0], 1_000)

    # Same id: refused even though the entitlement would cover it (a retried job).
    fn = funded.ent.functions.redeem(redemption_id("r1"), BENEFICIARIES[1], actors.vendor, 1_000)
    chain.assert_reverts(
        fn, actors.operator, funded.ent, "RedemptionAlreadyDone", redemption_id("r1")
    )
    assert funded.entitlement(BENEFICIARIES[1]) == 2_500
    assert funded.balance(actors.vendor) == 1_000


@pytest.mark.parametrize(
    ("rid", "beneficiary", "vendor", "amount", "error"),
    [
        ("r1", BENEFICIARIES[0], "vendor", 0, "ZeroAmount"),
        ("r1", BENEFICIARIES[0], ZERO, 1, "ZeroAddress"),
        ("r1", ZERO, "vendor", 1, "ZeroAddress"),
        (None, BENEFICIARIES[0], "vendor", 1, "ZeroId"),
    ],
)
def test_redeem_refuses_degenerate_input(
    funded, chain, actors, rid, beneficiary, vendor, amount, error
):
    funded.allocate("b1", BENEFICIARIES, 100)
    fn = funded.ent.functions.redeem(
        redemption_id(rid) if rid else b"\x00" * 32,
        beneficiary,
        actors.vendor if vendor == "vendor" else vendor,
        amount,
    )

    chain.assert_reverts(fn, actors.operator, funded.ent, error)
    funded.assert_books(outstanding=300, available=FUNDING - 300)


# --- revoke ------------------------------------------------------------------------------


def test_revoke_returns_the_entitlement_to_the_pool(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES, 2_500)

    receipt = chain.transact(funded.ent.functions.revoke(BENEFICIARIES[1]), actors.operator)

    assert [funded.entitlement(b) for b in BENEFICIARIES] == [2_500, 0, 2_500]
    funded.assert_books(outstanding=5_000, available=FUNDING - 5_000)
    assert chain.events(funded.ent, "Revoked", receipt) == [
        {"beneficiary": BENEFICIARIES[1], "amount": 2_500}
    ]


def test_revoke_after_a_redemption_takes_only_the_rest(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES[:1], 2_500)
    funded.redeem("r1", BENEFICIARIES[0], 1_000)

    receipt = chain.transact(funded.ent.functions.revoke(BENEFICIARIES[0]), actors.operator)

    assert chain.events(funded.ent, "Revoked", receipt) == [
        {"beneficiary": BENEFICIARIES[0], "amount": 1_500}
    ]
    funded.assert_books(outstanding=0, available=FUNDING - 1_000)
    assert funded.balance(actors.vendor) == 1_000


def test_revoking_again_is_harmless(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES[:1], 2_500)
    chain.transact(funded.ent.functions.revoke(BENEFICIARIES[0]), actors.operator)

    # A retried revoke job must not fail; it releases nothing more.
    receipt = chain.transact(funded.ent.functions.revoke(BENEFICIARIES[0]), actors.operator)

    assert chain.events(funded.ent, "Revoked", receipt) == [
        {"beneficiary": BENEFICIARIES[0], "amount": 0}
    ]
    funded.assert_books(outstanding=0, available=FUNDING)


def test_a_revoked_beneficiary_cannot_redeem(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES[:1], 2_500)
    chain.transact(funded.ent.functions.revoke(BENEFICIARIES[0]), actors.operator)

    fn = funded.ent.functions.redeem(redemption_id("r1"), BENEFICIARIES[0], actors.vendor, 1)
    chain.assert_reverts(fn, actors.operator, funded.ent, "InsufficientEntitlement", 0, 1)


def test_revoke_refuses_the_zero_address(funded, chain, actors):
    chain.assert_reverts(
        funded.ent.functions.revoke(ZERO), actors.operator, funded.ent, "ZeroAddress"
    )


# --- available / withdrawUnallocated -----------------------------------------------------


def test_available_without_funding_is_zero(project):
    project.assert_books(outstanding=0, available=0)


def test_withdraw_unallocated(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES, 100_000)

    receipt = chain.transact(
        funded.ent.functions.withdrawUnallocated(actors.treasury, 600_000), actors.admin
    )

    assert funded.balance(actors.treasury) == 600_000
    funded.assert_books(outstanding=300_000, available=100_000)
    assert chain.events(funded.ent, "UnallocatedWithdrawn", receipt) == [
        {"to": actors.treasury, "amount": 600_000}
    ]


def test_withdraw_cannot_touch_what_is_outstanding(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES, 100_000)
    fn = funded.ent.functions.withdrawUnallocated(actors.treasury, 700_001)

    chain.assert_reverts(fn, actors.admin, funded.ent, "InsufficientFunding", 700_001, 700_000)
    chain.transact(funded.ent.functions.withdrawUnallocated(actors.treasury, 700_000), actors.admin)
    funded.assert_books(outstanding=300_000, available=0)
    # Every beneficiary can still be paid in full.
    for i, b in enumerate(BENEFICIARIES):
        funded.redeem(f"r{i}", b, 100_000)
    funded.assert_books(outstanding=0, available=0)
    assert funded.balance(actors.vendor) == 300_000


def test_what_is_revoked_can_be_withdrawn(funded, chain, actors):
    funded.allocate("b1", BENEFICIARIES, 100_000)
    chain.transact(funded.ent.functions.withdrawUnallocated(actors.treasury, 700_000), actors.admin)
    chain.transact(funded.ent.functions.revoke(BENEFICIARIES[2]), actors.operator)

    funded.assert_books(outstanding=200_000, available=100_000)
    chain.transact(funded.ent.functions.withdrawUnallocated(actors.treasury, 100_000), actors.admin)
    funded.assert_books(outstanding=200_000, available=0)


@pytest.mark.parametrize(
    ("to", "amount", "error"), [(ZERO, 1, "ZeroAddress"), (None, 0, "ZeroAmount")]
)
def test_withdraw_refuses_degenerate_input(funded, chain, actors, to, amount, error):
    fn = funded.ent.functions.withdrawUnallocated(to or actors.treasury, amount)

    chain.assert_reverts(fn, actors.admin, funded.ent, error)


def test_bookkeeping_through_a_whole_cycle(funded, chain, actors):
    many = [pseudonym(i) for i in range(10)]
    funded.allocate("b1", many, 5_000)  # 50,000 promised
    funded.assert_books(outstanding=50_000, available=950_000)
    funded.redeem("r1", many[0], 5_000)
    funded.redeem("r2", many[1], 1_234)
    funded.assert_books(outstanding=43_766, available=950_000)
    chain.transact(funded.ent.functions.revoke(many[2]), actors.operator)
    funded.assert_books(outstanding=38_766, available=955_000)
    chain.transact(funded.ent.functions.withdrawUnallocated(actors.treasury, 955_000), actors.admin)
    funded.assert_books(outstanding=38_766, available=0)

    assert sum(funded.entitlement(b) for b in many) == 38_766
    assert funded.balance(actors.vendor) == 6_234
    assert funded.balance(actors.treasury) == 955_000
