"""Funding with a multisig treasury: the portal prepares the mint, others sign it.

With ``CHAIN_TREASURY_ADDRESS`` set and no ``CHAIN_TREASURY_KEY``, the portal holds no key that
can mint. A funding then waits with its unsigned transaction on the project's chain page (to,
data, value, chain id, suggested gas) for the signers to submit it from their own wallet, and
the ``chain.mint_watch`` job looks for the mint on chain: a ``Transfer`` from the zero address
to the project contract of exactly the funding's amount, final by the chain's confirmations,
that no other funding has claimed. Only then is the funding counted.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from web3 import Web3

from portal.chain import client, contracts, finality, signers
from portal.chain.models import CONFIRMED, PENDING, ChainTx, Funding, ProjectChain
from portal.extensions import db
from portal.jobs import dispatch
from portal.transitions import change

TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)").to_0x_hex()
ZERO_TOPIC = "0x" + "00" * 32
SUGGESTED_MINT_GAS = 120_000  # a first mint to a fresh holder is about 70,000 gas


def prepared_mint(funding: Funding) -> dict:
    """The unsigned mint transaction for the treasury's signers."""
    pc = db.session.get(ProjectChain, funding.project_id)
    return {
        "from": signers.treasury_address(),
        "to": pc.token_address,
        "data": contracts.encode(
            contracts.PROJECT_TOKEN, "mint", pc.contract_address, funding.amount
        ),
        "value": 0,
        "chainId": pc.chain_id,
        "gas": SUGGESTED_MINT_GAS,
    }


def watch(funding: Funding, delay_ms: int | None = None) -> None:
    dispatch.enqueue(
        "chain.mint_watch",
        {"funding_id": funding.id},
        project_id=funding.project_id,
        delay_ms=delay_ms,
    )


def awaiting(project_id: int) -> list[Funding]:
    """Fundings waiting for the treasury's signers (multisig mode only)."""
    if not signers.multisig():
        return []
    return db.session.scalars(
        select(Funding)
        .where(
            Funding.project_id == project_id,
            Funding.status == PENDING,
            Funding.tx_id.is_(None),
        )
        .order_by(Funding.id)
    ).all()


def look_for_mint(funding_id: int) -> str:
    """The ``chain.mint_watch`` job: record the funding's mint if it is on chain, else look
    again later (the job re-queues itself; it never gives up while the funding is pending)."""
    from portal.chain import setup

    funding = db.session.get(Funding, funding_id)
    if funding is None or funding.status != PENDING or funding.mint_tx_hash:
        return "nothing to do"
    pc = db.session.get(ProjectChain, funding.project_id)
    w3 = client.web3()
    latest = w3.eth.block_number
    final_block = latest - finality.confirmations(pc.chain_id) + 1
    start = _deploy_block(pc)
    if final_block >= start:
        claimed = set(
            db.session.scalars(
                select(Funding.mint_tx_hash).where(
                    Funding.project_id == pc.project_id, Funding.mint_tx_hash.is_not(None)
                )
            )
        )
        to_topic = "0x" + "00" * 12 + pc.contract_address[2:].lower()
        logs = w3.eth.get_logs(
            {
                "address": Web3.to_checksum_address(pc.token_address),
                "fromBlock": start,
                "toBlock": final_block,
                "topics": [TRANSFER_TOPIC, ZERO_TOPIC, to_topic],
            }
        )
        for log in logs:
            tx_hash = log["transactionHash"].to_0x_hex()
            if tx_hash in claimed or int.from_bytes(log["data"], "big") != funding.amount:
                continue
            try:
                with db.session.begin_nested():
                    funding.mint_tx_hash = tx_hash
                    db.session.flush()
            except IntegrityError:  # another funding claimed it a moment ago
                continue
            setup._apply_funding(funding, None, tx_hash)
            change(Funding, funding.id, (PENDING,), CONFIRMED)
            return f"mint found in {tx_hash}"
    # Signers may take hours: a look every CHAIN_MINT_WATCH_SECONDS, not every block.
    watch(funding, delay_ms=int(current_app.config.get("CHAIN_MINT_WATCH_SECONDS", 60)) * 1000)
    return "not on chain yet"


def _deploy_block(pc: ProjectChain) -> int:
    number = db.session.scalar(select(ChainTx.block_number).where(ChainTx.id == pc.token_tx_id))
    return number or 0
