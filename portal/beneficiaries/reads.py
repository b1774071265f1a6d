"""Reading personal data is audited: who saw whose data, when and through which page.

Entries carry beneficiary ids only, never the data itself. They join the caller's transaction;
a GET that shows personal data commits them (appending to the audit log is a write a GET may make).
"""

from __future__ import annotations

from portal import events

# One entry per page view, however many rows it shows; longer pages are cut by the list's size.
MAX_IDS = 500


def record(people, via: str, *, project_id: int | None = None) -> None:
    """Audit that the current actor saw the personal data of ``people`` (beneficiary rows)."""
    ids = sorted({p.id for p in people})
    if not ids:
        return
    sender = people[0] if len(ids) == 1 else "beneficiaries"
    events.beneficiary_pii_read.send(
        sender,
        action="beneficiary.pii_read",
        summary=(
            f"Personal data of beneficiary {ids[0]} read ({via})"
            if len(ids) == 1
            else f"Personal data of {len(ids)} beneficiaries read ({via})"
        ),
        project_id=project_id,
        data={"via": via, "ids": ids[:MAX_IDS], "count": len(ids)},
    )
