"""Every socket topic, sent hostile payloads, answers with an ack and never raises.

A staff socket (admin) and a vendor socket subscribe and unsubscribe with generated payloads:
the known topics with ids that are booleans, floats, strings, lists, objects or numbers past
any row, and payloads that are not objects at all. Each answer is an ack ``{"ok": ...}``; an
exception in a handler would surface here (the test client re-raises it).
"""

from __future__ import annotations

import pytest
from flask import g
from hypothesis import strategies as st

from portal import realtime
from portal.extensions import socketio
from tests.security import fuzzing

pytestmark = pytest.mark.integration


app = fuzzing.app
world = fuzzing.world


hostile_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63, 10**30, 1.0, True, False]),
        st.floats(allow_nan=True, allow_infinity=True),
        fuzzing.hostile_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _payloads(topics):
    known = st.fixed_dictionaries(
        {"topic": st.sampled_from(sorted(topics))},
        optional={"id": hostile_json, "project_id": hostile_json, "page": hostile_json},
    )
    return st.one_of(known, hostile_json, st.dictionaries(st.text(max_size=8), hostile_json))


def _ack_ok(sio, event, payload):
    if not sio.is_connected():  # refused before (a staff socket asking for a vendor topic)
        g.pop("_login_user", None)  # see above: no cached user, as on a real connection
        sio.connect()
    ack = sio.emit(event, payload, callback=True)
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), (event, payload, ack)
    return ack


def test_socket_topics_survive_hostile_payloads(app, client, world):
    staff = socketio.test_client(app, flask_test_client=client)
    vendor_browser = app.test_client()
    fuzzing.vendor_session(app, vendor_browser, world.vendor)
    # The test's app context is shared by every connection: drop the staff user that
    # Flask-Login cached on it, as a fresh context (a real connection) would have none.
    g.pop("_login_user", None)
    vendor = socketio.test_client(app, flask_test_client=vendor_browser)
    assert staff.is_connected() and vendor.is_connected()
    topics = set(realtime.TOPICS) | set(realtime.VENDOR_TOPICS)
    assert {"jobs", "job", "import", "disbursement", "transactions", "redemptions"} <= topics

    failures = []
    for name, sio in (("staff", staff), ("vendor", vendor)):
        for event in (realtime.SUBSCRIBE, realtime.UNSUBSCRIBE):

            def check(payload, sio=sio, event=event):
                _ack_ok(sio, event, payload)

            failed = fuzzing.fuzz(60, _payloads(topics), check)
            if failed:
                failures.append(f"{name} {event}: {failed}")
    assert not failures, "\n".join(failures)
    # The sockets are still usable after all that.
    assert _ack_ok(staff, realtime.SUBSCRIBE, {"topic": "jobs"})["ok"] is True
    assert _ack_ok(vendor, realtime.SUBSCRIBE, {"topic": "redemptions"})["ok"] is True


def test_an_id_that_is_not_an_id_is_refused(app, client, world):
    sio = socketio.test_client(app, flask_test_client=client)
    values = [True, False, 1.0, "1", "²", [1], {"id": 1}, None, 0, -1, 2**31, 10**30]
    for topic, key in (("job", "id"), ("import", "id"), ("transactions", "project_id")):
        for value in values:
            ack = sio.emit(realtime.SUBSCRIBE, {"topic": topic, key: value}, callback=True)
            assert ack == {"ok": False, "error": "forbidden"}, (topic, value)


def test_a_real_id_is_accepted(app, client, world):
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit(realtime.SUBSCRIBE, {"topic": "job", "id": world.ids["job_id"]}, callback=True)
    assert ack["ok"] is True
