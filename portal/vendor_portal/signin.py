"""Vendor sign-in with the phone number and an SMS code.

Every number gets the same answer ("if it is an approved vendor's, a code is on its way"), so
the page does not tell which numbers belong to vendors. Codes sent per number are limited in
the database (``SIGN_IN_CODES``, whichever session or address asks, known number or not), per
address on the routes; the try and resend limits sit on the attempt row
(``portal.redemptions.codes``).
"""

from __future__ import annotations

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.audit import services as audit
from portal.beneficiaries import normalize
from portal.comms import services as comms
from portal.crypto import blind_index
from portal.errors import Conflict, ValidationFailed
from portal.extensions import db
from portal.i18n.locales import DEFAULT
from portal.quotas import services as quotas
from portal.redemptions import codes
from portal.settings.services import default_country
from portal.timeutil import utcnow
from portal.vendor_portal.models import USED, VendorSignIn
from portal.vendors.models import APPROVED, Vendor

CODE_PURPOSE = "vendor.sign_in"
SMS_PURPOSE = "vendor.sign_in"


SIGN_IN_CODES = quotas.define(
    "vendor-sign-in",
    "VENDOR_SIGNIN_SMS_LIMITS",
    _l(
        "Several sign-in codes were sent to this number a moment ago. "
        "You can ask for another {when}."
    ),
)


def _e164(raw: str) -> str:
    try:
        return normalize.phone_e164(raw, default_country())
    except normalize.InvalidValue as exc:
        raise ValidationFailed({"phone": str(exc)}) from None


def phone_index(raw: str) -> str:
    """The vendor blind index of a typed number; raises ValidationFailed for a bad number."""
    return blind_index("vendor-phone:" + _e164(raw))


def _text(code: str, vendor: Vendor) -> str:
    minutes = max(int(codes.ttl().total_seconds() // 60), 1)
    # In the vendor's language: the one their phone pages are in.
    with force_locale(vendor.locale or DEFAULT):
        return _(
            "%(code)s is your code to sign in to the aid portal as %(shop)s. It expires in "
            "%(minutes)s minutes. Nobody from the programme will ask you for it.",
            code=code,
            shop=vendor.name[:40],
            minutes=minutes,
        )


def _send(attempt: VendorSignIn, vendor: Vendor) -> None:
    code = codes.new_code()
    attempt.code_hash = codes.digest(CODE_PURPOSE, vendor.id, attempt.id, code=code)
    comms.send_sms(
        vendor.phone, _text(code, vendor), SMS_PURPOSE, expires_at=attempt.code_expires_at
    )


def request_code(raw_phone: str) -> VendorSignIn:
    phone = _e164(raw_phone)
    subject = quotas.subject("vendor-phone", phone)
    quotas.take(SIGN_IN_CODES, subject)
    vendor = db.session.scalar(
        select(Vendor).where(
            Vendor.phone_index == blind_index("vendor-phone:" + phone), Vendor.status == APPROVED
        )
    )
    now = utcnow()
    attempt = VendorSignIn(
        vendor_id=vendor.id if vendor else None,
        subject=subject,
        status=codes.AWAITING,
        code_expires_at=now + codes.ttl(),
        last_sent_at=now,
        created_at=now,
        tries=0,
        resends=0,
    )
    db.session.add(attempt)
    db.session.flush()
    if vendor is not None:
        _send(attempt, vendor)
        db.session.flush()
    return attempt


def resend(attempt_id: int) -> VendorSignIn:
    attempt = db.session.get(VendorSignIn, attempt_id)
    if attempt is None:
        raise Conflict(_("Start again: enter your phone number."))
    wait = codes.resend_wait(attempt)
    if wait < 0:
        raise Conflict(_("No more codes can be sent. Start again with your phone number."))
    if wait > 0:
        raise Conflict(
            ngettext(
                "Wait %(num)s second before asking for another code.",
                "Wait %(num)s seconds before asking for another code.",
                wait,
            )
        )
    if attempt.subject:
        quotas.take(SIGN_IN_CODES, attempt.subject)
    vendor = db.session.get(Vendor, attempt.vendor_id) if attempt.vendor_id else None
    placeholder = codes.digest(CODE_PURPOSE, "none", attempt.id, code=codes.new_code())
    if not codes.renew(VendorSignIn, attempt.id, placeholder):
        raise Conflict(_("A code was sent a moment ago. Wait a little before asking again."))
    attempt = db.session.get(VendorSignIn, attempt_id, populate_existing=True)
    if vendor is not None and vendor.status == APPROVED:
        _send(attempt, vendor)
    else:
        attempt.code_hash = None  # an unknown number stays unmatchable
    db.session.flush()
    return attempt


def verify(attempt_id: int, typed: str) -> tuple[codes.Check, Vendor | None]:
    code = codes.clean(typed)
    if code is None:
        raise ValidationFailed({"code": _("Enter the 6 digits of the code.")})
    attempt = db.session.get(VendorSignIn, attempt_id)
    if attempt is None:
        return codes.Check(codes.EXPIRED), None
    if attempt.vendor_id is not None:
        code_digest = codes.digest(CODE_PURPOSE, attempt.vendor_id, attempt.id, code=code)
        if codes.accept(VendorSignIn, attempt.id, code_digest, USED, used_at=utcnow()):
            vendor = db.session.get(Vendor, attempt.vendor_id)
            if vendor is None or vendor.status != APPROVED:
                return codes.Check(codes.USED), None
            audit.record(
                "vendor.signed_in",
                f"Vendor {vendor.id} signed in on the phone",
                target=vendor,
                actor_id=None,
                actor_label=f"vendor:{vendor.id}",
            )
            return codes.Check(codes.ACCEPTED), vendor
    check = codes.refuse(VendorSignIn, attempt.id)
    if check.outcome == codes.LOCKED and attempt.vendor_id is not None:
        audit.record(
            "vendor.sign_in_locked",
            f"Vendor {attempt.vendor_id}: sign-in code locked after too many wrong tries",
            target_type="vendors",
            target_id=attempt.vendor_id,
            actor_id=None,
            actor_label="anonymous",
        )
    return check, None
