"""The password policy, one check for every place a password is set, and the password hash.

A password needs 12 to 256 characters, must not be (a repetition or a digits-and-symbols variant
of) one of the most common passwords, and must be rated hard to guess by zxcvbn. zxcvbn's
matching grows fast with the length of its input (4.5.0 refuses more than 72 characters), so it
rates a bounded prefix; past that prefix a password is at least as strong as its prefix.

The common list, ``common_passwords.txt``, is the top of zxcvbn's own ranked "passwords"
frequency list, written by ``python -m portal.accounts.passwords`` (run it again after upgrading
zxcvbn; a test checks the file matches the installed package).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from portal import offload
from portal.errors import DomainError

MIN_LENGTH = 12
MAX_LENGTH = 256
# The prefix zxcvbn rates: long enough for any passphrase a person types, fast to rate.
ESTIMATE_PREFIX = 64
# zxcvbn scores 0 to 4; 3 is "safely unguessable: moderate protection from offline attacks".
MIN_SCORE = 3
COMMON_COUNT = 10_000
COMMON_FILE = Path(__file__).with_name("common_passwords.txt")

# One KDF for every stored password and for the dummy checked when an email is unknown.
HASH_METHOD = "scrypt"

_TRIM = re.compile(r"^[\W\d_]+|[\W\d_]+$")


# zxcvbn's warnings (English, from its own code) in the reader's language.
ZXCVBN_WARNINGS = {
    "Straight rows of keys are easy to guess.": _l("Straight rows of keys are easy to guess."),
    "Short keyboard patterns are easy to guess.": _l("Short keyboard patterns are easy to guess."),
    'Repeats like "aaa" are easy to guess.': _l("Repeats like “aaa” are easy to guess."),
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".': _l(
        "Repeats like “abcabcabc” are only slightly harder to guess than “abc”."
    ),
    'Sequences like "abc" or "6543" are easy to guess.': _l(
        "Sequences like “abc” or “6543” are easy to guess."
    ),
    "Recent years are easy to guess.": _l("Recent years are easy to guess."),
    "Dates are often easy to guess.": _l("Dates are often easy to guess."),
    "This is a top-10 common password.": _l("This is a top-10 common password."),
    "This is a top-100 common password.": _l("This is a top-100 common password."),
    "This is a very common password.": _l("This is a very common password."),
    "This is similar to a commonly used password.": _l(
        "This is similar to a commonly used password."
    ),
    "A word by itself is easy to guess.": _l("A word by itself is easy to guess."),
    "Names and surnames by themselves are easy to guess.": _l(
        "Names and surnames by themselves are easy to guess."
    ),
    "Common names and surnames are easy to guess.": _l(
        "Common names and surnames are easy to guess."
    ),
}


class WeakPassword(DomainError):
    """A password the policy refuses; the message says why and what to do instead."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    return frozenset(COMMON_FILE.read_text(encoding="utf-8").split())


def _is_common(password: str) -> bool:
    common = common_passwords()
    folded = password.casefold()
    core = _TRIM.sub("", folded)  # "Password123!" -> "password"
    for candidate in {folded, core}:
        if candidate in common:
            return True
        # "passwordpassword", "abc123abc123": a common one typed more than once.
        for size in range(1, len(candidate) // 2 + 1):
            if len(candidate) % size == 0 and candidate[:size] * (len(candidate) // size) == (
                candidate
            ):
                if candidate[:size] in common:
                    return True
                break
    return False


def _account_words(values: tuple[str, ...]) -> list[str]:
    """ "Sita Gurung", "sita.gurung@x.org" -> sita, gurung, sitagurung, sita.gurung, x, org..."""
    words: set[str] = set()
    for value in values:
        folded = value.casefold()
        local = folded.split("@", 1)[0]
        parts = [w for w in re.split(r"[\s@.+_-]+", folded) if w]
        words.update(parts)
        words.update({local, re.sub(r"[\s.+_-]+", "", local), "".join(folded.split())})
    return sorted(w for w in words if w)


def check(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Raise WeakPassword unless ``password`` meets the policy.

    ``user_inputs`` are the account's own words (email, name): a password built from them is weak.
    """
    if len(password) < MIN_LENGTH:
        raise WeakPassword(_("A password needs at least %(num)s characters.", num=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        raise WeakPassword(
            _(
                "A password can have at most %(num)s characters; choose a shorter passphrase.",
                num=MAX_LENGTH,
            )
        )
    if _is_common(password):
        raise WeakPassword(
            _(
                "This is one of the most common passwords. "
                "Choose a phrase of several unrelated words."
            )
        )
    result = zxcvbn(password[:ESTIMATE_PREFIX], user_inputs=_account_words(user_inputs))
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        warning = feedback.get("warning") or ""
        reason = ZXCVBN_WARNINGS.get(warning) or warning or _("It is too easy to guess.")
        raise WeakPassword(
            _(
                "This password is too easy to guess. %(reason)s "
                "Choose a phrase of several unrelated words, or add less common words.",
                reason=str(reason),
            )
        )


def hash_password(password: str, *, user_inputs: tuple[str, ...] = ()) -> str:
    """Check the policy, then hash. Every place that sets a password goes through here.

    Both run off the event loop under gevent (``portal.offload``): zxcvbn's rating and the
    scrypt hash take tens of milliseconds each, which every other connection would wait for.
    """
    return offload.run(_check_and_hash, password, user_inputs)


def _check_and_hash(password: str, user_inputs: tuple[str, ...]) -> str:
    check(password, user_inputs=user_inputs)
    return generate_password_hash(password, method=HASH_METHOD)


def verify(stored_hash: str, password: str) -> bool:
    """The one KDF call of a sign-in (a test counts calls to it).

    A password longer than any the policy lets be set cannot match; it is checked against the
    dummy so that it costs what any other miss costs.
    """
    if len(password) > MAX_LENGTH:
        offload.run(check_password_hash, _dummy(), "")
        return False
    return offload.run(check_password_hash, stored_hash, password)


def dummy_hash() -> str:
    """A hash with the same KDF parameters as real ones, checked when an email is unknown."""
    return _dummy()


@lru_cache(maxsize=1)
def _dummy() -> str:
    return offload.run(generate_password_hash, "unknown account placeholder", method=HASH_METHOD)


def write_common_list(count: int = COMMON_COUNT, path: Path = COMMON_FILE) -> int:
    """Write the ``count`` most common passwords of zxcvbn's ranked list, one a line."""
    words = expected_common_list(count)
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return len(words)


def expected_common_list(count: int = COMMON_COUNT) -> list[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    # Ranked most common first; folded and deduplicated, keeping the first (most common) rank.
    seen: dict[str, None] = {}
    for word in FREQUENCY_LISTS["passwords"]:
        folded = word.casefold().strip()
        if folded and not any(ch.isspace() for ch in folded):
            seen.setdefault(folded, None)
        if len(seen) == count:
            break
    return list(seen)


if __name__ == "__main__":
    print(f"wrote {write_common_list()} passwords to {COMMON_FILE}")
