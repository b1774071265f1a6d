"""The catalogs hold every marked string, and the pages this covers hold no unmarked text.

The strings are extracted from the source as ``make translations-extract`` does (babel.cfg), not
read from the committed ``messages.pot``, so a string marked and never extracted fails here.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}

# Every template's visible words are marked (README, "Languages").
MARKED_TEMPLATES = tuple(
    str(p.relative_to(ROOT / "templates")) for p in sorted((ROOT / "templates").rglob("*.html"))
)


def extracted() -> dict[object, set[str]]:
    """msgid (a tuple for plurals) -> the files that use it."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[object, set[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        key = message if isinstance(message, str) else tuple(message[:2])
        found.setdefault(key, set()).add(filename)
    return found


def catalog(locale: str) -> dict[object, object]:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        parsed = read_po(source, locale=locale)
    return {
        (m.id if isinstance(m.id, str) else tuple(m.id)): m.string
        for m in parsed
        if m.id and not m.fuzzy
    }


def _translated(value) -> bool:
    if isinstance(value, (tuple, list)):
        return bool(value) and all(value)
    return bool(value)


@pytest.fixture(scope="module")
def strings():
    found = extracted()
    assert len(found) > 200  # the extraction itself works
    return found


@pytest.mark.parametrize("locale", ["en", "ne"])
def test_every_marked_string_is_in_the_catalog(strings, locale):
    translations = catalog(locale)
    missing = sorted(
        f"{key!r} ({', '.join(sorted(files))})"
        for key, files in strings.items()
        if not _translated(translations.get(key))
    )
    assert not missing, f"{len(missing)} strings missing from {locale}:\n" + "\n".join(missing)


def test_arabic_covers_every_string(strings):
    translations = catalog("ar")
    missing = sorted(repr(key) for key in strings if not _translated(translations.get(key)))
    assert not missing, "missing from ar:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders():
    pattern = re.compile(r"%\(\w+\)s|\{\w*\}")
    for locale in ("ne", "ar"):
        for key, value in catalog(locale).items():
            ids = key if isinstance(key, tuple) else (key,)
            values = value if isinstance(value, (tuple, list)) else (value,)
            wanted = sorted(set(pattern.findall(ids[-1])))
            for text in values:
                if text:
                    assert sorted(set(pattern.findall(text))) == wanted, (locale, key, text)


class _Visible(HTMLParser):
    """Text a person reads: data outside script and style, and the attributes read aloud or
    shown (title, alt, aria-label, placeholder)."""

    READ = ("title", "alt", "aria-label", "placeholder")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in self.READ and value:
                self.found.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(self._skip - 1, 0)

    def handle_data(self, data):
        if not self._skip:
            self.found.append(data)


_JINJA = re.compile(r"\{%-?\s*trans\b.*?endtrans\s*-?%\}|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
# What may stand unmarked: symbols, punctuation, a "#" before a number, abbreviations read the
# same in every language the portal speaks.
_NEUTRAL = re.compile(r"^[\s\W\d_]*$|^(UTC|SMS|QR)$")


def unmarked(source: str) -> list[str]:
    parser = _Visible()
    # Jinja expressions and blocks are code or marked text: each becomes a separator.
    parser.feed(_JINJA.sub("\x1f", source))
    words = []
    for text in parser.found:
        for piece in re.split(r"[·|\x1f]", text):
            piece = piece.strip()
            if piece and not _NEUTRAL.match(piece):
                words.append(piece)
    return words


@pytest.mark.parametrize("name", MARKED_TEMPLATES)
def test_template_has_no_unmarked_text(name):
    source = (ROOT / "templates" / name).read_text(encoding="utf-8")
    assert unmarked(source) == [], name


def test_the_unmarked_text_check_finds_text():
    # The check itself: plain words, an attribute and text beside an expression are found.
    assert unmarked('<p title="Hello">Pay {{ amount }} now</p>') == ["Hello", "Pay", "now"]
    assert unmarked('<p>{{ _("Pay") }} · {{ x }} <span aria-hidden="true">◆</span></p>') == []
    assert unmarked("{% trans %}Marked words{% endtrans %}") == []
