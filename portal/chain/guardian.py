"""Pausing a project's value moves, and the treasury's calls staff make from the pages.

A pause has two halves. The portal's own half takes effect at once and on every contract
version: a paused project starts no charge, disbursement or settlement (``ensure_moving``),
with the guardian's reason shown to staff and a plain message on the vendor's phone. The
chain's half is the contract's ``pause()`` (version 2, the guardian role is the treasury's):
the portal's operator key can then move nothing even if something slipped past. With a
multisig treasury the portal cannot sign it; the page shows the unsigned call for the signers
and what the contract says now. Unpausing undoes both. Each change is a conditional UPDATE
(two guardians clicking at once change it once) and is audited with its reason.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import update

from portal import events
from portal.chain import contracts, setup, signers, txmanager
from portal.chain.models import DEPLOYED, ChainTx, ProjectChain
from portal.errors import Conflict, DomainError
from portal.extensions import db
from portal.projects import services as projects
from portal.timeutil import utcnow


class Paused(DomainError):
    """A value move refused because the project is paused."""


def paused(project_id: int) -> ProjectChain | None:
    """The project's chain row when its value moves are paused, else None."""
    pc = db.session.get(ProjectChain, project_id)
    return pc if pc is not None and pc.paused_at is not None else None


def ensure_moving(project_id: int) -> None:
    pc = paused(project_id)
    if pc is not None:
        if pc.pause_reason:
            raise Paused(
                _(
                    "Payments in this project are paused: %(reason)s. Nothing can be charged, "
                    "disbursed or cashed out until it is resumed.",
                    reason=pc.pause_reason,
                )
            )
        raise Paused(
            _(
                "Payments in this project are paused. Nothing can be charged, disbursed or "
                "cashed out until it is resumed."
            )
        )


def _on_v2(pc: ProjectChain | None) -> bool:
    return pc is not None and pc.status == DEPLOYED and (pc.version or 1) >= 2


def paused_on_chain(pc: ProjectChain) -> bool | None:
    """What the contract says (None: no pausable contract, or the chain cannot be read)."""
    if not _on_v2(pc):
        return None
    try:
        return bool(contracts.of_project(pc).functions.paused().call())
    except Exception:  # a page that cannot read the chain still shows the portal's half
        return None


def treasury_call(pc: ProjectChain, data: str, purpose: str) -> ChainTx | dict:
    """Send ``data`` to the project contract signed by the treasury, or, with a multisig
    treasury, the unsigned transaction for its signers (to, data, value, chain id, from)."""
    if signers.multisig():
        return {
            "from": signers.treasury_address(),
            "to": pc.contract_address,
            "data": data,
            "value": 0,
            "chainId": pc.chain_id,
        }
    return txmanager.submit(
        purpose=purpose,
        to=pc.contract_address,
        data=data,
        project_id=pc.project_id,
        signer=signers.treasury(),
    )


def prepared(pc: ProjectChain) -> dict | None:
    """With a multisig treasury, the call that brings the contract in line with the portal's
    pause (None when they agree, or nothing can be prepared)."""
    if not signers.multisig():
        return None
    on_chain = paused_on_chain(pc)
    want = pc.paused_at is not None
    if on_chain is None or on_chain == want:
        return None
    call = treasury_call(pc, contracts.encode(contracts.ENTITLEMENTS_V2, _fn(want)), "")
    return {**call, "function": _fn(want)}


def _fn(pause: bool) -> str:
    return "pause" if pause else "unpause"


def set_paused(project, pause: bool, reason: str) -> ChainTx | dict | None:
    """Pause (or resume) the project's value moves; returns the chain's half: the treasury's
    transaction, the unsigned call for a multisig, or None (no pausable contract, or the
    contract says so already)."""
    projects.ensure_writable(project)
    reason = " ".join((reason or "").split())[:200]
    if not reason:
        raise DomainError(_("Say why."))
    pc = setup.state(project.id)
    if pc is None or pc.status != DEPLOYED:
        raise Conflict(_("This project's payments are not set up yet: there is nothing to pause."))
    values = (
        {"paused_at": utcnow(), "pause_reason": reason}
        if pause
        else {"paused_at": None, "pause_reason": ""}
    )
    changed = db.session.execute(
        update(ProjectChain)
        .where(
            ProjectChain.project_id == project.id,
            ProjectChain.paused_at.is_(None) if pause else ProjectChain.paused_at.is_not(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        raise Conflict(_("Paused already.") if pause else _("Not paused: nothing to resume."))
    db.session.refresh(pc)
    chain_half = None
    if _on_v2(pc) and paused_on_chain(pc) is not pause:
        data = contracts.encode(contracts.ENTITLEMENTS_V2, _fn(pause))
        chain_half = treasury_call(pc, data, f"guardian.{_fn(pause)}")
    tx_id = chain_half.id if isinstance(chain_half, ChainTx) else None
    events.project_chain_changed.send(
        pc,
        action="chain.paused" if pause else "chain.unpaused",
        summary=f"Project {project.id}: value moves {'paused' if pause else 'resumed'}: {reason}",
        project_id=project.id,
        data={"tx_id": tx_id, "multisig": isinstance(chain_half, dict)},
    )
    return chain_half
