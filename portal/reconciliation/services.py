"""Statements uploaded, lines matched to payouts, exceptions listed and resolved.

A payout is paid for the books only with a matching line (``books = matched``) or an override
by a user holding ``payout.override``, with a reason (``books = override``); both are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import false, or_, select, update

from portal import events
from portal.errors import DomainError, InvalidTransition, NotFound, ValidationFailed
from portal.extensions import db
from portal.i18n.formatting import number
from portal.payouts import live, references
from portal.payouts import services as payouts
from portal.payouts.models import (
    BOOKS_MATCHED,
    BOOKS_OVERRIDE,
    FAILED,
    PAID,
    PENDING,
    SENT,
    Payout,
)
from portal.projects import services as projects
from portal.reconciliation import matching, statements
from portal.reconciliation.models import (
    EXCEPTIONS,
    MATCHED,
    NOT_PAID,
    Statement,
    StatementLine,
)
from portal.timeutil import utcnow


class StatementRefused(ValidationFailed):
    """The file was not taken; ``rows`` lists each bad row."""

    def __init__(self, message: str, rows: list[tuple[int, str]] | None = None):
        super().__init__({"file": message})
        self.message = message
        self.rows = rows or []


def _candidates(project_id: int) -> tuple[dict[str, matching.Candidate], set[int]]:
    found: dict[str, matching.Candidate] = {}
    booked: set[int] = set()
    rows = db.session.execute(
        select(
            Payout.id,
            Payout.reference,
            Payout.line_reference,
            Payout.amount,
            Payout.status,
            Payout.books,
        ).where(Payout.project_id == project_id)
    )
    for pid, reference, short, amount, status, books in rows:
        candidate = matching.Candidate(pid, amount, status in (SENT, PAID) and books is None)
        found[reference.lower()] = candidate
        if short:  # a bank line's reference: the same payout under its short name
            found[short.lower()] = candidate
        if books is not None:
            booked.add(pid)
    return found, booked


def _key(reference: str) -> str:
    """What a statement's reference is looked up by: a short bank reference as typed (dashes,
    spaces, O for 0) read as the one it stands for; anything else as it is, without case."""
    short = references.canonical(reference)
    return short.lower() if short else reference.lower()


def upload(project, path: Path, filename: str, user_id: int | None) -> Statement:
    """Read, match and store a statement; StatementRefused (nothing written) on a bad file."""
    decimals = payouts.decimals_of(project.id)
    if decimals is None:
        raise StatementRefused(
            _("This project's payments are not set up yet, so it has no payouts to match.")
        )
    try:
        report = statements.read(path, filename, decimals, project.currency)
    except statements.FileRejected as exc:
        raise StatementRefused(exc.message) from None
    if report.errors:
        raise StatementRefused(
            ngettext(
                "%(count)s row of the statement is not right; nothing was taken. "
                "Fix it and upload the whole file again.",
                "%(count)s rows of the statement are not right; nothing was taken. "
                "Fix them and upload the whole file again.",
                len(report.errors),
                count=number(len(report.errors)),
            ),
            report.errors,
        )
    candidates, booked = _candidates(project.id)
    outcomes = matching.match(
        [(_key(line.reference), line.amount, line.paid) for line in report.lines],
        candidates,
        booked,
    )
    statement = Statement(
        project_id=project.id,
        filename=Path(filename).name[:255],
        line_count=len(report.lines),
        uploaded_by_id=user_id,
    )
    db.session.add(statement)
    db.session.flush()
    counts: dict[str, int] = {}
    for line, outcome in zip(report.lines, outcomes, strict=True):
        db.session.add(
            StatementLine(
                statement_id=statement.id,
                project_id=project.id,
                row_number=line.row,
                reference=line.reference,
                amount=line.amount,
                value_date=line.value_date,
                state=outcome.state,
                payout_id=outcome.payout_id,
                resolution="",
            )
        )
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
        if outcome.state == MATCHED:
            _book(outcome.payout_id, BOOKS_MATCHED, f"line {line.row} of {statement.filename}")
        elif outcome.state == NOT_PAID and outcome.payout_id is not None:
            _returned(outcome.payout_id, line.amount, f"line {line.row} of {statement.filename}")
    db.session.flush()
    events.statement_uploaded.send(
        statement,
        action="statement.uploaded",
        summary=f"Statement {statement.filename} uploaded: {len(report.lines)} lines, "
        + ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items())),
        project_id=project.id,
        data={"statement_id": statement.id, "counts": counts},
    )
    return statement


def _book(payout_id: int, how: str, why: str) -> None:
    """Paid for the books, once: the UPDATE's WHERE keeps a second match from counting."""
    done = db.session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.books.is_(None))
        .values(books=how, books_reason=why[:255], books_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        raise InvalidTransition(_("This payout is already paid for the books."))
    # A bank payout is known paid only now; a mobile-money one may be paid already.
    if not payouts.move(payout_id, (SENT,), PAID, why=f"statement {why}"):
        payouts.booked(payout_id, f"statement {why}")  # its books changed


def _returned(payout_id: int, amount: int, where: str) -> None:
    """A line the statement marks failed, rejected, reversed or returned, for a payout sent or
    paid with the same amount: the money did not reach the payee or came back, so the payout
    failed (and a settlement it paid owes its amount again). Another amount is left for a
    person to look at; a payout failed already is left as it is (the same file again)."""
    payout = db.session.get(Payout, payout_id)
    if payout is None or payout.amount != amount:
        return
    payouts.returned(payout_id, f"the statement says it was not paid ({where})")


# --------------------------------------------------------------------------- the view


@dataclass
class View:
    matched: list
    missing: list[Payout]
    exceptions: list
    resolved: list
    not_paid: list


def lines_of(project_id: int, states) -> list:
    return list(
        db.session.execute(
            select(StatementLine, Statement.filename)
            .join(Statement, Statement.id == StatementLine.statement_id)
            .where(StatementLine.project_id == project_id, StatementLine.state.in_(states))
            .order_by(StatementLine.id.desc())
            .limit(500)
        ).all()
    )


def view(project_id: int) -> View:
    exceptions = [row for row in lines_of(project_id, EXCEPTIONS) if row[0].resolved_at is None]
    resolved = [
        row
        for row in lines_of(project_id, (*EXCEPTIONS, MATCHED))
        if row[0].resolved_at is not None
    ]
    missing = list(
        db.session.scalars(
            select(Payout)
            .where(
                Payout.project_id == project_id,
                Payout.status.in_((SENT, PAID)),
                Payout.books.is_(None),
            )
            .order_by(Payout.id)
            .limit(500)
        )
    )
    return View(
        matched=lines_of(project_id, (MATCHED,)),
        missing=missing,
        exceptions=exceptions,
        resolved=resolved,
        not_paid=lines_of(project_id, ("not_paid",)),
    )


def get_line(user, line_id: int) -> StatementLine:
    line = db.session.scalar(
        projects.scope(select(StatementLine), StatementLine.project_id, user).where(
            StatementLine.id == line_id
        )
    )
    if line is None:
        raise NotFound(_("No such statement line."))
    return line


# --------------------------------------------------------------------------- resolving


def _reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise ValidationFailed({"reason": _("Say why, in a few words.")})
    return reason[:200]


def _claim_line(line: StatementLine, user_id: int, resolution: str, **values) -> None:
    done = db.session.execute(
        update(StatementLine)
        .where(
            StatementLine.id == line.id,
            StatementLine.state.in_(EXCEPTIONS),
            StatementLine.resolved_at.is_(None),
        )
        .values(resolved_by_id=user_id, resolved_at=utcnow(), resolution=resolution, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        raise InvalidTransition(_("This line is resolved already; reload the page."))
    db.session.refresh(line)


def match_by_hand(line: StatementLine, reference: str, reason: str, user, *, override: bool):
    """Match an unexpected or amount-differs line to the payout with ``reference`` in the same
    project. Amounts must agree unless the user may override."""
    reason = _reason(reason)
    short = references.canonical(reference or "")
    payout = db.session.scalar(
        select(Payout).where(
            Payout.project_id == line.project_id,
            or_(
                Payout.reference == (reference or "").strip().lower(),
                Payout.line_reference == short if short else false(),
            ),
        )
    )
    if payout is None:
        raise ValidationFailed({"reference": _("No payout of this project has that reference.")})
    if payout.status not in (SENT, PAID) or payout.books is not None:
        raise ValidationFailed(
            {
                "reference": _(
                    "That payout is %(status)s and paid for the books already.",
                    status=payout.status,
                )
                if payout.books
                else _("That payout is %(status)s.", status=payout.status)
            }
        )
    if payout.amount != line.amount and not override:
        raise ValidationFailed(
            {"reference": _("The amounts differ: only someone allowed to override may match it.")}
        )
    _claim_line(line, user.id, f"matched by hand: {reason}", state=MATCHED, payout_id=payout.id)
    _book(payout.id, BOOKS_MATCHED, f"line {line.row_number} matched by hand: {reason}")
    events.statement_line_resolved.send(
        line,
        action="statement.line_matched",
        summary=f"Statement line {line.id} matched by hand to payout {payout.id}: {reason}",
        project_id=line.project_id,
        data={
            "line_id": line.id,
            "payout_id": payout.id,
            "amounts_agree": payout.amount == line.amount,
        },
    )


def set_aside(line: StatementLine, reason: str, user) -> None:
    """An exception looked into and left as it is (a line of another system, a bank fee)."""
    reason = _reason(reason)
    _claim_line(line, user.id, f"set aside: {reason}")
    events.statement_line_resolved.send(
        line,
        action="statement.line_set_aside",
        summary=f"Statement line {line.id} ({line.state.replace('_', ' ')}) set aside: {reason}",
        project_id=line.project_id,
        data={"line_id": line.id, "state": line.state},
    )


def override(payout: Payout, outcome: str, reason: str, user) -> None:
    """Paid or failed without a matching line: ``payout.override`` and a reason, audited."""
    reason = _reason(reason)
    if outcome == PAID:
        if payout.books is not None:
            raise InvalidTransition(_("This payout is paid for the books already."))
        if payout.status not in (PENDING, SENT, PAID):
            raise InvalidTransition(
                _("This payout is %(status)s; it cannot be marked paid.", status=payout.status)
            )
        done = db.session.execute(
            update(Payout)
            .where(Payout.id == payout.id, Payout.books.is_(None))
            .values(books=BOOKS_OVERRIDE, books_reason=reason, books_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            raise InvalidTransition(_("This payout is paid for the books already."))
        if not payouts.move(
            payout.id, (PENDING, SENT), PAID, why=f"override by user {user.id}: {reason}"
        ):
            payouts.booked(payout.id, f"override by user {user.id}")
    elif outcome == FAILED:
        if not payouts.move(
            payout.id,
            (PENDING, SENT),
            FAILED,
            why=f"override by user {user.id}",
            reason=reason,
        ):
            raise InvalidTransition(
                _("This payout is %(status)s; it cannot be marked failed.", status=payout.status)
            )
    else:
        raise DomainError(_("Choose paid or failed."))
    db.session.refresh(payout)
    live.emit(payout)
    events.payout_changed.send(
        payout,
        action="payout.override",
        summary=f"Payout {payout.id} marked {outcome} without a statement line: {reason}",
        project_id=payout.project_id,
        data={"payout_id": payout.id, "outcome": outcome, "reason": reason},
    )
