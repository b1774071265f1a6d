"""The start-up check: is this the chain the database remembers, with its contracts on it?

A portal pointed at the wrong node (another chain id, a reset dev chain, a lost embedded journal)
would otherwise fail later in confusing ways; here it says what is wrong and what to do.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from portal.chain import client, contracts
from portal.chain.models import ProjectChain
from portal.extensions import db

log = logging.getLogger(__name__)


def problems(app=None) -> list[str]:
    where = app.config.get("WEB3_PROVIDER_URI") if app else None
    node = f"the node at {where}" if where else "the embedded chain"
    try:
        w3 = client.web3(app)
        chain_id = w3.eth.chain_id
    except Exception as exc:
        return [f"Cannot reach {node}: {type(exc).__name__}: {exc}"]
    found = []
    for pc in db.session.scalars(select(ProjectChain)):
        if pc.chain_id != chain_id:
            found.append(
                f"Project {pc.project_id} was deployed on chain id {pc.chain_id}, but {node} is "
                f"chain id {chain_id}. Point WEB3_PROVIDER_URI at the original chain."
            )
            continue
        for label, address in (("token", pc.token_address), ("contract", pc.contract_address)):
            if address and not contracts.has_code(address):
                found.append(
                    f"Project {pc.project_id}'s {label} at {address} has no code on {node}: the "
                    "chain was reset or is not the one this database was used with."
                )
    return found


def check_at_start(app) -> list[str]:
    """Log (and return) what is wrong; the portal still starts, so staff can see it."""
    with app.app_context():
        found = problems(app)
        for message in found:
            log.error("chain check: %s", message)
        app.extensions["portal_chain_problems"] = found
        db.session.remove()
    return found
