"""The sweeper's part for vendor payments: what pages no longer write when they are viewed, and
forgetting the keyed hashes of typed numbers once no limit counts them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from portal.extensions import db
from portal.quotas import services as quotas
from portal.redemptions import services as redemptions
from portal.redemptions.models import Redemption
from portal.timeutil import utcnow
from portal.vendor_portal import signin
from portal.vendor_portal.models import VendorSignIn


def _longest(*defined: quotas.Quota) -> timedelta:
    seconds = [rule.seconds for quota in defined for rule in quotas.rules(quota.config_name)]
    return timedelta(seconds=max(seconds, default=0))


def sweep() -> tuple[int, int]:
    """Write down expired codes (pages already show them expired), drop limit counts that no
    longer count, and blank the limit keys of old charges and sign-ins. Returns (redemptions
    expired, counts deleted)."""
    # Three transactions, each holding one kind of row: the code expiry waits on payments in
    # progress, the purge waits on nothing, and neither holds what the other's waiters want.
    expired = redemptions.expire_due()
    db.session.commit()
    purged = quotas.purge()
    db.session.commit()
    now = utcnow()
    # A charge's code lives minutes; its key is kept only while a limit could still count it.
    old = now - max(_longest(redemptions.CODES_SENT, redemptions.WRONG_GUESSES), timedelta(days=1))
    db.session.execute(
        update(Redemption)
        .where(Redemption.subject.is_not(None), Redemption.created_at < old)
        .values(subject=None)
        .execution_options(synchronize_session=False)
    )
    old = now - max(_longest(signin.SIGN_IN_CODES), timedelta(days=1))
    db.session.execute(
        update(VendorSignIn)
        .where(VendorSignIn.subject.is_not(None), VendorSignIn.created_at < old)
        .values(subject=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return expired, purged
