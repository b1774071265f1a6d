"""A vendor statement drawn as an A4 PDF with fpdf2, the library the card sheets use.

Pure drawing from a ``Statement`` of plain values: no database, no request, so it runs in
``portal.offload``'s thread pool. Text is in a Unicode font when one is installed (names in
any script), else in the built-in Latin-1 font with the rest replaced.
"""

from __future__ import annotations

import os

from fpdf import FPDF

from portal.cards.pdf import _latin1, find_font
from portal.ledger.statements import Statement

BRAND = (11, 110, 79)
GREY = (93, 107, 122)
INK = (27, 36, 48)
RULE = (210, 216, 222)
# Column widths (mm) of the 180 mm wide table: date, reference, beneficiary, amount.
COLUMNS = ((34, "Settled (UTC)", "L"), (34, "Reference", "L"), (72, "Beneficiary", "L"))
AMOUNT_W = 40


class _Document(FPDF):
    def __init__(self, statement: Statement, font: str | None):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.statement = statement
        self.unicode = bool(font)
        if font:
            self.add_font("body", "", font)
            bold = font.replace(".ttf", "-Bold.ttf").replace("-Regular-Bold", "-Bold")
            self.add_font("body", "B", bold if os.path.isfile(bold) else font)
            self.family = "body"
        else:
            self.family = "helvetica"
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)
        self.set_title(f"Statement: {statement.vendor}")
        self.set_creator("Aid portal")

    def t(self, text: str) -> str:
        return text if self.unicode else _latin1(text.replace("•", "*"))

    def footer(self):
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(*GREY)
        s = self.statement
        self.cell(
            0,
            5,
            self.t(f"{s.vendor} · {s.project} · {s.start} to {s.end} · page {self.page_no()}"),
            align="C",
        )

    def table_head(self):
        self.set_font(self.family, "B", 9)
        self.set_text_color(*GREY)
        for width, label, align in COLUMNS:
            self.cell(width, 7, label, border="B", align=align)
        self.cell(AMOUNT_W, 7, f"Amount ({self.t(self.statement.currency)})", border="B", align="R")
        self.ln()
        self.set_text_color(*INK)


def render(statement: Statement) -> bytes:
    """The statement's PDF bytes."""
    pdf = _Document(statement, find_font())
    t = pdf.t
    pdf.add_page()
    pdf.set_text_color(*BRAND)
    pdf.set_font(pdf.family, "B", 18)
    pdf.cell(0, 10, "Vendor statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font(pdf.family, "B", 12)
    pdf.cell(0, 7, t(statement.vendor), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", 10)
    for label, value in (
        ("Project", statement.project),
        ("Period", f"{statement.start} to {statement.end} (UTC)"),
        ("Currency", statement.currency),
        ("Made", statement.made_at),
    ):
        pdf.set_text_color(*GREY)
        pdf.cell(30, 6, label)
        pdf.set_text_color(*INK)
        pdf.cell(0, 6, t(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    _balance(pdf, "Opening balance", statement.opening, bold=True)
    pdf.ln(2)
    pdf.table_head()
    pdf.set_font(pdf.family, "", 9)
    if not statement.lines:
        pdf.set_text_color(*GREY)
        pdf.cell(0, 8, "No redemptions settled in this period.", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(*INK)
    for line in statement.lines:
        if pdf.will_page_break(6):
            pdf.add_page()
            pdf.table_head()
            pdf.set_font(pdf.family, "", 9)
        values = (line.day, line.reference, line.beneficiary)
        for (width, _, align), value in zip(COLUMNS, values, strict=True):
            pdf.cell(width, 6, _fit(pdf, t(value), width - 1), border="B", align=align)
        pdf.cell(AMOUNT_W, 6, t(line.amount), border="B", align="R")
        pdf.ln()
    pdf.ln(3)
    _balance(pdf, f"Settled in the period ({statement.count})", statement.total)
    if statement.paid_out_count:
        _balance(pdf, f"Paid out to you ({statement.paid_out_count})", f"-{statement.paid_out}")
    _balance(pdf, "Closing balance", statement.closing, bold=True)
    if statement.pending_count:
        pdf.ln(2)
        pdf.set_text_color(*GREY)
        pdf.set_font(pdf.family, "", 9)
        pdf.multi_cell(
            0,
            5,
            t(
                f"Not yet settled at the end of the period: {statement.pending_count} "
                f"{'payment' if statement.pending_count == 1 else 'payments'}, "
                f"{statement.pending}. They count once the chain confirms them."
            ),
        )
    return bytes(pdf.output())


def _balance(pdf: _Document, label: str, value: str, bold: bool = False) -> None:
    pdf.set_font(pdf.family, "B" if bold else "", 10)
    pdf.set_draw_color(*RULE)
    pdf.cell(180 - AMOUNT_W - 20, 7, pdf.t(label))
    pdf.cell(AMOUNT_W + 20, 7, pdf.t(value), align="R", new_x="LMARGIN", new_y="NEXT")


def _fit(pdf: FPDF, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text + "..."
