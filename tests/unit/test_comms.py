"""SMS: the outbox provider and its development page, the Twilio-style HTTP provider against a
local server, retries and permanent failures through the comms job, and the start-up checks."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select, text

from config import TestConfig
from portal import create_app, outbound
from portal.comms import services as comms
from portal.comms.models import OutboxMessage
from portal.comms.providers import HttpSmsProvider, ProviderConfigError, ProviderError
from portal.extensions import db
from portal.jobs.models import Job

NUMBER = "+9779841234567"
BODY = "123456 is your code to pay 10.00 AID at Shop. It expires in 5 minutes."


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that timed out and left: expected in the timeout test


class FakeProvider:
    """A local HTTP server in the shape of Twilio's Messages API."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []  # consumed in order; then 201
        self.delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                size = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(size).decode())
                auth = self.headers.get("Authorization", "")
                user = base64.b64decode(auth.split()[-1]).decode() if auth else ""
                fake.requests.append({"path": self.path, "form": form, "auth": user})
                if fake.delay:
                    time.sleep(fake.delay)
                status, body = (
                    fake.answers.pop(0)
                    if fake.answers
                    else (201, {"sid": f"SM{len(fake.requests)}", "status": "queued"})
                )
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/2010-04-01/Accounts/{{account}}/Messages.json"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    fake = FakeProvider()
    yield fake
    fake.close()


@pytest.fixture
def http_app(app, provider):
    app.config.update(
        SMS_PROVIDER="http",
        SMS_HTTP_URL=provider.url,
        SMS_ACCOUNT="AC123",
        SMS_TOKEN="secret-token",
        SMS_FROM="+15550001111",
        SMS_TIMEOUT_SECONDS=2,
    )
    return app


def queue(purpose="redemption.code") -> OutboxMessage:
    message = comms.send_sms(NUMBER, BODY, purpose)
    db.session.commit()
    return message


# --- outbox ------------------------------------------------------------------------------------


def test_outbox_messages_go_through_the_comms_queue(app, worker):
    message = queue()
    job = db.session.get(Job, message.job_id)
    assert (job.kind, job.queue, job.payload) == ("comms.sms", "comms", {"message_id": message.id})
    assert message.status == "queued"
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    assert (message.status, message.provider, message.attempts) == ("sent", "outbox", 1)
    raw = db.session.execute(text("select recipient, body from outbox_messages")).one()
    assert NUMBER not in raw.recipient and "123456" not in raw.body


def test_the_outbox_page_shows_messages_newest_first(app, client, make_user, login):
    queue()
    comms.send_sms("+9779841000002", "second message", "vendor.sign_in")
    db.session.commit()
    login(client, make_user("admin"))
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("second message") < html.index(BODY)
    assert NUMBER in html
    assert page.headers["Refresh"] == "5"
    assert page.headers["Cache-Control"] == "no-store"


def test_the_outbox_page_needs_its_permission(app, client, make_user, login):
    login(client, make_user("programme manager"))
    assert client.get("/dev/outbox").status_code == 403


@pytest.mark.parametrize(
    "settings",
    [{"SMS_PROVIDER": "http", "EMAIL_PROVIDER": "smtp"}, {"ENV_NAME": "production"}],
    ids=["http-and-smtp", "production"],
)
def test_the_outbox_page_does_not_exist_outside_development(
    app, client, make_user, login, settings
):
    login(client, make_user("admin"))
    app.config.update(settings)
    assert client.get("/dev/outbox").status_code == 404


def test_expired_messages_are_hidden_on_the_page_and_blanked_by_the_sweep(
    app, client, make_user, login
):
    from datetime import timedelta

    from portal.timeutil import utcnow

    comms.send_sms(NUMBER, BODY, "redemption.code", expires_at=utcnow() - timedelta(seconds=1))
    db.session.commit()
    login(client, make_user("admin"))
    html = client.get("/dev/outbox").get_data(as_text=True)
    assert BODY not in html and "blanked" in html and NUMBER not in html
    # The page view wrote nothing; the sweep (and the next SMS job) blanks the stored text.
    assert db.session.scalar(select(OutboxMessage)).body is not None
    assert comms.purge_expired() == 1
    db.session.commit()
    assert db.session.scalar(select(OutboxMessage)).body is None


def test_a_message_past_its_code_is_not_sent(app, worker):
    from datetime import timedelta

    from portal.timeutil import utcnow

    message = comms.send_sms(NUMBER, BODY, "redemption.code", expires_at=utcnow())
    db.session.commit()
    time.sleep(0.01)
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    assert message.status == "failed" and "Expired" in message.error
    assert message.body is None
    assert timedelta(0) <= utcnow() - message.purge_after


# --- start-up checks -----------------------------------------------------------------------------


# What production needs besides SMS, so that these tests reach the SMS checks.
PRODUCTION_EMAIL = {
    "PUBLIC_BASE_URL": "https://portal.example.org",
    "EMAIL_PROVIDER": "smtp",
    "SMTP_HOST": "smtp.example.org",
    "SMTP_FROM": "Portal <portal@example.org>",
}


def test_production_refuses_the_outbox_provider(tmp_path):
    with pytest.raises(ProviderConfigError, match="SMS_PROVIDER=http"):
        create_app(
            TestConfig, ENV_NAME="production", INSTANCE_DIR=str(tmp_path), **PRODUCTION_EMAIL
        )


def test_http_provider_needs_its_settings(tmp_path):
    with pytest.raises(ProviderConfigError) as refused:
        create_app(TestConfig, SMS_PROVIDER="http", SMS_ACCOUNT="AC1", INSTANCE_DIR=str(tmp_path))
    message = str(refused.value)
    assert "SMS_HTTP_URL" in message and "SMS_TOKEN" in message and "SMS_FROM" in message
    assert "SMS_ACCOUNT" not in message


def test_an_unknown_provider_is_refused(tmp_path):
    with pytest.raises(ProviderConfigError, match="must be one of"):
        create_app(TestConfig, SMS_PROVIDER="pigeon", INSTANCE_DIR=str(tmp_path))


def test_production_starts_with_the_http_provider(tmp_path):
    app = create_app(
        TestConfig,
        ENV_NAME="production",
        SMS_PROVIDER="http",
        SMS_HTTP_URL="https://sms.example.org/send",
        SMS_ACCOUNT="AC1",
        SMS_TOKEN="t",
        SMS_FROM="+15550001111",
        INSTANCE_DIR=str(tmp_path),
        **PRODUCTION_EMAIL,
    )
    assert app.config["SMS_PROVIDER"] == "http"


# --- the HTTP provider -----------------------------------------------------------------------


def test_http_provider_posts_the_message_and_keeps_the_provider_id(http_app, provider, worker):
    message = queue()
    worker.run("comms")
    (request,) = provider.requests
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["auth"] == "AC123:secret-token"
    message = db.session.get(OutboxMessage, message.id)
    # The receipt URL names the message by its key, so the provider's status callback finds it.
    assert request["form"] == {
        "To": [NUMBER],
        "From": ["+15550001111"],
        "Body": [BODY],
        "StatusCallback": [f"http://portal.test/api/comms/receipts/sms/{message.key}"],
    }
    assert (message.status, message.provider, message.provider_ref) == ("sent", "http", "SM1")


def test_a_provider_outage_is_retried(http_app, provider, worker):
    provider.answers = [(503, {"message": f"busy, cannot send to {NUMBER}"})]
    message = queue()
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    job = db.session.get(Job, message.job_id)
    assert (message.status, message.attempts, job.status, job.attempts) == (
        "sent",
        2,
        "succeeded",
        2,
    )
    assert len(provider.requests) == 2


def test_a_refused_message_fails_at_once_and_says_why_without_the_number(
    http_app, provider, worker, caplog
):
    caplog.set_level(logging.DEBUG)
    provider.answers = [(400, {"code": 21211, "message": f"The 'To' number {NUMBER} is not valid"})]
    message = queue()
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    job = db.session.get(Job, message.job_id)
    assert message.status == "failed" and job.status == "failed" and job.attempts == 1
    assert message.error == "The SMS provider refused the message: HTTP 400 (provider code 21211)."
    for seen in (job.error, caplog.text):
        assert NUMBER not in seen and "123456" not in seen and "secret-token" not in seen


def local_policy(timeout: float) -> outbound.Policy:
    """The local stand-in's allowance, as the test configuration gives it."""
    return outbound.Policy(
        "SMS provider",
        frozenset({"127.0.0.1:*"}),
        allow_http=True,
        private_hosts=frozenset({"127.0.0.1"}),
        connect_timeout=timeout,
        read_timeout=timeout,
    )


def test_a_slow_provider_times_out(provider):
    provider.delay = 1.5
    sms = HttpSmsProvider(provider.url, "AC1", "t", "+15550001111", policy=local_policy(0.5))
    with pytest.raises(ProviderError, match="did not answer in time") as failed:
        sms.send(NUMBER, BODY)
    assert not failed.value.permanent


def test_an_unreachable_provider_is_a_transient_error():
    sms = HttpSmsProvider(
        "http://127.0.0.1:9/none", "AC1", "t", "+15550001111", policy=local_policy(1)
    )
    with pytest.raises(ProviderError, match="could not be reached") as failed:
        sms.send(NUMBER, BODY)
    assert not failed.value.permanent and NUMBER not in str(failed.value)


def test_production_refuses_a_plain_http_or_private_sms_url(tmp_path):
    settings = {
        "ENV_NAME": "production",
        "SMS_PROVIDER": "http",
        "SMS_ACCOUNT": "AC1",
        "SMS_TOKEN": "t",
        "SMS_FROM": "+15550001111",
        "INSTANCE_DIR": str(tmp_path),
        **PRODUCTION_EMAIL,
    }
    for url, why in [
        ("http://sms.example.org/send", "https"),
        ("https://10.0.0.5/send", "public Internet"),
        ("https://user@sms.example.org/send", "user name"),
    ]:
        with pytest.raises(ProviderConfigError, match=why):
            create_app(TestConfig, SMS_HTTP_URL=url, **settings)


def test_the_sms_token_goes_only_to_the_configured_host(http_app, provider, monkeypatch, worker):
    """A look-up that turns the provider's name into another address: nothing sent, no retry."""
    http_app.config["SMS_HTTP_URL"] = provider.url.replace("127.0.0.1", "sms.provider.test")
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["10.20.30.40"])
    message = queue()
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    assert message.status == "failed" and "public Internet" in message.error
    assert provider.requests == []
