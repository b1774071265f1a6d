"""Email: the SMTP provider against a real SMTP server (STARTTLS, TLS, login), retries and
permanent failures through the comms job, the outbox in development, and the start-up checks."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from config import TestConfig
from portal import create_app
from portal.comms import email as email_providers
from portal.comms import mail
from portal.comms.models import OutboxMessage
from portal.comms.providers import ProviderConfigError, ProviderError
from portal.extensions import db
from portal.jobs.models import Job
from tests.support.smtp import SmtpServer

TO = "ana.sharma@example.org"
LINK = "https://portal.example.org/t/secret-link-token"


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path, security="starttls", login=("portal", "smtp-secret")).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_app(app, smtp):
    app.config.update(smtp.settings)
    return app


def queue(purpose="accounts.password_reset") -> OutboxMessage:
    message = mail.send_email(
        TO,
        "Reset your portal password",
        "password_reset",
        purpose,
        name="Ana <Sharma>",
        link=LINK,
        by_admin=False,
        minutes=60,
    )
    db.session.commit()
    return message


def test_an_email_goes_out_over_starttls_with_login_in_text_and_html(smtp_app, smtp, worker):
    message = queue()
    job = db.session.get(Job, message.job_id)
    assert (job.kind, job.queue) == ("comms.email", "comms")
    worker.run("comms")
    (got,) = smtp.inbox
    assert got.tls and got.login == "portal"
    assert got.recipients == [TO] and got.sender == "portal@example.org"
    assert got.subject == "Reset your portal password"
    assert LINK in got.text and "Ana <Sharma>" in got.text  # plain text is not escaped
    assert f'href="{LINK}"' in got.html and "Ana &lt;Sharma&gt;" in got.html
    assert got.message["Auto-Submitted"] == "auto-generated"
    message = db.session.get(OutboxMessage, message.id)
    assert (message.status, message.provider, message.attempts) == ("sent", "smtp", 1)
    assert message.provider_ref == got.message["Message-ID"]


def test_the_stored_email_is_encrypted(smtp_app, smtp):
    queue()
    raw = db.session.execute(
        text("select recipient, subject, body, html_body from outbox_messages")
    ).one()
    for column in raw:
        assert column.startswith("v1:")
        assert TO not in column and "secret-link-token" not in column and "Reset" not in column


def test_tls_from_the_first_byte(app, tmp_path, worker):
    server = SmtpServer(tmp_path, security="tls").start()
    try:
        app.config.update(server.settings)
        queue()
        worker.run("comms")
        (got,) = server.inbox
        assert got.tls and got.login is None
    finally:
        server.stop()


def test_a_wrong_login_fails_at_once_and_says_why_without_secrets(smtp_app, smtp, worker, caplog):
    caplog.set_level(logging.DEBUG)
    smtp_app.config["SMTP_PASSWORD"] = "wrong-secret"
    message = queue()
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    job = db.session.get(Job, message.job_id)
    assert message.status == "failed" and job.status == "failed" and job.attempts == 1
    assert message.error == "The SMTP server refused the login: reply 535."
    assert not smtp.inbox
    for seen in (job.error, caplog.text):
        assert TO not in seen and "secret-link-token" not in seen and "wrong-secret" not in seen


def test_a_refused_recipient_fails_without_naming_it(smtp_app, smtp, worker):
    smtp.refuse("RCPT", "550 5.1.1 No such user here")
    message = queue()
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    assert message.status == "failed"
    assert message.error == "The SMTP server refused the recipient: reply 550."


def test_a_busy_server_is_tried_again(smtp_app, smtp, worker):
    smtp.refuse("DATA", "451 4.3.0 Try again later")
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
    assert len(smtp.inbox) == 1


def test_starttls_asked_but_not_offered_sends_nothing_in_clear(app, tmp_path, worker):
    server = SmtpServer(tmp_path, security="none").start()
    try:
        app.config.update({**server.settings, "SMTP_SECURITY": "starttls"})
        message = queue()
        worker.run("comms")
        assert not server.inbox
        message = db.session.get(OutboxMessage, message.id)
        assert message.status == "failed"
        assert "does not offer" in message.error
    finally:
        server.stop()


def test_an_untrusted_certificate_is_refused(smtp_app, smtp, worker):
    smtp_app.config["SMTP_CA_FILE"] = None  # the system's CAs do not know the test's certificate
    message = queue()
    worker.run("comms")
    assert not smtp.inbox
    message = db.session.get(OutboxMessage, message.id)
    assert message.status == "failed" and "certificate" in message.error


def test_a_server_that_does_not_answer_in_time_is_a_transient_error(app, smtp):
    smtp.handler.delay = 1.5
    provider = email_providers.get_provider({**smtp.settings, "SMTP_TIMEOUT": "0.5"})
    with pytest.raises(ProviderError, match="did not answer in time") as failed:
        provider.send(TO, "subject", "text", None)
    assert not failed.value.permanent


def test_an_unreachable_server_is_a_transient_error(smtp):
    provider = email_providers.get_provider({**smtp.settings, "SMTP_PORT": "9"})
    with pytest.raises(ProviderError, match="could not be reached") as failed:
        provider.send(TO, "subject", "text", None)
    assert not failed.value.permanent and TO not in str(failed.value)


def test_an_email_past_its_link_expiry_is_not_sent(smtp_app, smtp, worker):
    from datetime import timedelta

    from portal.timeutil import utcnow

    message = mail.send_email(
        TO,
        "s",
        "password_reset",
        "accounts.password_reset",
        expires_at=utcnow() - timedelta(seconds=1),
        name="A",
        link=LINK,
        by_admin=False,
        minutes=60,
    )
    db.session.commit()
    worker.run("comms")
    message = db.session.get(OutboxMessage, message.id)
    assert message.status == "failed" and not smtp.inbox
    assert message.body is None and message.subject is None and message.html_body is None


# --- development outbox ------------------------------------------------------------------------


def test_the_outbox_page_shows_emails_in_development(app, client, make_user, login, worker):
    queue()
    login(client, make_user("admin"))
    page = client.get("/dev/outbox").get_data(as_text=True)
    assert "Reset your portal password" in page and LINK in page and TO in page


def test_the_outbox_page_leaves_out_emails_that_go_to_a_real_server(
    smtp_app, client, make_user, login
):
    queue()
    login(client, make_user("admin"))
    page = client.get("/dev/outbox")
    assert page.status_code == 200  # SMS still goes to the outbox
    assert LINK not in page.get_data(as_text=True)


# --- settings ----------------------------------------------------------------------------------

PRODUCTION = {
    "ENV_NAME": "production",
    "PUBLIC_BASE_URL": "https://portal.example.org",
    "SMS_PROVIDER": "http",
    "SMS_HTTP_URL": "https://sms.example.org/send",
    "SMS_ACCOUNT": "AC1",
    "SMS_TOKEN": "t",
    "SMS_FROM": "+15550001111",
}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"EMAIL_PROVIDER": "outbox"}, "development outbox"),
        ({"EMAIL_PROVIDER": "smtp"}, "SMTP_HOST, SMTP_FROM"),
        (
            {
                "EMAIL_PROVIDER": "smtp",
                "SMTP_HOST": "h",
                "SMTP_FROM": "a@b.org",
                "SMTP_SECURITY": "none",
            },
            "in clear",
        ),
        (
            {
                "EMAIL_PROVIDER": "smtp",
                "SMTP_HOST": "h",
                "SMTP_FROM": "a@b.org",
                "SMTP_USERNAME": "u",
            },
            "together",
        ),
        ({"EMAIL_PROVIDER": "pigeon"}, "must be one of"),
    ],
)
def test_production_refuses_email_settings_that_cannot_work(tmp_path, settings, message):
    with pytest.raises(ProviderConfigError, match=message):
        create_app(TestConfig, INSTANCE_DIR=str(tmp_path), **PRODUCTION, **settings)


def test_production_refuses_a_plain_http_public_base_url(tmp_path):
    smtp = {"EMAIL_PROVIDER": "smtp", "SMTP_HOST": "h", "SMTP_FROM": "a@b.org"}
    settings = {**PRODUCTION, "PUBLIC_BASE_URL": "http://portal.example.org"}
    with pytest.raises(RuntimeError, match="https"):
        create_app(TestConfig, INSTANCE_DIR=str(tmp_path), **settings, **smtp)


def test_production_starts_with_smtp(tmp_path):
    smtp = {"EMAIL_PROVIDER": "smtp", "SMTP_HOST": "h", "SMTP_FROM": "Portal <a@b.org>"}
    app = create_app(TestConfig, INSTANCE_DIR=str(tmp_path), **PRODUCTION, **smtp)
    assert app.config["EMAIL_PROVIDER"] == "smtp"
