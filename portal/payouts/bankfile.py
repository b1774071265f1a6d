"""The bank bulk-payment file of a batch, as CSV and XLSX, one layout for both.

Columns, in this order, with this header row:

| column | content |
|---|---|
| batch_reference | the batch's reference (``PB-<project>-<date>-<random>``) |
| line_reference | the payout's reference (a UUID); the bank echoes it on the statement |
| payee_name | account holder's name |
| account_number | bank account number, or the mobile-money number in E.164 |
| bank_code | the bank's code (empty for mobile money) |
| amount | decimal text: ASCII digits, a point, every fraction digit of the token, no grouping |
| currency | the project's currency code |
| narrative | what the payee's statement shows |

Every text cell is neutralised against formula injection: a cell a spreadsheet would read as a
formula (starting with = + - @, a tab or CR, or their full-width forms) gets a leading ``'``;
a plain signed number, such as a mobile-money number in E.164, is left as it is
(``portal.beneficiaries.exports.escape_cell``).
"""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

from portal.beneficiaries.exports import escape_cell
from portal.money import amounts
from portal.payouts.models import Payout, PayoutBatch

COLUMNS = (
    "batch_reference",
    "line_reference",
    "payee_name",
    "account_number",
    "bank_code",
    "amount",
    "currency",
    "narrative",
)
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def rows(batch: PayoutBatch, payouts: list[Payout]) -> list[list[str]]:
    return [
        [
            escape_cell(value)
            for value in (
                batch.reference,
                p.line_reference or p.reference,
                p.payee_name,
                p.payee_account,
                p.bank_code,
                amounts.plain(p.amount, p.decimals),
                p.currency,
                p.narrative,
            )
        ]
        for p in payouts
    ]


def to_csv(batch: PayoutBatch, payouts: list[Payout]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(batch, payouts))
    return out.getvalue().encode("utf-8")


def to_xlsx(batch: PayoutBatch, payouts: list[Payout]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Payments")
    sheet.append(list(COLUMNS))
    for row in rows(batch, payouts):
        # Every cell text, amounts too: a number cell would be a float to the bank's importer.
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
