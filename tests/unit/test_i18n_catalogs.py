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

# Every template's visible words are marked, except the templates still waiting for their marking
# pass (README, "Languages"): a template leaves this list once it is marked.
NOT_YET_MARKED = (
    "_macros.html",
    "accounts/account.html",
    "accounts/activity.html",
    "accounts/email_change.html",
    "accounts/email_confirm.html",
    "accounts/email_undo.html",
    "accounts/invitation_accept.html",
    "accounts/invitations.html",
    "accounts/invite_form.html",
    "accounts/link_invalid.html",
    "accounts/role_form.html",
    "accounts/roles.html",
    "accounts/user_form.html",
    "accounts/users.html",
    "approvals/_decide.html",
    "approvals/_for_subject.html",
    "approvals/_row.html",
    "approvals/_waiting.html",
    "approvals/index.html",
    "approvals/settings.html",
    "approvals/show.html",
    "audit/index.html",
    "audit/verify.html",
    "beneficiaries/form.html",
    "beneficiaries/index.html",
    "beneficiaries/selection_confirm.html",
    "beneficiaries/selection_result.html",
    "beneficiaries/show.html",
    "campaigns/_preview.html",
    "campaigns/index.html",
    "campaigns/new.html",
    "campaigns/show.html",
    "cards/lookup.html",
    "chain/_project_nav.html",
    "chain/ledger.html",
    "chain/project.html",
    "chain/transaction.html",
    "chain/transactions.html",
    "comms/log.html",
    "comms/outbox.html",
    "confirm.html",
    "dashboard/live.html",
    "disbursements/index.html",
    "disbursements/new.html",
    "disbursements/show.html",
    "email/_button.html",
    "email/_layout.html",
    "email/email_change.html",
    "email/email_changed.html",
    "email/invitation.html",
    "email/new_device.html",
    "email/password_changed.html",
    "email/password_reset.html",
    "email/two_factor_reset.html",
    "errors/error.html",
    "grievances/_for_beneficiary.html",
    "grievances/index.html",
    "grievances/new.html",
    "grievances/show.html",
    "groups/form.html",
    "groups/index.html",
    "groups/show.html",
    "imports/index.html",
    "imports/kobo_form.html",
    "imports/kobo_index.html",
    "imports/kobo_show.html",
    "imports/mapping.html",
    "imports/new.html",
    "imports/show.html",
    "ledger/_person_money.html",
    "ledger/redemptions.html",
    "ledger/statement.html",
    "main/home.html",
    "projects/index.html",
    "projects/show.html",
    "reconciliation/index.html",
    "settings/index.html",
)
MARKED_TEMPLATES = tuple(
    name
    for name in (
        str(p.relative_to(ROOT / "templates")) for p in sorted((ROOT / "templates").rglob("*.html"))
    )
    if name not in NOT_YET_MARKED
)
# Arabic covers every string, except those used only by the files still waiting for their Arabic
# pass (one pattern per line; a line leaves once its files are translated).
ARABIC_NOT_YET = re.compile(
    "^("
    + "|".join(
        (
            r"templates/messages/",
            r"portal/messages/",
            r"templates/accounts/account\.html",
        )
    )
    + ")"
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
    missing = sorted(
        repr(key)
        for key, files in strings.items()
        if not all(ARABIC_NOT_YET.match(f) for f in files)
        and not _translated(translations.get(key))
    )
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
