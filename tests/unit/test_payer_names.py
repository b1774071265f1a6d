"""The masked payer name a vendor sees: enough to greet, never the whole name or a phone."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portal.redemptions.payer_names import letters, mask


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Gita Magar", "Gita M."),
        ("  gita   bahadur   magar ", "gita m."),  # middle names dropped, spaces collapsed
        ("Gita M.", "Gita"),  # an initial for a last name: showing it would show it all
        ("Gita", "Gi…"),
        ("Krishna", "Kri…"),
        ("Ram", "R…"),
        ("Al", "A…"),
        ("A", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("9841000001", None),  # a phone typed as a name is never shown
        ("Gita 9841000001", "Gi…"),
        ("गीता मगर", "गीता म."),
        ("क्षमा", "क्ष…"),  # a conjunct is one letter: never cut in half
        ("Mary-Jane O'Brien", "Mary-Jane O."),
        ("Bartholomew-Christopher Smith", "Bartholomew-… S."),
    ],
)
def test_examples(name, shown):
    assert mask(name) == shown


def _letters_of(text: str) -> int:
    return sum(1 for c in unicodedata.normalize("NFC", text) if unicodedata.category(c)[0] == "L")


NAMES = st.text(
    alphabet=st.sampled_from(
        list("abcdefghijklmnopqrstuvwxyzABCXYZ .-'0123456789\t") + list("गीतामगरक्षशर्माा ँं")
    ),
    max_size=40,
) | st.text(max_size=40)


@given(NAMES)
@example("Gita Gita")
@example("A B")
@example("गी")
def test_the_mask_never_shows_the_whole_name_or_digits(name):
    shown = mask(name)
    if shown is None:
        return
    normal = " ".join(unicodedata.normalize("NFC", name).split())
    assert shown != normal and shown.rstrip(".…") != normal
    assert _letters_of(shown) < _letters_of(normal), "at least one letter stays hidden"
    assert not any(unicodedata.category(c)[0] == "N" for c in shown)
    assert len(letters(shown)) <= 12 + 4  # given name (cut), space, initial, dot
    assert shown == unicodedata.normalize("NFC", shown)
    # It starts as the name's first word does: the greeting is the person's own.
    assert normal.replace(" ", "").find(shown.split()[0].rstrip(".…")) >= 0
