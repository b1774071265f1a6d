"""The distribution-day benchmark's own parts: how a dashboard update is matched to the
confirmation it shows, the SMS stand-in the production provider talks to, the options."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _day_record import broadcast_latencies, fan_out  # noqa: E402
from _sms_capture import SmsCapture, phone_key  # noqa: E402

# --- broadcast --------------------------------------------------------------------------------


def test_an_update_emitted_before_the_confirmation_does_not_count_for_it():
    # Emitted at 9.9 (before the commit at 10.0) though it arrived after: it cannot show it.
    screen = [(9.9, 10.05), (10.2, 10.3)]
    latencies, misses = broadcast_latencies([10.0], [screen], horizon=5)
    assert latencies == pytest.approx([0.3])
    assert misses == 0


def test_a_screen_without_a_later_update_is_a_miss():
    latencies, misses = broadcast_latencies([10.0, 20.0], [[(10.1, 10.2)], []], horizon=5)
    assert latencies == pytest.approx([0.2])
    assert misses == 3  # the first screen missed 20.0; the second both


def test_an_update_past_the_horizon_is_a_miss():
    assert broadcast_latencies([10.0], [[(10.0, 16.0)]], horizon=5) == ([], 1)


def test_out_of_order_arrivals_take_the_earliest_showing_update():
    # A later update overtook an earlier one on the way to this screen.
    screen = [(10.5, 11.0), (10.1, 11.4)]
    latencies, _ = broadcast_latencies([10.0], [screen], horizon=5)
    assert latencies == pytest.approx([1.0])


stamps = st.floats(min_value=0, max_value=100, allow_nan=False)
update = st.tuples(stamps, st.floats(min_value=0, max_value=5, allow_nan=False)).map(
    lambda pair: (pair[0], pair[0] + pair[1])  # arrives after it was emitted
)


@given(
    confirmations=st.lists(stamps, max_size=15),
    screens=st.lists(st.lists(update, max_size=12), max_size=5),
    horizon=st.floats(min_value=0.1, max_value=10),
)
def test_matches_the_definition_for_any_updates(confirmations, screens, horizon):
    expected, expected_misses = [], 0
    for screen in screens:
        for stamp in confirmations:
            showing = [arrived for ts, arrived in screen if ts >= stamp]
            if showing and min(showing) - stamp <= horizon:
                expected.append(min(showing) - stamp)
            else:
                expected_misses += 1
    latencies, misses = broadcast_latencies(confirmations, screens, horizon)
    assert sorted(latencies) == pytest.approx(sorted(expected))
    assert misses == expected_misses


def test_fan_out_groups_one_update_by_its_stamp():
    report = fan_out([[(1.0, 1.1), (2.0, 2.1)], [(1.0, 1.4)]])
    assert report["updates"] == 2
    assert (report["screens_reached_min"], report["screens_reached_max"]) == (1, 2)
    assert report["first_to_last_screen"]["max_ms"] == pytest.approx(300)


# --- the SMS stand-in, driven by the portal's own HTTP provider ---------------------------------


@pytest.fixture
def capture():
    server = SmsCapture().start()
    yield server
    server.stop()


def _provider(settings: dict):
    from config import Config
    from portal.comms.providers import get_provider

    config = {k: getattr(Config, k) for k in dir(Config) if k.isupper()}
    return get_provider({**config, **settings})


def test_the_production_provider_delivers_a_code_the_phone_reads(capture):
    provider = _provider(capture.settings())
    mark = capture.mark()
    ref = provider.send("+9779805800001", "Your code is 123456. It expires in 5 minutes.")
    assert ref and ref.startswith("SM")
    assert capture.wait_code("9805800001", mark, timeout=2) == "123456"
    assert capture.latest("9805800001", capture.mark()) is None  # nothing newer than the mark
    assert capture.latest("9805800002", mark) is None  # another phone got nothing


def test_a_text_without_a_code_after_the_code_is_read_past(capture):
    provider = _provider(capture.settings())
    mark = capture.mark()
    provider.send("+9779805800001", "Your code is 654321. It expires in 5 minutes.")
    provider.send("+9779805800001", "You paid 1.00 at Shop 7. Left: 9,998.00.")
    assert capture.latest("9805800001", mark).code is None  # the receipt came last
    assert capture.wait_code("9805800001", mark, timeout=2) == "654321"
    assert capture.latest_code("9805800001", capture.mark()) is None


def test_wrong_credentials_are_refused_and_counted(capture):
    from portal.comms.providers import ProviderError

    provider = _provider({**capture.settings(), "SMS_TOKEN": "not-the-token"})
    with pytest.raises(ProviderError) as raised:
        provider.send("+9779805800001", "code 111111")
    assert raised.value.permanent
    assert capture.refused == 1 and capture.received == 0


def test_a_number_is_one_phone_in_any_form():
    assert phone_key("+977 980-580-0001") == phone_key("9805800001") == "9805800001"


# --- options ------------------------------------------------------------------------------------


def test_quick_shrinks_the_day_but_keeps_what_is_given():
    from distribution_day import parse

    quick = parse(["--quick", "--vendors", "7"])
    assert (quick.seconds, quick.vendors, quick.dashboards) == (15.0, 7, 20)
    full = parse([])
    assert (full.seconds, full.vendors, full.dashboards) == (120.0, 50, 500)


def test_a_failed_run_names_the_exceptions_its_processes_logged(tmp_path):
    from distribution_day import log_exceptions

    log = tmp_path / "web.log"
    log.write_text(
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "    raise exc.TimeoutError(\n"
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached\n"
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached\n"
        "OSError: [Errno 9] Bad file descriptor at 0x7f00aa\n"
        "[2026-12-03 14:00:53,897] ERROR in web: unhandled error on GET /vendor/charge\n"
    )
    assert log_exceptions(log) == {
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached": 2,
        "OSError: [Errno 9] Bad file descriptor at 0x…": 1,
    }
    assert log_exceptions(tmp_path / "missing.log") == {}
