"""CashTransfer: a batch pays each recipient's own wallet, once, from the contract's funds."""

from __future__ import annotations

import pytest

from .conftest import DEFAULT_ADMIN_ROLE, OPERATOR_ROLE, batch_id, encode_error, pseudonym

ZERO = "0x" + "00" * 20
FUNDING = 100_000
# Wallets the beneficiaries gave the portal (keys they hold; here just distinct addresses).
WALLETS = [pseudonym(500 + i) for i in range(4)]


@pytest.fixture
def token(chain):
    return chain.token(decimals=2)


@pytest.fixture
def cash(chain, actors, token):
    contract = chain.deploy("CashTransfer", token.address, actors.admin, actors.operator)
    chain.transact(token.functions.mint(contract.address, FUNDING), actors.admin)
    return contract


def balances(token, addresses):
    return [token.functions.balanceOf(a).call() for a in addresses]


def test_roles_after_deploy(cash, token, actors):
    assert cash.functions.OPERATOR_ROLE().call() == OPERATOR_ROLE
    assert cash.functions.token().call() == token.address
    assert cash.functions.hasRole(OPERATOR_ROLE, actors.operator).call()
    assert cash.functions.hasRole(DEFAULT_ADMIN_ROLE, actors.admin).call()
    assert not cash.functions.hasRole(OPERATOR_ROLE, actors.admin).call()


def test_disburse_pays_each_wallet_and_reports_it(chain, actors, token, cash):
    receipt = chain.transact(
        cash.functions.disburse(batch_id("c1"), WALLETS, 2_500), actors.operator
    )

    assert balances(token, WALLETS) == [2_500] * 4
    assert token.functions.balanceOf(cash.address).call() == FUNDING - 10_000
    assert cash.functions.batchDone(batch_id("c1")).call()
    # Per recipient the portal indexes the token's Transfer; per batch, BatchDisbursed.
    assert chain.events(token, "Transfer", receipt) == [
        {"from": cash.address, "to": w, "value": 2_500} for w in WALLETS
    ]
    assert chain.events(cash, "BatchDisbursed", receipt) == [
        {"batchId": batch_id("c1"), "count": 4, "amountEach": 2_500}
    ]


@pytest.mark.parametrize("who", ["admin", "outsider", "vendor"])
def test_only_the_operator_disburses(chain, actors, token, cash, who):
    sender = getattr(actors, who)
    fn = cash.functions.disburse(batch_id("c1"), WALLETS, 100)

    chain.assert_reverts(
        fn, sender, cash, "AccessControlUnauthorizedAccount", sender, OPERATOR_ROLE
    )
    assert balances(token, WALLETS) == [0] * 4
    assert not cash.functions.batchDone(batch_id("c1")).call()


def test_a_batch_id_is_used_once(chain, actors, token, cash):
    chain.transact(cash.functions.disburse(batch_id("c1"), WALLETS, 100), actors.operator)

    fn = cash.functions.disburse(batch_id("c1"), WALLETS, 100)
    chain.assert_reverts(fn, actors.operator, cash, "BatchAlreadyDone", batch_id("c1"))
    assert balances(token, WALLETS) == [100] * 4


def test_cannot_disburse_beyond_funding(chain, actors, token, cash):
    fn = cash.functions.disburse(batch_id("c1"), WALLETS, 25_001)

    chain.assert_reverts(fn, actors.operator, cash, "InsufficientFunding", 100_004, 100_000)
    assert balances(token, WALLETS) == [0] * 4
    assert not cash.functions.batchDone(batch_id("c1")).call()
    # Exactly the funding goes through.
    chain.transact(cash.functions.disburse(batch_id("c1"), WALLETS, 25_000), actors.operator)
    assert token.functions.balanceOf(cash.address).call() == 0


def test_a_zero_address_pays_nobody(chain, actors, token, cash):
    fn = cash.functions.disburse(batch_id("c1"), [WALLETS[0], ZERO, WALLETS[1]], 100)

    chain.assert_reverts(fn, actors.operator, cash, "ZeroAddress")
    assert balances(token, WALLETS[:2]) == [0, 0]
    assert not cash.functions.batchDone(batch_id("c1")).call()


@pytest.mark.parametrize(
    ("bid", "recipients", "amount", "error"),
    [
        pytest.param(batch_id("c1"), WALLETS, 0, "ZeroAmount", id="zero-amount"),
        pytest.param(batch_id("c1"), [], 100, "EmptyBatch", id="empty"),
        pytest.param(b"\x00" * 32, WALLETS, 100, "ZeroId", id="zero-id"),
    ],
)
def test_disburse_refuses_degenerate_input(chain, actors, cash, bid, recipients, amount, error):
    chain.assert_reverts(
        cash.functions.disburse(bid, recipients, amount), actors.operator, cash, error
    )


def test_admin_withdraws(chain, actors, token, cash):
    receipt = chain.transact(cash.functions.withdraw(actors.treasury, 40_000), actors.admin)

    assert token.functions.balanceOf(actors.treasury).call() == 40_000
    assert token.functions.balanceOf(cash.address).call() == 60_000
    assert chain.events(cash, "Withdrawn", receipt) == [{"to": actors.treasury, "amount": 40_000}]


@pytest.mark.parametrize("who", ["operator", "outsider"])
def test_only_the_admin_withdraws(chain, actors, token, cash, who):
    sender = getattr(actors, who)

    chain.assert_reverts(
        cash.functions.withdraw(sender, 1),
        sender,
        cash,
        "AccessControlUnauthorizedAccount",
        sender,
        DEFAULT_ADMIN_ROLE,
    )
    assert token.functions.balanceOf(sender).call() == 0


def test_withdraw_more_than_held_fails_with_the_tokens_error(chain, actors, token, cash):
    # SafeERC20 passes the token's own revert up unchanged.
    chain.assert_reverts(
        cash.functions.withdraw(actors.treasury, 100_001),
        actors.admin,
        token,
        "ERC20InsufficientBalance",
        cash.address,
        100_000,
        100_001,
    )


def test_constructor_refuses_zero_addresses(chain, actors, token, cash):
    data = chain.deploy_revert_data("CashTransfer", token.address, ZERO, actors.operator)

    assert data == encode_error(cash, "ZeroAddress")
