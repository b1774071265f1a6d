"""Vendors' payout methods: a bank account or a mobile-money number, one of them the default.

Registered by staff (``vendor.manage``) on the vendor's page or by the vendor on the phone; every
change is an audited event, and a change the vendor made also says so (``by_vendor``), so
finance sees when the account money goes to was changed from the phone.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import select, update

from portal import events
from portal.beneficiaries.normalize import InvalidValue, phone_e164
from portal.errors import NotFound
from portal.extensions import db
from portal.payouts.models import KINDS, MOMO, PayoutMethod
from portal.settings.services import default_country

_ACCOUNT = re.compile(r"[0-9A-Z]{4,34}")  # domestic account numbers and IBANs
_BANK_CODE = re.compile(r"[0-9A-Z]{2,20}")  # sort codes, routing numbers, SWIFT/BIC


def mask(number: str) -> str:
    """Only the last four characters shown: enough to tell accounts apart on a page."""
    tail = number[-4:] if len(number) > 4 else ""
    return "•••• " + tail if tail else "••••"


def _clean(data: dict) -> dict:
    kind = data.get("kind")
    if kind not in KINDS:
        raise InvalidValue("kind", _("Choose a bank account or a mobile-money number."))
    name = " ".join((data.get("account_name") or "").split())
    if not name:
        raise InvalidValue("account_name", _("Enter the account holder's name."))
    if len(name) > 100:
        raise InvalidValue("account_name", _("At most 100 characters."))
    if kind == MOMO:
        try:
            number = phone_e164(data.get("account_number") or "", default_country())
        except InvalidValue as exc:
            raise InvalidValue("account_number", str(exc)) from None
        return {"kind": kind, "account_name": name, "account_number": number, "bank_code": ""}
    number = re.sub(r"[\s-]", "", data.get("account_number") or "").upper()
    if not _ACCOUNT.fullmatch(number):
        raise InvalidValue(
            "account_number", "Enter the account number: 4 to 34 letters and digits."
        )
    code = re.sub(r"[\s-]", "", data.get("bank_code") or "").upper()
    if not _BANK_CODE.fullmatch(code):
        raise InvalidValue("bank_code", _("Enter the bank's code: 2 to 20 letters and digits."))
    return {"kind": kind, "account_name": name, "account_number": number, "bank_code": code}


def of_vendor(vendor_id: int) -> list[PayoutMethod]:
    return list(
        db.session.scalars(
            select(PayoutMethod)
            .where(PayoutMethod.vendor_id == vendor_id, PayoutMethod.active.is_(True))
            .order_by(PayoutMethod.is_default.desc(), PayoutMethod.id)
        )
    )


def get(vendor_id: int, method_id: int) -> PayoutMethod:
    method = db.session.get(PayoutMethod, method_id)
    if method is None or method.vendor_id != vendor_id or not method.active:
        raise NotFound(_("No such payout method."))
    return method


def default_of(vendor_id: int) -> PayoutMethod | None:
    return db.session.scalar(
        select(PayoutMethod).where(
            PayoutMethod.vendor_id == vendor_id,
            PayoutMethod.active.is_(True),
            PayoutMethod.is_default.is_(True),
        )
    )


def _announce(method: PayoutMethod, verb: str, *, by_vendor: bool) -> None:
    who = "by the vendor" if by_vendor else "by staff"
    events.payout_method_changed.send(
        method,
        action=f"payout_method.{verb}",
        summary=f"Payout method {method.id} ({KINDS[method.kind]}, {mask(method.account_number)}) "
        f"of vendor {method.vendor_id} {verb} {who}",
        data={"vendor_id": method.vendor_id, "by_vendor": by_vendor, "kind": method.kind},
    )


def add(vendor, data: dict, *, by_vendor: bool = False, user_id: int | None = None):
    """A new method; the vendor's first one becomes the default, or when ``make_default``."""
    values = _clean(data)
    first = default_of(vendor.id) is None
    if data.get("make_default") and not first:
        _clear_default(vendor.id)
    method = PayoutMethod(
        vendor_id=vendor.id,
        is_default=first or bool(data.get("make_default")),
        added_by_vendor=by_vendor,
        created_by_id=user_id,
        **values,
    )
    db.session.add(method)
    db.session.flush()
    _announce(method, "added", by_vendor=by_vendor)
    return method


def _clear_default(vendor_id: int) -> None:
    db.session.execute(
        update(PayoutMethod)
        .where(PayoutMethod.vendor_id == vendor_id, PayoutMethod.is_default.is_(True))
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )


def make_default(method: PayoutMethod, *, by_vendor: bool = False) -> None:
    _clear_default(method.vendor_id)
    db.session.execute(
        update(PayoutMethod)
        .where(PayoutMethod.id == method.id)
        .values(is_default=True)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(method)
    _announce(method, "made default", by_vendor=by_vendor)


def remove(method: PayoutMethod, *, by_vendor: bool = False) -> None:
    """Removed from use; payouts already made keep their copy of the details. Another method
    becomes the default when the default goes."""
    was_default = method.is_default
    method.active = False
    method.is_default = False
    db.session.flush()
    _announce(method, "removed", by_vendor=by_vendor)
    if was_default:
        others = of_vendor(method.vendor_id)
        if others:
            make_default(others[0], by_vendor=by_vendor)
