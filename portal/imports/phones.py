"""Phone numbers to E.164 at import speed, with the same answers as ``normalize.phone_e164``.

``phonenumbers.parse`` is general (extensions, RFC 3966, vanity letters, international
prefixes...) and costs about 15 µs a number: 1.5 s of every 100,000-row pass. Files mostly hold
one of two shapes, digits only in the default country's national form (9841234567) or ``+``
and the default country's code before them (+9779841234567). For those, parsing reduces to
"the digits are the national significant number", provided none of the rules that rewrite a
number applies: no leading 0 (Italian-style leading zeros), no match of the country's national
prefix or international dialling prefix, and (national form) no leading country code. Validity
is then the library's own test, done here with the same metadata: the number matches the
general pattern and the pattern of at least one number type, each with its possible lengths.

Only valid numbers are answered here; everything else, including every error, goes to
``normalize.phone_e164`` so messages stay the library's. Countries that share their calling
code with others (+1, +44, +7...) always go there too: phonenumbers then decides the region
from the digits. tests/unit/imports/test_phones.py checks the equality on many generated
numbers for a range of countries.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneMetadata

from portal.beneficiaries import normalize

# Every number type that makes phonenumbers' _number_type_helper answer something other than
# UNKNOWN: a number is valid when it matches the general description and one of these. Which
# one does not matter here, so the usual ones come first.
_TYPES = (
    "mobile",
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_MAX_NSN = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN


class _Desc:
    """One number description: its possible lengths (empty: any) and its pattern."""

    __slots__ = ("lengths", "pattern")

    def __init__(self, desc):
        self.lengths = frozenset(desc.possible_length)
        self.pattern = re.compile(desc.national_number_pattern)

    def matches(self, nsn: str) -> bool:
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern.fullmatch(nsn) is not None


def _desc(desc) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _Desc(desc)


class PhoneNormaliser:
    """E.164 for one default country: ``e164`` returns what ``normalize.phone_e164`` does."""

    def __init__(self, default_country: str):
        self.default_country = default_country
        self._fast = False
        metadata = PhoneMetadata.metadata_for_region(str(default_country).upper(), None)
        if metadata is None or metadata.general_desc is None:
            return
        code = metadata.country_code
        if len(phonenumbers.region_codes_for_country_code(code)) != 1:
            return  # shared calling code: the region depends on the digits
        general = _desc(metadata.general_desc)
        types = [found for name in _TYPES if (found := _desc(getattr(metadata, name)))]
        if general is None or not types:
            return
        self._code = str(code)
        # "+<digits>": phonenumbers takes the shortest leading digits that are a known calling
        # code; the + shape is answered here only when that can only be this country's code.
        self._plus = not any(
            int(self._code[:end]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
            for end in range(1, len(self._code))
        )
        self._general = general
        self._types = types
        self._idd = re.compile(metadata.international_prefix or "NonMatch")
        prefix = metadata.national_prefix_for_parsing
        self._national_prefix = re.compile(prefix) if prefix else None
        self._fast = True

    def e164(self, text: str) -> str:
        """E.164 form of ``text`` (stripped already), or ``normalize.InvalidValue``."""
        found = self._quick(text) if self._fast else None
        return found if found is not None else normalize.phone_e164(text, self.default_country)

    def _quick(self, text: str) -> str | None:
        if text[:1] == "+":
            digits = text[1:]
            if not (self._plus and digits.isascii() and digits.isdigit()):
                return None
            if not digits.startswith(self._code):
                return None
            nsn = digits[len(self._code) :]
        else:
            if not (text.isascii() and text.isdigit()):
                return None
            if text.startswith(self._code) or self._idd.match(text):
                return None  # phonenumbers may read a country code or a dialling prefix here
            nsn = text
        if not 2 <= len(nsn) <= _MAX_NSN or nsn[0] == "0":
            return None
        if self._national_prefix is not None and self._national_prefix.match(nsn):
            return None  # phonenumbers may strip a national prefix or carrier code
        if not self._general.matches(nsn):
            return None
        for desc in self._types:
            if desc.matches(nsn):
                return "+" + self._code + nsn
        return None
