"""Short payout references for bank files: what a bank clerk can type and a bank will carry.

A bank transfer's reference field is short (often 16 to 20 characters, sometimes letters and
digits only), and people retype it from paper. So a bank line carries ``PO`` and ten characters
of Crockford's base 32 (digits and capitals without I, L, O and U, which are misread), the last
a Luhn mod 32 check character: one wrong character or two neighbours swapped (except 0 and Z)
are caught instead of matching another payout. The mobile-money X-Reference-Id stays the
payout's UUID; statements may carry either.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "PO"
BODY = 9  # random characters: 32**9 (45 bits) per project lifetime is plenty, and unique anyway
LENGTH = len(PREFIX) + BODY + 1
# What people type for the characters the alphabet leaves out.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_VALUE = {char: index for index, char in enumerate(ALPHABET)}


def check_character(body: str) -> str:
    """Luhn mod N over ``body`` (N = 32): the character that makes the whole sum divisible."""
    factor, total = 2, 0
    for char in reversed(body):
        addend = factor * _VALUE[char]
        total += addend // len(ALPHABET) + addend % len(ALPHABET)
        factor = 1 if factor == 2 else 2
    return ALPHABET[(len(ALPHABET) - total % len(ALPHABET)) % len(ALPHABET)]


def new() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY))
    return f"{PREFIX}{body}{check_character(body)}"


def canonical(text: str) -> str | None:
    """The reference ``text`` stands for (case, spaces, dashes and O/I/L slips forgiven), or
    None when it is not one of ours (a UUID, a typo the check character catches, anything)."""
    squeezed = "".join(text.split()).replace("-", "").upper()
    if len(squeezed) != LENGTH or squeezed[: len(PREFIX)] not in (PREFIX, "P0"):
        return None
    body = squeezed[len(PREFIX) :].translate(_READ_AS)
    if any(char not in _VALUE for char in body):
        return None
    return f"{PREFIX}{body}" if check_character(body[:-1]) == body[-1] else None
