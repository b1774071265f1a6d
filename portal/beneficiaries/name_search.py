"""Search by name and location over encrypted personal data: keyed blind indexes of words.

Names and locations are stored encrypted (``BeneficiaryPII``); to find "Gita" without decrypting
everyone, each person also has a list of keyed hashes (``BeneficiaryNameIndex``): one per prefix
of each word of the name and of the location (from 2 up to ``PREFIX_MAX`` letters). A typed word
is hashed the same way and looked up in that list's GIN index; several words find the people
matching all of them.

Before hashing, every word is spelled in ASCII letters (``anyascii``: Devanagari, Bengali,
Cyrillic, accented Latin ...), lower-cased, and stripped of anything but letters and digits, so
"गीता", "Gītā" and "GITA" are one word. Transliteration does not give the spelling people use
in Latin letters, though: Devanagari drops the vowel a consonant carries ("मगर" becomes "mgr"
where a field team writes "Magar"). So each word also has a *skeleton*: its consonants, with
"h" dropped and letters the two spellings swap folded together (v/w/b, x/ks, ng/n, z/j, f/p,
c/q/k).
Skeletons are compared only across scripts: a word typed in Latin letters matches the skeletons
of words written in another script, and the other way round; within one script the plain
spelling is precise and a skeleton would match too much ("Ram" and "Rima").

The hash is an HMAC with its own key (derived from ``PII_KEY``, apart from the phone index's),
cut to 64 bits: 8 bytes an entry keep the index small, and a collision (about one in 10^7 among
millions of distinct words) would only add a person to a result the user may see anyway.
``SCHEME`` names the spelling rules: a change to them, or a new key, makes the stored index stale
until ``flask name-index`` rebuilds it (``--if-stale`` at every release and ``make run``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable

from anyascii import anyascii
from sqlalchemy import BigInteger, Select, and_, bindparam, delete, func, insert, or_, select
from sqlalchemy.dialects import postgresql

from portal.beneficiaries.models import BeneficiaryNameIndex, BeneficiaryPII, NameIndexState
from portal.crypto import derived_key
from portal.extensions import db
from portal.timeutil import utcnow

SCHEME = "words-v1"
PREFIX_MIN = 2
# Longer words are indexed, and looked up, by their first PREFIX_MAX letters.
PREFIX_MAX = 10
SKELETON_MAX = 8
# Words of a query beyond this many are ignored (each one is an index lookup).
QUERY_WORDS = 6
NAME, LOCATION = "n", "l"
PLAIN, FROM_LATIN, FROM_OTHER = "p", "s", "o"

# Word boundaries in the original script: spaces and punctuation, never a combining mark (the
# vowel signs of Indic scripts are not "word" characters to ``re``'s \w).
_SPLIT = re.compile(r"[\s,.;:/\\()\[\]{}\"“”«»\-‐–—_&+|!?*#@=<>]+")
_APOSTROPHES = str.maketrans("", "", "'’‘`´")
_ALNUM = re.compile(r"[a-z0-9]+")
# " (27.7, 85.3)" that an import appends to a location: coordinates are not words.
_COORDINATES = re.compile(r"\s*\(\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*\)\s*$")
_SKELETON_FOLD = str.maketrans({"w": "b", "v": "b", "z": "j", "f": "p", "q": "k", "c": "k"})
_DROP = re.compile(r"[aeiouh]")
# The nasal mark (ं, anusvara) is written "n" in Latin letters ("संगीता", Sangita); anyascii
# spells it "m", as a म would be.
_NASALS = str.maketrans({"\u0902": "n", "\u0982": "n"})
_DOUBLE = re.compile(r"(.)\1+")


def words(text: str | None) -> list[tuple[str, bool]]:
    """The indexable words of ``text``: (ASCII spelling, written in Latin letters?)."""
    if not text:
        return []
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).translate(_NASALS)
    text = _COORDINATES.sub("", text)
    found = []
    for word in _SPLIT.split(text):
        if not word:
            continue
        latin = _is_latin(word)
        for token in _ALNUM.findall(anyascii(word).lower()):
            found.append((token, latin))
    return found


def _is_latin(word: str) -> bool:
    if word.isascii():
        return True
    for ch in word:
        if ch.isalpha() and not ch.isascii() and not unicodedata.name(ch, "").startswith("LATIN"):
            return False
    return True


def skeleton(token: str) -> str:
    """The consonants of an ASCII word, for matching a spelling made in another script."""
    if token.isdigit():
        return ""
    # "ng" is one letter in Devanagari (ङ), which anyascii spells "n".
    folded = token.replace("x", "ks").replace("ng", "n").translate(_SKELETON_FOLD)
    head = "a" if folded[0] in "aeiou" else folded[0]
    return _DOUBLE.sub(r"\1", head + _DROP.sub("", folded[1:]))[:SKELETON_MAX]


def _hash(field: str, kind: str, value: str) -> int:
    digest = hmac.digest(derived_key("names"), f"{field}|{kind}|{value}".encode(), hashlib.sha256)
    return int.from_bytes(digest[:8], "big", signed=True)


def _prefixes(value: str, longest: int) -> Iterable[str]:
    return (value[:k] for k in range(PREFIX_MIN, min(len(value), longest) + 1))


def terms(field: str, text: str | None) -> set[int]:
    """Every hash one field of one person is indexed under."""
    out: set[int] = set()
    for token, latin in words(text):
        for prefix in _prefixes(token, PREFIX_MAX):
            out.add(_hash(field, PLAIN, prefix))
        kind = FROM_LATIN if latin else FROM_OTHER
        for prefix in _prefixes(skeleton(token), SKELETON_MAX):
            out.add(_hash(field, kind, prefix))
    return out


def person_terms(name: str | None, location: str | None) -> set[int]:
    return terms(NAME, name) | terms(LOCATION, location)


def query_words(query: str) -> list[set[int]]:
    """For each usable word of a query, the hashes any of which a match must have.

    A word matches a name or location word it begins (in its ASCII spelling), or, when written
    in another script than that word, whose skeleton its skeleton begins.
    """
    alternatives = []
    for token, latin in words(query)[:QUERY_WORDS]:
        if len(token) < PREFIX_MIN:
            continue
        prefix = token[:PREFIX_MAX]
        other = FROM_OTHER if latin else FROM_LATIN
        shape = skeleton(token)
        options = set()
        for field in (NAME, LOCATION):
            options.add(_hash(field, PLAIN, prefix))
            if len(shape) >= PREFIX_MIN:
                options.add(_hash(field, other, shape))
        alternatives.append(options)
    return alternatives


def is_name_query(query: str) -> bool:
    """Whether a query has a word to look up by name (a phone number or ID alone has none)."""
    return any(not token.isdigit() for token, _ in words(query)) and bool(query_words(query))


def matching_ids(query: str) -> Select | None:
    """Ids of the people with every usable word of ``query``; None when it has none."""
    alternatives = query_words(query)
    if not alternatives:
        return None
    column = BeneficiaryNameIndex.terms
    if db.session.get_bind().dialect.name == "postgresql":
        # Each word: the list overlaps (&&) the word's hashes; GIN answers all words at once.
        tests = [
            column.op("&&")(bindparam(None, sorted(options), postgresql.ARRAY(BigInteger)))
            for options in alternatives
        ]
    else:
        tests = [
            or_(*(func.instr(column, f" {value} ") > 0 for value in sorted(options)))
            for options in alternatives
        ]
    return select(BeneficiaryNameIndex.beneficiary_id).where(and_(*tests))


# Keeping the index -----------------------------------------------------------------------------


def row_for(beneficiary_id: int, name: str | None, location: str | None) -> dict:
    return {"beneficiary_id": beneficiary_id, "terms": sorted(person_terms(name, location))}


def index_person(beneficiary_id: int, name: str | None, location: str | None) -> None:
    """(Re)write one person's hashes in the current transaction (enrolment, edit)."""
    forget(beneficiary_id)
    db.session.execute(insert(BeneficiaryNameIndex), [row_for(beneficiary_id, name, location)])


def forget(beneficiary_id: int) -> None:
    """Remove a person's hashes: on erasure, nothing may find the person by name any more."""
    db.session.execute(
        delete(BeneficiaryNameIndex).where(BeneficiaryNameIndex.beneficiary_id == beneficiary_id)
    )


def fingerprint() -> str:
    """Names the spelling rules and the key (an HMAC of a constant: it reveals nothing of it)."""
    mark = hmac.digest(derived_key("names"), b"name index fingerprint", hashlib.sha256)
    return f"{SCHEME}:{mark[:8].hex()}"


def is_stale() -> bool:
    state = db.session.get(NameIndexState, 1)
    return state is None or state.fingerprint != fingerprint()


def rebuild(chunk: int = 1000, progress=None) -> int:
    """Index everyone again from their decrypted name and location, in the current transaction
    (searches see the old index until it commits). Returns how many people were indexed."""
    db.session.execute(delete(BeneficiaryNameIndex))
    done, last = 0, 0
    while True:
        batch = db.session.execute(
            select(BeneficiaryPII.beneficiary_id, BeneficiaryPII.name, BeneficiaryPII.location)
            .where(BeneficiaryPII.beneficiary_id > last)
            .order_by(BeneficiaryPII.beneficiary_id)
            .limit(chunk)
        ).all()
        if not batch:
            break
        rows = [row_for(pk, name, place) for pk, name, place in batch]
        db.session.execute(insert(BeneficiaryNameIndex), rows)
        done += len(batch)
        last = batch[-1][0]
        if progress:
            progress(done)
    state = db.session.get(NameIndexState, 1)
    if state is None:
        state = NameIndexState(id=1)
        db.session.add(state)
    state.fingerprint, state.built_at, state.people = fingerprint(), utcnow(), done
    db.session.flush()
    return done
