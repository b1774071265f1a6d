"""Card sheets: A4 pages of credit-card-size cards (85.6 x 54 mm, ID-1), 2 x 4 with cut space.

Each card shows the project, the name (only when the requester may read personal data), the
reference, the QR of the card token and the token's hint. The QR is drawn as vector squares, so
it prints sharp at any resolution and the file stays small.
"""

from __future__ import annotations

import importlib.util
import os
import unicodedata
from dataclasses import dataclass

import qrcode
from fpdf import FPDF
from qrcode.constants import ERROR_CORRECT_M

CARD_W, CARD_H = 85.6, 54.0
COLS, ROWS = 2, 4
PER_PAGE = COLS * ROWS
GAP = 8.0  # between cards: room for the guillotine
PAGE_W, PAGE_H = 210.0, 297.0
LEFT = (PAGE_W - COLS * CARD_W - (COLS - 1) * GAP) / 2
TOP = (PAGE_H - ROWS * CARD_H - (ROWS - 1) * GAP) / 2
QR_SIZE = 36.0  # the QR with its quiet zone
QUIET = 4  # modules of white around the code, as the QR standard asks
BRAND = (11, 110, 79)
GREY = (93, 107, 122)
INK = (27, 36, 48)

# Unicode fonts looked for when no CARD_FONT is configured (Debian/Ubuntu, Alpine, RHEL paths).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
# Scripts the main font lacks (names in Devanagari, Bengali, Arabic...), used when installed.
FALLBACK_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf",
    "/usr/share/fonts/noto/NotoSansDevanagari-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansBengali-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    "/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf",
)


def find_font() -> str | None:
    return next((p for p in FONT_CANDIDATES if os.path.isfile(p)), None)


@dataclass(frozen=True)
class CardFace:
    project: str
    ref: str
    token: str
    hint: str
    issued: str
    name: str | None = None  # None: printed without a name


def _latin1(text: str) -> str:
    """For the built-in PDF fonts, which know only Latin-1: drop accents, replace the rest."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    return plain.encode("latin-1", "replace").decode("latin-1")


class CardSheet:
    """Collects cards into an A4 PDF in memory; ``output()`` gives its bytes."""

    def __init__(self, font_path: str | None = None, title: str = "Beneficiary cards"):
        pdf = FPDF(orientation="P", unit="mm", format="A4")
        pdf.set_auto_page_break(False)
        pdf.set_margins(0, 0, 0)
        pdf.set_title(title)
        pdf.set_creator("Aid portal")
        self.pdf = pdf
        self.count = 0
        self.unicode = bool(font_path)
        if font_path:
            pdf.add_font("card", "", font_path)
            bold = font_path.replace(".ttf", "-Bold.ttf").replace("-Regular-Bold", "-Bold")
            pdf.add_font("card", "B", bold if os.path.isfile(bold) else font_path)
            fallbacks = []
            for n, path in enumerate(p for p in FALLBACK_CANDIDATES if os.path.isfile(p)):
                pdf.add_font(f"fallback{n}", "", path)
                fallbacks.append(f"fallback{n}")
            if fallbacks:
                pdf.set_fallback_fonts(fallbacks, exact_match=False)
            if importlib.util.find_spec("uharfbuzz"):
                pdf.set_text_shaping(True)  # Devanagari and other scripts need shaping
            self.family = "card"
        else:
            self.family = "helvetica"
        self.ellipsis = "…" if self.unicode else "..."

    @property
    def pages(self) -> int:
        return self.pdf.pages_count

    def add(self, face: CardFace) -> None:
        slot = self.count % PER_PAGE
        if slot == 0:
            self.pdf.add_page()
        col, row = slot % COLS, slot // COLS
        self._draw(face, LEFT + col * (CARD_W + GAP), TOP + row * (CARD_H + GAP))
        self.count += 1

    def output(self) -> bytes:
        return bytes(self.pdf.output())

    # --- drawing ---------------------------------------------------------------------------

    def _text(self, value: str) -> str:
        return value if self.unicode else _latin1(value)

    def _fit(self, value: str, width: float) -> str:
        """The text, cut with an ellipsis so that it fits ``width`` at the current font."""
        value = self._text(value)
        if self.pdf.get_string_width(value) <= width:
            return value
        while value and self.pdf.get_string_width(value + self.ellipsis) > width:
            value = value[:-1]
        return value.rstrip() + self.ellipsis

    def _wrap(self, value: str, width: float, max_lines: int) -> list[str]:
        lines: list[str] = []
        current = ""
        words = self._text(value).split()
        for index, word in enumerate(words):
            trial = f"{current} {word}".strip()
            if self.pdf.get_string_width(trial) <= width or not current:
                current = trial
                continue
            if len(lines) == max_lines - 1:
                current = " ".join([current, *words[index:]])
                break
            lines.append(current)
            current = word
        if current:
            lines.append(current)
        lines = lines[:max_lines]
        return [*lines[:-1], self._fit(lines[-1], width)] if lines else []

    def _draw(self, face: CardFace, x: float, y: float) -> None:
        pdf = self.pdf
        # The cut line.
        pdf.set_draw_color(170, 178, 186)
        pdf.set_line_width(0.2)
        pdf.rect(x, y, CARD_W, CARD_H, round_corners=True, corner_radius=3.18)
        # Header band with the project's name.
        pdf.set_fill_color(*BRAND)
        pdf.rect(
            x, y, CARD_W, 9, style="F", round_corners=("TOP_LEFT", "TOP_RIGHT"), corner_radius=3.18
        )
        pdf.set_text_color(255, 255, 255)
        pdf.set_font(self.family, "B", 9)
        pdf.text(x + 4, y + 6, self._fit(face.project, CARD_W - 8))

        self._qr(face.token, x + 3, y + 12.5, QR_SIZE)

        left, width = x + 42, CARD_W - 45
        cursor = y + 15.5 if face.name else y + 19
        if face.name:
            pdf.set_font(self.family, "B", 10.5)
            pdf.set_text_color(*INK)
            for line in self._wrap(face.name, width, 2):
                pdf.text(left, cursor, line)
                cursor += 4.6
            cursor += 1.2
        self._label(left, cursor, "Reference")
        pdf.set_font(self.family, "B", 12)
        pdf.text(left, cursor + 4.8, self._fit(face.ref, width))
        cursor += 10.5
        half = width / 2
        self._label(left, cursor, "Card")
        self._label(left + half, cursor, "Issued")
        pdf.set_font(self.family, "B", 8.5)
        pdf.text(left, cursor + 3.8, self._fit(f"{self.ellipsis}{face.hint}", half - 1))
        pdf.text(left + half, cursor + 3.8, self._fit(face.issued, half))
        pdf.set_font(self.family, "", 5.5)
        pdf.set_text_color(*GREY)
        pdf.text(left, y + CARD_H - 3.5, self._fit("Show this card to the vendor.", width))

    def _label(self, x: float, y: float, text: str) -> None:
        self.pdf.set_font(self.family, "", 6)
        self.pdf.set_text_color(*GREY)
        self.pdf.text(x, y, text.upper())
        self.pdf.set_text_color(*INK)

    def _qr(self, token: str, x: float, y: float, size: float) -> None:
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
        code.add_data(token)
        code.make(fit=True)
        matrix = code.get_matrix()
        count = len(matrix)
        module = size / (count + 2 * QUIET)
        x0, y0 = x + QUIET * module, y + QUIET * module
        self.pdf.set_fill_color(0, 0, 0)
        for r, row in enumerate(matrix):
            c = 0
            while c < count:
                if not row[c]:
                    c += 1
                    continue
                start = c
                while c < count and row[c]:
                    c += 1
                # A hair taller than a module, so that viewers show no seams between rows.
                self.pdf.rect(
                    x0 + start * module, y0 + r * module, (c - start) * module, module + 0.03, "F"
                )
