"""The operator's caps on a version-2 contract, changed by the admin (the treasury signer)."""

from __future__ import annotations

from flask_babel import gettext as _

from portal import events
from portal.chain import contracts, guardian, setup
from portal.chain.models import DEPLOYED, ChainTx
from portal.money import amounts


class CapsError(Exception):
    pass


def read(project_id: int) -> dict[str, dict[str, int]]:
    """Caps and what is left today, per action, in base units, as the contract has them."""
    pc = setup.state(project_id)
    if pc is None or pc.status != DEPLOYED or pc.version < 2:
        return {}
    contract = contracts.of_project(pc)
    found = {}
    for index, action in enumerate(contracts.CAP_ACTIONS):
        per_tx, per_day = contract.functions.limits(index).call()
        left = contract.functions.remainingToday(index).call()
        found[action] = {"per_tx": per_tx, "per_day": per_day, "left_today": left}
    return found


def set_caps(project_id: int, action: str, per_tx: str, per_day: str) -> ChainTx | dict:
    """From text in the project's currency (the command line)."""
    pc = _on_v2(project_id)
    return set_caps_units(
        project_id, action, amounts.parse(per_tx, pc.decimals), amounts.parse(per_day, pc.decimals)
    )


def _on_v2(project_id: int):
    pc = setup.state(project_id)
    if pc is None or pc.status != DEPLOYED or pc.version < 2:
        raise CapsError(_("Only a deployed version-2 contract has caps."))
    return pc


def set_caps_units(project_id: int, action: str, tx_cap: int, day_cap: int) -> ChainTx | dict:
    """Set one action's caps (base units): the treasury's transaction, or with a multisig
    treasury the unsigned call for its signers (the caps change once they send it)."""
    pc = _on_v2(project_id)
    if action not in contracts.CAP_ACTIONS:
        raise CapsError(f"action must be one of {', '.join(contracts.CAP_ACTIONS)}")
    if tx_cap > day_cap:
        raise CapsError(_("The cap per transaction cannot be above the cap per day."))
    data = contracts.encode(
        contracts.ENTITLEMENTS_V2,
        "setLimit",
        contracts.CAP_ACTIONS.index(action),
        tx_cap,
        day_cap,
    )
    sent = guardian.treasury_call(pc, data, "caps")
    prepared = isinstance(sent, dict)
    events.project_chain_changed.send(
        pc,
        action="chain.caps_prepared" if prepared else "chain.caps_changed",
        summary=f"Project {project_id}: {action} caps "
        + ("prepared for the treasury's signers: " if prepared else "set to ")
        + f"{tx_cap} per transaction, {day_cap} per day",
        project_id=project_id,
        data={
            "action": action,
            "per_tx": tx_cap,
            "per_day": day_cap,
            "tx_id": None if prepared else sent.id,
        },
    )
    return sent
