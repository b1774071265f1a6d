"""The languages the portal speaks, and how a language code is shown to people.

Pages and messages never show a bare code (``ne``): the name comes from Babel's locale data, in
the language itself and, when the page is in another language, in the page's language too
("नेपाली (Nepali)"), so a person who cannot read the page still finds their own language.
"""

from __future__ import annotations

from collections.abc import Iterable

from babel import Locale, UnknownLocaleError

DEFAULT = "en"
# Pages: en and ne are complete; ar covers the layout, sign-in and the vendor's phone pages,
# everything else falls back to English (README, "Languages").
PAGE_LOCALES = ("en", "ne", "ar")
# Messages to beneficiaries: what enrolment offers (``portal.beneficiaries.forms.LANGUAGES``).
MESSAGE_LOCALES = ("en", "ne", "hi", "bn", "sw")

# Babel names the numbering system a locale writes by default (``deva``, the native digits, for
# Nepali; ``latn`` for Arabic as written in most of the region) but formats only Latin digits
# itself: the first code point of each system's digits, for the systems the portal maps.
_ZERO = {"latn": 0x30, "deva": 0x966, "arab": 0x660, "beng": 0x9E6}


def of_user(user) -> str:
    """The language a staff member reads their emails in: the one they chose for their pages,
    English until they choose (an email has no browser to ask)."""
    chosen = getattr(user, "locale", None)
    return chosen if chosen in PAGE_LOCALES else DEFAULT


def locale_of(code: str | None) -> Locale:
    try:
        return Locale.parse(code or DEFAULT)
    except (ValueError, UnknownLocaleError):
        return Locale.parse(DEFAULT)


def is_rtl(code: str | None) -> bool:
    return locale_of(code).text_direction == "rtl"


def language_name(code: str | None, page: str | None = None) -> str:
    """The language's own name, with the page language's name for it beside when they differ:
    ``language_name("ne", "en")`` → "नेपाली (Nepali)", ``language_name("en", "en")`` → "English"."""
    if not code:
        return ""
    try:
        target = Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return code
    own = _capital(target.get_display_name(target) or code)
    if page is None:
        from flask_babel import get_locale

        current = get_locale()
        page = str(current) if current else DEFAULT
    if locale_of(page).language == target.language:
        return own
    translated = _capital(target.get_display_name(locale_of(page)) or "")
    return f"{own} ({translated})" if translated and translated != own else own


def choices(codes: Iterable[str], page: str | None = None) -> list[tuple[str, str]]:
    """``(code, name)`` pairs for a select field, names as ``language_name`` writes them."""
    return [(code, language_name(code, page)) for code in codes]


def native_digits(code: str | None) -> str:
    """The ten digits the locale writes per Babel's data (``०१…`` for ne, ``01…`` for en
    and ar); Latin digits for a system the portal does not map."""
    zero = _ZERO.get(locale_of(code).default_numbering_system, 0x30)
    return "".join(chr(zero + n) for n in range(10))


def to_native_digits(text: str, code: str | None) -> str:
    digits = native_digits(code)
    if digits[0] == "0":
        return text
    return text.translate(str.maketrans("0123456789", digits))


def _capital(name: str) -> str:
    return name[:1].upper() + name[1:]
