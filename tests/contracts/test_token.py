"""ProjectToken: one ERC-20 per project, its own decimals, supply created only by minters."""

from __future__ import annotations

import pytest

from .conftest import DEFAULT_ADMIN_ROLE, MINTER_ROLE, encode_error

ZERO = "0x" + "00" * 20


@pytest.mark.parametrize("decimals", [0, 2, 6, 18])
def test_decimals_are_the_projects(chain, decimals):
    token = chain.token(decimals=decimals, name=f"Project {decimals}", symbol=f"P{decimals}")

    assert token.functions.decimals().call() == decimals
    assert token.functions.name().call() == f"Project {decimals}"
    assert token.functions.symbol().call() == f"P{decimals}"
    assert token.functions.totalSupply().call() == 0


def test_two_projects_keep_their_own_decimals(chain):
    cash = chain.token(decimals=2)
    parcels = chain.token(decimals=0, name="Food parcels", symbol="FOOD")

    assert (cash.functions.decimals().call(), parcels.functions.decimals().call()) == (2, 0)


def test_admin_holds_both_roles(chain, actors):
    token = chain.token()

    assert token.functions.MINTER_ROLE().call() == MINTER_ROLE
    assert token.functions.hasRole(DEFAULT_ADMIN_ROLE, actors.admin).call()
    assert token.functions.hasRole(MINTER_ROLE, actors.admin).call()
    assert not token.functions.hasRole(MINTER_ROLE, actors.operator).call()


def test_minter_mints(chain, actors):
    token = chain.token()

    receipt = chain.transact(token.functions.mint(actors.treasury, 125_000), actors.admin)

    assert token.functions.balanceOf(actors.treasury).call() == 125_000
    assert token.functions.totalSupply().call() == 125_000
    assert chain.events(token, "Transfer", receipt) == [
        {"from": ZERO, "to": actors.treasury, "value": 125_000}
    ]


@pytest.mark.parametrize("who", ["operator", "outsider", "treasury"])
def test_only_minters_mint(chain, actors, who):
    token = chain.token()
    sender = getattr(actors, who)

    chain.assert_reverts(
        token.functions.mint(sender, 1),
        sender,
        token,
        "AccessControlUnauthorizedAccount",
        sender,
        MINTER_ROLE,
    )
    assert token.functions.totalSupply().call() == 0


def test_minting_can_be_handed_over_and_taken_back(chain, actors):
    token = chain.token()

    chain.transact(token.functions.grantRole(MINTER_ROLE, actors.treasury), actors.admin)
    chain.transact(token.functions.mint(actors.treasury, 7), actors.treasury)
    chain.transact(token.functions.revokeRole(MINTER_ROLE, actors.treasury), actors.admin)

    assert token.functions.balanceOf(actors.treasury).call() == 7
    chain.assert_reverts(
        token.functions.mint(actors.treasury, 1),
        actors.treasury,
        token,
        "AccessControlUnauthorizedAccount",
        actors.treasury,
        MINTER_ROLE,
    )


def test_only_the_admin_grants_minting(chain, actors):
    token = chain.token()

    chain.assert_reverts(
        token.functions.grantRole(MINTER_ROLE, actors.outsider),
        actors.outsider,
        token,
        "AccessControlUnauthorizedAccount",
        actors.outsider,
        DEFAULT_ADMIN_ROLE,
    )
    assert not token.functions.hasRole(MINTER_ROLE, actors.outsider).call()


def test_admin_cannot_be_the_zero_address(chain):
    token = chain.token()

    data = chain.deploy_revert_data("ProjectToken", "X", "X", 2, ZERO)

    assert data == encode_error(token, "ZeroAddress")
