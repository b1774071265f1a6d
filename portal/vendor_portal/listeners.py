"""What the vendor's phone pages do when a vendor is suspended: every session ends."""

from __future__ import annotations

from portal import events
from portal.vendor_portal import sessions


def _on_vendor_suspended(vendor, **_) -> None:
    # The rows are revoked, not only refused while suspended: reinstating opens none again.
    sessions.revoke_all(vendor.id)


def connect() -> None:
    events.vendor_suspended.connect(_on_vendor_suspended, weak=False)
