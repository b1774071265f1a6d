"""Sessions and remembered browsers read as people name them, with the raw string folded away."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.accounts import browsers

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("agent", "said"),
    [
        (ANDROID_CHROME, "Chrome on Android"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A515F) AppleWebKit/537.36 (KHTML, like "
            "Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            "Samsung Internet on Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            "Edge on Windows",
        ),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
        ("Werkzeug/3.1.9", "Unknown browser"),
    ],
)
def test_known_browsers_read_as_people_say_them(agent, said):
    assert browsers.describe(agent) == said


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=600))
def test_any_string_gives_a_short_phrase_and_never_fails(agent):
    said = browsers.describe(agent)
    assert said and len(said) <= 80
    assert "\n" not in said


def test_the_account_page_names_the_browser_and_folds_the_raw_string(app, make_user, login):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = ANDROID_CHROME
    login(client, make_user("viewer"))
    page = client.get("/account").get_data(as_text=True)
    assert "Chrome on Android" in page
    # The raw string only inside its disclosure.
    before, _, inside = page.partition('<details class="raw-agent">')
    assert "AppleWebKit" not in before and "AppleWebKit" in inside
