"""What redemptions do when the chain answers and when a vendor is suspended."""

from __future__ import annotations

from portal import events
from portal.redemptions import services, transfer

SUSPENDED_NOTE = "The vendor was suspended. Nothing was taken."


def _on_chain_final(tx, receipt=None, **_) -> None:
    transfer.on_chain_final(tx)


def _on_chain_undone(tx, *, was: str, **_) -> None:
    if was == "confirmed":
        transfer.unsettle(tx)


def _on_vendor_suspended(vendor, **_) -> None:
    services.stop_for_vendor(vendor.id, SUSPENDED_NOTE)


def connect() -> None:
    events.chain_tx_final.connect(_on_chain_final, weak=False)
    events.chain_tx_undone.connect(_on_chain_undone, weak=False)
    events.vendor_suspended.connect(_on_vendor_suspended, weak=False)
