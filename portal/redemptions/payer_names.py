"""A payer's name as a vendor may see it: enough to greet the person, never the whole name.

"Gita Magar" reads "Gita M." (the first given name and the last name's initial; middle names
dropped). What is always hidden, so the text never is the full name:

- two or more words: the last name but its first letter; a last name of one letter ("Gita M")
  is dropped, so the text is the given name alone;
- one word: its second half ("Krishna" → "Kri…", "Gita" → "Gi…", "Ram" → "R…"); a name of one
  letter shows nothing.

Letters are counted as people read them (a Devanagari consonant with its vowel signs and
conjuncts is one), so a cut never leaves a stray vowel sign. Words with digits are dropped: a
phone number typed into the name field is never shown.
"""

from __future__ import annotations

import unicodedata

GIVEN_MAX = 12  # a longer given name is cut with "…": the line fits a phone
VIRAMA = {"\u094d", "\u09cd", "\u0a4d", "\u0acd", "\u0b4d", "\u0bcd", "\u0c4d", "\u0ccd", "\u0d4d"}
JOINERS = {"\u200c", "\u200d"}


def letters(word: str) -> list[str]:
    """The word cut into what a reader counts as letters (a base and its marks, conjuncts)."""
    found: list[str] = []
    for char in word:
        joins = found and (
            unicodedata.category(char).startswith("M")
            or char in JOINERS
            or found[-1][-1] in VIRAMA
            or found[-1][-1] in JOINERS
        )
        if joins:
            found[-1] += char
        else:
            found.append(char)
    return found


def _is_letter(part: str) -> bool:
    return unicodedata.category(part[0]).startswith("L")


def _words(name: str) -> list[list[str]]:
    """The name's words as letters, without the punctuation around them ("M." is "M")."""
    found = []
    for word in unicodedata.normalize("NFC", name).split():
        if any(unicodedata.category(c).startswith("N") for c in word):
            continue
        parts = letters(word)
        while parts and not _is_letter(parts[0]):
            parts.pop(0)
        while parts and not _is_letter(parts[-1]):
            parts.pop()
        if parts:
            found.append(parts)
    return found


def _given(parts: list[str]) -> str:
    return "".join(parts[:GIVEN_MAX]) + ("…" if len(parts) > GIVEN_MAX else "")


def mask(name: str | None) -> str | None:
    """The masked name, or None when nothing can be shown without showing it all."""
    words = _words(name or "")
    if not words:
        return None
    if len(words) == 1:
        parts = words[0]
        if len(parts) < 2:
            return None
        keep = min(3, max(1, len(parts) // 2))
        return "".join(parts[:keep]) + "…"
    given, last = _given(words[0]), [part for part in words[-1] if _is_letter(part)]
    if len(last) < 2:
        return given
    return f"{given} {last[0]}."


def initials(name: str | None) -> str:
    """A name shown to staff who may not read personal data: each word's first letter, then
    dots ("G••• M••••"); stricter than what a vendor sees of their own payer."""
    words = (name or "").split()
    return " ".join(word[0] + "•" * min(len(word) - 1, 4) for word in words[:4]) or "—"
