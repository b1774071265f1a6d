"""Reading a provider statement (bank statement lines or a mobile-money report, CSV or XLSX).

Accepted columns (header names are matched without case, spaces, dashes or underscores):

- ``reference`` (needed): reference, line reference, external id, transaction reference, ref;
  the payout's reference as the portal sent it.
- ``amount`` (needed): amount, paid amount, credit amount; decimal text or a number, with at
  most the token's fraction digits.
- ``currency``: currency, ccy; must be the project's currency.
- ``date``: date, value date, transaction date; YYYY-MM-DD or a spreadsheet date.
- ``status``: status, transaction status; SUCCESSFUL / SUCCESS / PAID / COMPLETED / OK, or
  FAILED / REJECTED / REVERSED / RETURNED (such a line is kept and never matched as paid; a
  payout it names, sent or paid for the same amount, is recorded failed: the money came back).

Other columns are ignored. A file with any bad row is refused as a whole, with a report of every
bad row; nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flask_babel import gettext as _

from portal.i18n.formatting import number as format_number
from portal.imports.parsing import FileRejected, open_table
from portal.money import amounts

MAX_LINES = 50_000
ALIASES = {
    "reference": {"reference", "linereference", "externalid", "transactionreference", "ref"},
    "amount": {"amount", "paidamount", "creditamount"},
    "currency": {"currency", "ccy"},
    "date": {"date", "valuedate", "transactiondate"},
    "status": {"status", "transactionstatus"},
}
PAID_WORDS = {"SUCCESSFUL", "SUCCESS", "PAID", "COMPLETED", "OK"}
FAILED_WORDS = {"FAILED", "REJECTED", "REVERSED", "RETURNED"}
_REFERENCE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")


@dataclass(frozen=True)
class Line:
    row: int
    reference: str  # lower case: references are matched without case
    amount: int
    value_date: date | None
    paid: bool


@dataclass
class Report:
    lines: list[Line]
    errors: list[tuple[int, str]]  # (row number, what is wrong)


def _key(header) -> str:
    return re.sub(r"[\s_\-]", "", str(header or "")).lower()


def _columns(headers: list) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _key(header)
        for name, names in ALIASES.items():
            if key in names and name not in found:
                found[name] = index
    missing = [name for name in ("reference", "amount") if name not in found]
    if missing:
        if len(missing) == 2:
            raise FileRejected(
                _(
                    "The statement needs a reference and an amount column; see the accepted "
                    "column names on the upload page."
                )
            )
        raise FileRejected(
            _(
                "The statement needs a %(column)s column; see the accepted column names on the "
                "upload page.",
                column=missing[0],
            )
        )
    return found


def _amount(cell, decimals: int) -> int:
    if isinstance(cell, bool):
        raise amounts.AmountError(_("Not an amount."))
    if isinstance(cell, int | float):
        try:
            cell = format(Decimal(str(cell)).normalize(), "f")
        except InvalidOperation:
            raise amounts.AmountError(_("Not an amount.")) from None
    return amounts.parse(str(cell), decimals)


def _date(cell) -> date | None:
    if cell in ("", None):
        return None
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    try:
        found = date.fromisoformat(str(cell).strip())
    except ValueError:
        raise ValueError(_("Write the date as YYYY-MM-DD.")) from None
    if not 2000 <= found.year <= 2100:
        raise ValueError(_("The date is not between 2000 and 2100."))
    return found


def read(path: Path, filename: str, decimals: int, currency: str) -> Report:
    """Every line of the statement, or every bad row; FileRejected for an unreadable file."""
    lines: list[Line] = []
    errors: list[tuple[int, str]] = []
    with open_table(path, filename) as table:
        columns = _columns(table.headers)

        def cell(cells, name):
            index = columns.get(name)
            if index is None or index >= len(cells):
                return ""
            return cells[index]

        for number, cells in table.rows():
            if len(lines) + len(errors) >= MAX_LINES:
                raise FileRejected(
                    _("A statement may hold at most %(num)s lines.", num=format_number(MAX_LINES))
                )
            reference = str(cell(cells, "reference")).strip()
            if not _REFERENCE.fullmatch(reference):
                errors.append((number, _("The reference is missing or not a reference.")))
                continue
            try:
                amount = _amount(cell(cells, "amount"), decimals)
            except amounts.AmountError as exc:
                errors.append((number, _("Amount: %(problem)s", problem=exc.message)))
                continue
            shown = str(cell(cells, "currency")).strip().upper()
            if shown and shown != currency.upper():
                errors.append(
                    (
                        number,
                        _(
                            "The currency is %(found)s, not %(currency)s.",
                            found=shown[:8],
                            currency=currency,
                        ),
                    )
                )
                continue
            try:
                value_date = _date(cell(cells, "date"))
            except ValueError as exc:
                errors.append((number, str(exc)))
                continue
            status = str(cell(cells, "status")).strip().upper()
            if status and status not in PAID_WORDS | FAILED_WORDS:
                errors.append((number, _("Status: write SUCCESSFUL or FAILED.")))
                continue
            lines.append(
                Line(number, reference.lower(), amount, value_date, status not in FAILED_WORDS)
            )
    if not lines and not errors:
        raise FileRejected(_("The statement has no lines under its header."))
    return Report(lines, errors)
