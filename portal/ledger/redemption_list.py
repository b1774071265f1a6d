"""A project's redemptions for staff: filters, newest first, paged by seek.

Every filter combination is one range scan on an index: the project's
(``ix_redemptions_project_created``, ``…_status_created``), the vendor's
(``ix_redemptions_vendor_created``) or the person's (``…_beneficiary_created``). A page reads
``PER_PAGE + 1`` rows however many the table holds, and the total is counted only up to
``COUNT_LIMIT`` (beyond it the page says "more than").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, and_, func, or_, select

from portal.beneficiaries.models import Beneficiary
from portal.extensions import db
from portal.redemptions.models import Redemption

PER_PAGE = 50
COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class Filters:
    """What the list shows, by values only (an export streams after the request's session)."""

    project_id: int
    vendor_id: int | None = None
    beneficiary: str = ""  # a beneficiary's reference, exact
    start: date | None = None  # created on or after this day (UTC)
    end: date | None = None  # created on or before this day (UTC)
    status: str = ""

    def as_args(self) -> dict[str, str]:
        """The filters as query arguments, for links and the export form."""
        values = {
            "vendor": self.vendor_id or "",
            "beneficiary": self.beneficiary,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            "status": self.status,
        }
        return {k: str(v) for k, v in values.items() if v}


def query(filters: Filters) -> Select:
    """``(Redemption, beneficiary ref)`` rows matching ``filters``, newest first."""
    statement = (
        select(Redemption, Beneficiary.ref)
        .outerjoin(Beneficiary, Beneficiary.id == Redemption.beneficiary_id)
        .where(Redemption.project_id == filters.project_id)
    )
    if filters.vendor_id is not None:
        statement = statement.where(Redemption.vendor_id == filters.vendor_id)
    if filters.beneficiary:
        # Looked up first: with the id as a value the planner sees how few rows it has.
        person = db.session.scalar(
            select(Beneficiary.id).where(Beneficiary.ref == filters.beneficiary)
        )
        statement = statement.where(Redemption.beneficiary_id == (person or 0))
    if filters.status:
        statement = statement.where(Redemption.status == filters.status)
    if filters.start is not None:
        first_day = datetime.combine(filters.start, time())
        statement = statement.where(Redemption.created_at >= first_day)
    if filters.end is not None:
        next_day = datetime.combine(filters.end + timedelta(days=1), time())
        statement = statement.where(Redemption.created_at < next_day)
    return statement.order_by(Redemption.created_at.desc(), Redemption.id.desc())


def count(filters: Filters, limit: int = COUNT_LIMIT) -> int:
    """How many rows match, counted up to ``limit + 1``."""
    capped = query(filters).with_only_columns(Redemption.id).order_by(None).limit(limit + 1)
    return db.session.scalar(select(func.count()).select_from(capped.subquery()))


@dataclass
class Page:
    rows: list  # (Redemption, ref)
    total: int
    at_least: bool
    number: int | None
    previous: dict | None = None
    next: dict | None = None
    cursor: bool = False
    approximate: bool = False
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def items(self) -> list:
        return self.rows


def cursor_of(redemption: Redemption) -> str:
    return f"{redemption.created_at.isoformat()}_{redemption.id}"


def parse_cursor(token: str) -> tuple[datetime, int] | None:
    """The sort values a cursor names, or None when the text is not a cursor."""
    stamp, _, ident = (token or "").partition("_")
    if not (ident.isascii() and ident.isdigit() and len(ident) <= 10):
        return None
    try:
        return datetime.fromisoformat(stamp), int(ident)
    except ValueError:
        return None


def page(filters: Filters, after: str = "", before: str = "") -> Page:
    """One page: the first, the one after the ``after`` cursor, or the one before ``before``."""
    total = count(filters)
    at_least = total > COUNT_LIMIT
    total = min(total, COUNT_LIMIT)
    statement = query(filters)
    forward_cursor, back_cursor = parse_cursor(after), parse_cursor(before)
    if back_cursor is not None:
        stamp, ident = back_cursor
        newer = or_(
            Redemption.created_at > stamp,
            and_(Redemption.created_at == stamp, Redemption.id > ident),
        )
        statement = statement.where(newer).order_by(None)
        statement = statement.order_by(Redemption.created_at.asc(), Redemption.id.asc())
        rows = list(db.session.execute(statement.limit(PER_PAGE + 1)))
        more = len(rows) > PER_PAGE
        rows = list(reversed(rows[:PER_PAGE]))
        result = Page(rows, total, at_least, None, cursor=True)
        result.next = {"after": cursor_of(rows[-1][0])} if rows else None
        result.previous = {"before": cursor_of(rows[0][0])} if rows and more else None
        return result
    if forward_cursor is not None:
        stamp, ident = forward_cursor
        older = or_(
            Redemption.created_at < stamp,
            and_(Redemption.created_at == stamp, Redemption.id < ident),
        )
        statement = statement.where(older)
    rows = list(db.session.execute(statement.limit(PER_PAGE + 1)))
    more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    result = Page(rows, total, at_least, None if forward_cursor else 1, cursor=bool(forward_cursor))
    if more:
        result.next = {"after": cursor_of(rows[-1][0])}
    if forward_cursor is not None and rows:
        result.previous = {"before": cursor_of(rows[0][0])}
    return result
