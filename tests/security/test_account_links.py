"""Emailed links under attack: reuse, expiry, enumeration by answer and by time, limits, and
tokens that exist only as hashes and never reach a log, a job or the audit trail."""

from __future__ import annotations

import logging
import re
import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text, update

from portal.accounts import links, recovery
from portal.accounts.links import AccountLink
from portal.comms.models import OutboxMessage
from portal.crypto import token_hash
from portal.extensions import db
from portal.timeutil import utcnow

NEW_PASSWORD = "violet lantern orbit meadow"
LINK = re.compile(r"/t/([A-Za-z0-9_-]+)")


def _reset_token(user) -> str:
    return recovery.issue(user, send=False).rsplit("/", 1)[1]


def _reset(client, password=NEW_PASSWORD):
    return client.post("/password/reset", data={"password": password, "confirm": password})


def test_a_link_works_once_even_when_held_by_two_browsers(app, make_user):
    user = make_user()
    token = _reset_token(user)
    db.session.commit()
    first, second = app.test_client(), app.test_client()
    assert first.get(f"/t/{token}").status_code == 302
    assert second.get(f"/t/{token}").status_code == 302
    assert _reset(first).status_code == 302
    refused = _reset(second, "another long phrase of words")
    assert refused.status_code == 404 and "does not work" in refused.get_data(as_text=True)


def test_taking_a_link_is_one_conditional_update(app, make_user):
    """Two requests that both found the link usable: only one takes it."""
    user = make_user()
    token = _reset_token(user)
    db.session.commit()
    one, two = links.find(token, links.PASSWORD_RESET), links.find(token, links.PASSWORD_RESET)
    assert links.take(one) is True
    assert links.take(two) is False


def test_an_expired_link_does_not_work_even_when_already_followed(app, client, make_user):
    user = make_user()
    token = _reset_token(user)
    db.session.commit()
    assert client.get(f"/t/{token}").status_code == 302
    db.session.execute(update(AccountLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert _reset(client).status_code == 404
    assert client.get(f"/t/{token}").status_code == 404
    assert db.session.scalar(select(AccountLink.used_at)) is None


def test_a_link_of_one_purpose_does_not_open_another(app, client, make_user):
    user = make_user()
    token = _reset_token(user)
    db.session.commit()
    with client.session_transaction() as session:
        session["link:invitation"] = token
        session["link:email_change"] = token
    assert client.get("/invitation").status_code == 404
    assert client.post("/account/email/confirm").status_code == 404


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 5000, "../t/x", "%00"])
def test_made_up_tokens_lead_nowhere(client, token):
    assert client.get(f"/t/{token}").status_code == 404


def test_tokens_are_stored_only_as_hashes(app, client, make_user, login, passwords, worker):
    admin = make_user("admin")
    login(client, admin)
    client.post(
        "/users/invitations/new", data={"email": "inv@example.org", "role_id": admin.role_id}
    )
    client.post("/password/forgot", data={"email": admin.email})
    client.post(
        "/account/email", data={"email": "mine@example.org", "password": passwords[admin.email]}
    )
    db.session.commit()
    worker.run("comms")
    tokens = [
        LINK.search(m.body).group(1)
        for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email"))
    ]
    assert len(tokens) == 3
    dump = "\n".join(db.session.connection().connection.driver_connection.iterdump())
    stored = set(db.session.scalars(select(AccountLink.token_hash)))
    for token in tokens:
        assert token not in dump
        assert token_hash(token) in stored


def test_no_token_in_logs_jobs_or_the_audit_trail(app, client, make_user, login, caplog, worker):
    caplog.set_level(logging.DEBUG)
    admin = make_user("admin")
    login(client, admin)
    client.post(
        "/users/invitations/new", data={"email": "inv@example.org", "role_id": admin.role_id}
    )
    client.post("/password/forgot", data={"email": admin.email})
    db.session.commit()
    worker.run("comms")
    mails = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email"))
    tokens = [LINK.search(m.body).group(1) for m in mails]
    invitee = app.test_client()
    invitee.get(f"/t/{tokens[0]}")
    invitee.post(
        "/invitation", data={"name": "New", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    kept = [
        str(value)
        for table in ("jobs", "audit_entries")
        for row in db.session.execute(text(f"select * from {table}"))  # noqa: S608 (fixed names)
        for value in row
    ]
    for token in tokens:
        assert token not in caplog.text
        assert not [value for value in kept if token in value]


# --- enumeration -------------------------------------------------------------------------------


def _forgot(client, email: str):
    return client.post("/password/forgot", data={"email": email})


def test_forgot_password_answers_the_same_for_known_and_unknown_addresses(app, client, make_user):
    user = make_user()
    db.session.commit()
    known, unknown = _forgot(client, user.email), _forgot(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    same = ("Content-Type", "Content-Length", "Set-Cookie", "Cache-Control")
    assert [known.headers.get(h) for h in same] == [unknown.headers.get(h) for h in same]


def test_forgot_password_does_the_same_database_work_for_known_and_unknown(app, client, make_user):
    """By construction: the request runs the same statements whatever the address; only the
    job (not the answer) looks the address up."""
    user = make_user()
    db.session.commit()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    def run(email: str) -> list[str]:
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert _forgot(client, email).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        return list(statements)

    _forgot(client, "warm-up@example.org")
    known, unknown = run(user.email), run("nobody@example.org")
    assert known == unknown
    assert not [s for s in known if "FROM users" in s]


def test_forgot_password_takes_the_same_time_for_known_and_unknown(app, client, make_user):
    """Paired requests, one of each address back to back (the order swapped every round), so
    a burst of load from elsewhere falls on both of a pair; the median of the pairs'
    differences is what an attacker timing the page would learn. A lookup with a password
    hash, or an email sent in the request, would show as milliseconds; the bound is a quarter
    of a request's median time (plus a millisecond), room for a busy shared machine."""
    app.config["PASSWORD_RESET_EMAIL_LIMIT"] = "10000 per hour"
    app.config["PASSWORD_RESET_IP_LIMIT"] = "10000 per hour"
    user = make_user()
    db.session.commit()
    addresses = {"known": user.email, "unknown": "nobody@example.org"}
    for _ in range(5):  # warm-up
        for email in addresses.values():
            _forgot(client, email)
    differences, durations = [], []
    for round_ in range(60):
        took = {}
        for label in ("known", "unknown") if round_ % 2 else ("unknown", "known"):
            started = time.perf_counter()
            assert _forgot(client, addresses[label]).status_code == 200
            took[label] = time.perf_counter() - started
        differences.append(took["known"] - took["unknown"])
        durations.extend(took.values())
    difference = statistics.median(differences)
    bound = 0.25 * statistics.median(durations) + 0.001
    assert abs(difference) < bound, (difference, bound)


def test_the_per_address_limit_answers_the_same_and_sends_nothing_more(
    app, client, make_user, worker
):
    app.config["PASSWORD_RESET_EMAIL_LIMIT"] = "2 per hour"
    user = make_user()
    db.session.commit()
    answers = [_forgot(client, user.email) for _ in range(4)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.get_data() for a in answers}) == 1
    db.session.commit()
    worker.run("comms")
    sent = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.purpose == "accounts.password_reset")
    ).all()
    assert len(sent) == 2
    # Keyed on the address attacked, not the client: another address still gets its link.
    other = make_user()
    db.session.commit()
    _forgot(client, other.email)
    db.session.commit()
    worker.run("comms")
    assert len(db.session.scalars(select(OutboxMessage)).all()) == 3


def test_the_per_client_limit_answers_429(app, client):
    app.config["PASSWORD_RESET_IP_LIMIT"] = "3 per minute"
    codes = [_forgot(client, f"x{n}@example.org").status_code for n in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
