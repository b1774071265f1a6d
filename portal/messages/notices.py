"""Messages to a beneficiary, written from the template in their language and queued through
the comms outbox.

Each effect (a code issued, an allocation credited, a payment settled) sends at most one
message: callers pass a key naming the effect, and the outbox keeps one message per key, so a
job that runs twice (a retry, a duplicate delivery, a reorg that confirms a batch again) finds
the message it already queued. Nothing here logs a number, a name or a code.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from portal.beneficiaries.models import Beneficiary
from portal.comms import services as comms
from portal.disbursements.models import DisbursementBatch, DisbursementItem, Entitlement
from portal.extensions import db
from portal.i18n.locales import to_native_digits
from portal.messages import kinds, templates
from portal.money import amounts
from portal.projects.models import Project

# The digits and grouping an amount is written with, per message language; English's for a
# language ``portal.money.amounts`` does not know.
_AMOUNT_LOCALES = {"ne": "ne", "hi": "hi"}


def amount_text(base: int, decimals: int, currency: str | None, language: str) -> str:
    # A plain space: the page's no-break space is not in the GSM-7 alphabet, and one such
    # character would make the whole SMS UCS-2 (70 characters a part instead of 160).
    text = amounts.money(base, decimals, currency, _AMOUNT_LOCALES.get(language, "en"))
    return text.replace("\u00a0", " ")


def written(values: dict, language: str, *, decimals: int, currency: str | None) -> dict:
    """Raw values as a reader of ``language`` reads them: amounts in base units (``amount``,
    ``left``) with the currency and that language's digits, minutes in its digits. The code
    stays in 0-9: it is typed on the vendor's keypad."""
    out = {}
    for name, value in values.items():
        if name in ("amount", "left"):
            out[name] = amount_text(int(value), decimals, currency, language)
        elif name == "minutes":
            out[name] = to_native_digits(str(value), language)
        else:
            out[name] = str(value)
    return out


def render(kind: str, language: str, values: dict, *, decimals: int, currency: str | None) -> str:
    """The text of ``kind`` for a reader of ``language`` (``written`` says how values are
    written), from the template in that language or else the English one."""
    body, used = templates.text_for(kind, language)
    return templates.fill(body, written(values, used, decimals=decimals, currency=currency))


def _project_money(project_id: int) -> tuple[Project, int]:
    from portal.chain.models import ProjectChain

    project = db.session.get(Project, project_id)
    pc = db.session.get(ProjectChain, project_id)
    return project, (pc.decimals if pc is not None else 0)


def send(
    kind: str,
    person: Beneficiary,
    project_id: int,
    values: dict,
    *,
    key: str | None = None,
    expires_at: datetime | None = None,
    purpose: str | None = None,
):
    """Queue ``kind`` to ``person`` in their language; None when they have no phone."""
    phone = person.pii.phone if person.pii is not None else None
    if not phone:
        return None
    project, decimals = _project_money(project_id)
    values = {"project": project.name, **values}
    allowed = {name: v for name, v in values.items() if name in kinds.KINDS[kind].placeholders}
    body = render(kind, person.language, allowed, decimals=decimals, currency=project.currency)
    return comms.send_sms(
        phone,
        body,
        purpose or f"beneficiary.{kind}",
        expires_at=expires_at,
        project_id=project_id,
        key=key,
    )


def left_of(project_id: int, beneficiary_id: int) -> int:
    row = db.session.scalar(
        select(Entitlement).where(
            Entitlement.project_id == project_id, Entitlement.beneficiary_id == beneficiary_id
        )
    )
    return row.remaining if row is not None else 0


def allocation_notices(batch_id: int) -> int:
    """The ``messages.allocation_notices`` job: tell each person of a credited batch what they
    received and what they now have. Returns how many messages were queued (a second run: 0)."""
    batch = db.session.get(DisbursementBatch, batch_id)
    if batch is None:
        return 0
    items = db.session.execute(
        select(DisbursementItem.beneficiary_id, DisbursementItem.amount).where(
            DisbursementItem.batch_id == batch_id
        )
    ).all()
    project_id = batch.disbursement.project_id
    queued = 0
    for beneficiary_id, amount in items:
        key = f"allocation:{batch_id}:{beneficiary_id}"
        if comms.keyed(key) is not None:
            continue
        person = db.session.get(Beneficiary, beneficiary_id)
        if person is None:
            continue
        left = left_of(project_id, beneficiary_id)
        if send("allocation", person, project_id, {"amount": amount, "left": left}, key=key):
            queued += 1
    return queued


def receipt(redemption) -> None:
    """After a payment settles: what was paid, where, and what is left (once per payment)."""
    from portal.vendors.models import Vendor

    if redemption.beneficiary_id is None:
        return
    person = db.session.get(Beneficiary, redemption.beneficiary_id)
    vendor = db.session.get(Vendor, redemption.vendor_id)
    if person is None or vendor is None:
        return
    left = redemption.remaining_after
    if left is None:
        left = left_of(redemption.project_id, redemption.beneficiary_id)
    values = {"amount": redemption.amount, "shop": vendor.name[:40], "left": left}
    send("receipt", person, redemption.project_id, values, key=f"receipt:{redemption.id}")


def balance_text(person: Beneficiary, project_id: int) -> str:
    """The balance reply in the person's language (sent by the inbound SMS handler)."""
    project, decimals = _project_money(project_id)
    values = {"left": left_of(project_id, person.id), "project": project.name}
    return render("balance", person.language, values, decimals=decimals, currency=project.currency)
