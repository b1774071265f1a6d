"""The import's fast phone path answers exactly as phonenumbers does, or leaves it to it."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from portal.beneficiaries import normalize
from portal.imports.phones import PhoneNormaliser

# Countries with plain rules (NP, KE, BD...), a carrier-code national prefix (AR, BR), no
# national prefix (IT, HT: leading zeros are part of the number), a shared calling code (US,
# GB, RU) and calling codes whose leading digits are not a code of their own.
REGIONS = (
    "NP", "KE", "IN", "BD", "PK", "UG", "ET", "SO", "NG", "AF", "SY", "YE", "MM", "HT", "IT",
    "AR", "BR", "MX", "DE", "US", "GB", "RU", "PH", "ID", "LB", "CD", "SS", "TD",
)  # fmt: skip
TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.VOIP,
)
PER_REGION = 4000


def _library(text: str, region: str) -> str | None:
    try:
        return normalize.phone_e164(text, region)
    except normalize.InvalidValue:
        return None


def _candidates(region: str, rng: random.Random) -> list[str]:
    """National numbers near the region's examples (valid and not), in the shapes files use."""
    code = str(phonenumbers.country_code_for_region(region))
    seeds = []
    for kind in TYPES:
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            seeds.append(phonenumbers.national_significant_number(example))
    seeds = seeds or ["9841234567"]
    out = []
    for _ in range(PER_REGION):
        seed = rng.choice(seeds)
        keep = rng.randint(0, min(4, len(seed)))
        length = len(seed) + rng.choice((0, 0, 0, 0, -1, 1, -2, 2))
        tail = "".join(rng.choice("0123456789") for _ in range(max(0, length - keep)))
        digits = (seed[:keep] + tail)[: max(length, 1)]
        shape = rng.random()
        if shape < 0.45:
            out.append(digits)
        elif shape < 0.7:
            out.append("+" + code + digits)
        elif shape < 0.78:
            out.append("0" + digits)
        elif shape < 0.86:
            out.append(code + digits)
        elif shape < 0.92:
            out.append("00" + code + digits)
        else:
            out.append("+" + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 16))))
    return out


@pytest.mark.parametrize("region", REGIONS)
def test_the_fast_path_agrees_with_phonenumbers(region):
    rng = random.Random(f"phones-{region}")
    phones = PhoneNormaliser(region)
    answered = 0
    for text in _candidates(region, rng):
        quick = phones._quick(text) if phones._fast else None
        expected = _library(text, region)
        if quick is not None:
            answered += 1
            assert quick == expected, (region, text)
            assert phones.e164(text) == quick
    if region in ("NP", "KE", "BD", "IN", "PK", "UG"):
        assert answered > PER_REGION // 10, (region, answered)  # the fast path is really used
    if region in ("US", "GB", "RU"):
        assert answered == 0  # shared calling codes always go to phonenumbers


def test_every_nepali_mobile_prefix_and_length():
    """Exhaustive over the first four digits for the lengths around Nepal's: every shape."""
    phones = PhoneNormaliser("NP")
    rng = random.Random(977)
    for head in range(10_000):
        for length in (8, 9, 10, 11):
            text = f"{head:04d}" + "".join(rng.choice("0123456789") for _ in range(length - 4))
            for shaped in (text, "+977" + text):
                quick = phones._quick(shaped)
                if quick is not None:
                    assert quick == _library(shaped, "NP"), shaped


def test_errors_and_odd_shapes_are_the_library_s():
    phones = PhoneNormaliser("NP")
    for text, message in [
        ("12", "Not a valid phone number for NP."),
        ("0712345678", "Not a valid phone number for NP."),
        ("not a phone", "Not a phone number."),
        ("+1", "Not a phone number."),
    ]:
        with pytest.raises(normalize.InvalidValue, match=message):
            phones.e164(text)
    for text in ("984-1234567", "+977 984 123 4567", "00977 9841234567", "٩٨٤١٢٣٤٥٦٧"):
        assert phones._quick(text) is None
        assert phones.e164(text) == _library(text, "NP")
    assert phones.e164("9841234567") == phones.e164("+9779841234567") == "+9779841234567"


def test_unknown_country_falls_back_entirely():
    phones = PhoneNormaliser("ZZ")
    assert not phones._fast
    with pytest.raises(normalize.InvalidValue):
        phones.e164("9841234567")
