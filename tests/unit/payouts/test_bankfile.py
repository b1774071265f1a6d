"""The bank bulk-payment file: its columns, amounts as exact decimal text, both formats alike,
and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from portal.payouts import bankfile
from portal.payouts.models import Payout, PayoutBatch


def _payout(**values) -> Payout:
    base = {
        "reference": "3f1c2b9e-0000-4000-8000-000000000001",
        "payee_name": "Corner Shop Ltd",
        "payee_account": "001234567890",
        "bank_code": "STANUGKA",
        "amount": 150_050,
        "decimals": 2,
        "currency": "UGX",
        "narrative": "Week 1",
    }
    return Payout(**{**base, **values})


BATCH = PayoutBatch(reference="PB-1-20261203-ABC123")


def _csv(payouts) -> list[list[str]]:
    return list(csv.reader(io.StringIO(bankfile.to_csv(BATCH, payouts).decode())))


def _xlsx(payouts) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(bankfile.to_xlsx(BATCH, payouts)), read_only=True).active
    return [["" if c is None else c for c in row] for row in sheet.iter_rows(values_only=True)]


def test_layout_of_both_formats():
    payouts = [_payout(), _payout(amount=7, decimals=0, bank_code="", payee_account="+25677")]
    expected = [
        list(bankfile.COLUMNS),
        [
            BATCH.reference,
            payouts[0].reference,
            "Corner Shop Ltd",
            "001234567890",
            "STANUGKA",
            "1500.50",
            "UGX",
            "Week 1",
        ],
        [
            BATCH.reference,
            payouts[0].reference,
            "Corner Shop Ltd",
            "+25677",
            "",
            "7",
            "UGX",
            "Week 1",
        ],
    ]
    assert _csv(payouts) == expected
    assert _xlsx(payouts) == expected
    assert bankfile.COLUMNS == (
        "batch_reference",
        "line_reference",
        "payee_name",
        "account_number",
        "bank_code",
        "amount",
        "currency",
        "narrative",
    )


@settings(max_examples=30, deadline=None)
@given(
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
    start=st.sampled_from(["=", "+", "-", "@", "＝", "\t"]),
    amount=st.integers(min_value=1, max_value=10**11),
    decimals=st.integers(min_value=0, max_value=6),
)
def test_no_cell_starts_a_formula_and_amounts_read_back(name, start, amount, decimals):
    from portal.money import amounts

    payout = _payout(
        payee_name=start + name, narrative=start + "1+1", amount=amount, decimals=decimals
    )
    for rows in (_csv([payout]), _xlsx([payout])):
        for cell in rows[1]:
            assert not str(cell).lstrip(" \n").startswith(("=", "+", "-", "@", "＝", "\t"))
        assert amounts.parse(rows[1][5], decimals) == amount
