"""Vendor status changes pushed live to the projects the vendor serves."""

from __future__ import annotations

from portal import events, realtime

VENDOR_STATUS = "vendor.status"


def _push(vendor, *, data=None, **_):
    rooms = [realtime.project_room(pid) for pid in (data or {}).get("project_ids", [])]
    realtime.emit_after_commit(
        VENDOR_STATUS, {"vendor_id": vendor.id, "status": vendor.status}, rooms
    )


def connect() -> None:
    events.vendor_suspended.connect(_push, weak=False)
    events.vendor_approved.connect(_push, weak=False)
