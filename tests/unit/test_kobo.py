"""KoboToolbox: the real HTTP client against a local server in Kobo's JSON shape; the webhook."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from portal.beneficiaries.models import Beneficiary
from portal.extensions import db
from portal.imports import kobo
from portal.imports.models import KOBO, ImportBatch, ImportSource, KoboSubmission
from tests.support.kobo_server import FakeKobo, submission

TOKEN = "kobo-api-token-for-tests"
ASSET = "aB3xYz9QwE"


def people(n: int, start: int = 1) -> list[dict]:
    return [
        submission(f"uuid-{i:04d}", f"Person {i}", f"98410{i:05d}") for i in range(start, start + n)
    ]


@pytest.fixture
def project(make_project):
    return make_project(status="active")


@pytest.fixture
def source(project):
    found = ImportSource(
        name="Household survey",
        kind=KOBO,
        kobo_asset_uid=ASSET,
        kobo_token=TOKEN,
        project_id=project.id,
    )
    db.session.add(found)
    db.session.flush()
    return found


def beneficiaries() -> int:
    return db.session.scalar(select(func.count()).select_from(Beneficiary))


def test_pull_follows_pages_and_imports_once(app, source, worker, monkeypatch):
    monkeypatch.setattr(kobo, "PAGE_SIZE", 2)
    with FakeKobo(ASSET, TOKEN, people(5)) as fake:
        source.kobo_server_url = fake.url
        batch = kobo.pull_to_batch(source, None)
        assert len(fake.requests) == 3  # 2 + 2 + 1
    assert batch.total_rows == 5 and batch.kind == KOBO
    assert batch.mapping["respondent/full_name"] == "name"
    assert batch.mapping["respondent/phone"] == "phone"
    assert "_id" not in batch.headers and "formhub/uuid" not in batch.headers

    from portal.imports import pipeline

    pipeline.analyse(batch, lambda *a: None)
    assert batch.new_rows == 5
    batch.status, batch.mode = "committing", "all"
    assert pipeline.commit(batch, lambda *a: None) == 5
    db.session.commit()
    receipts = db.session.scalars(select(KoboSubmission.uuid)).all()
    assert sorted(receipts) == [f"uuid-{i:04d}" for i in range(1, 6)]

    with FakeKobo(ASSET, TOKEN, people(6)) as fake:  # one new submission since
        source.kobo_server_url = fake.url
        again = kobo.pull_to_batch(source, None)
    assert again.total_rows == 1


def test_pull_job_starts_the_dry_run(app, source, worker, make_user):
    user = make_user("admin")
    with FakeKobo(ASSET, TOKEN, people(3)) as fake:
        source.kobo_server_url = fake.url
        from portal.jobs import dispatch

        dispatch.enqueue("imports.kobo_pull", {"source_id": source.id}, created_by_id=user.id)
        db.session.commit()
        worker.run("imports")
    batch = db.session.scalar(select(ImportBatch))
    assert batch.status == "ready" and batch.new_rows == 3


@pytest.mark.parametrize(
    ("token", "asset", "message"),
    [("wrong-token", ASSET, "refused the API token"), (TOKEN, "nope123", "no form")],
)
def test_pull_errors_are_clear(app, source, token, asset, message):
    with FakeKobo(ASSET, TOKEN, people(1)) as fake:
        source.kobo_server_url, source.kobo_token, source.kobo_asset_uid = fake.url, token, asset
        with pytest.raises(kobo.KoboError, match=message):
            kobo.pull_to_batch(source, None)


def test_pull_refuses_a_next_page_on_another_host(app, source, monkeypatch):
    monkeypatch.setattr(kobo, "PAGE_SIZE", 1)
    with FakeKobo(ASSET, TOKEN, people(3)) as fake:
        fake.next_override = "http://169.254.169.254/latest/meta-data/"
        source.kobo_server_url = fake.url
        with pytest.raises(kobo.KoboError, match="another server"):
            kobo.pull_to_batch(source, None)
        assert len(fake.requests) == 1


def basic(secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"portal:{secret}".encode()).decode()}


def test_webhook_authenticates_imports_and_is_idempotent(app, client, source):
    secret = kobo.new_webhook_secret(source)
    db.session.commit()
    url = f"/api/kobo/{source.id}/submissions"
    one = submission("uuid-web-1", "Maya Gurung", "9841055501")

    assert client.post(url, json=one).status_code == 401
    assert client.post(url, json=one, headers=basic("wrong")).status_code == 401
    assert (
        client.post("/api/kobo/9999/submissions", json=one, headers=basic(secret)).status_code
        == 401
    )

    first = client.post(url, json=one, headers=basic(secret))
    assert first.status_code == 201 and first.get_json()["outcome"] == "imported"
    repeat = client.post(url, json=one, headers={"X-Portal-Secret": secret})
    assert repeat.status_code == 200 and repeat.get_json()["repeat"] is True
    assert beneficiaries() == 1

    same_person = submission("uuid-web-2", "Maya G.", "+977 9841055501")
    dup = client.post(url, json=same_person, headers=basic(secret))
    assert dup.status_code == 200 and dup.get_json()["outcome"] == "duplicate"

    bad = client.post(url, json=submission("uuid-web-3", "X", "123"), headers=basic(secret))
    assert bad.status_code == 422 and bad.get_json()["outcome"] == "invalid"
    assert "123" not in bad.get_json()["message"]  # the answer does not echo personal data

    no_uuid = client.post(url, json={"respondent/full_name": "A"}, headers=basic(secret))
    assert no_uuid.status_code == 422
    assert no_uuid.headers["Content-Type"] == "application/problem+json"
    assert client.post(url, data="not json", headers=basic(secret)).status_code == 400
    assert beneficiaries() == 1


def test_webhook_then_pull_does_not_import_twice(app, client, source):
    secret = kobo.new_webhook_secret(source)
    db.session.commit()
    client.post(f"/api/kobo/{source.id}/submissions", json=people(1)[0], headers=basic(secret))
    with FakeKobo(ASSET, TOKEN, people(2)) as fake:
        source.kobo_server_url = fake.url
        batch = kobo.pull_to_batch(source, None)
    assert batch.total_rows == 1  # only uuid-0002 is new


def test_secret_is_stored_hashed(app, source):
    secret = kobo.new_webhook_secret(source)
    assert secret not in (source.webhook_secret_hash or "")
    assert kobo.secret_matches(source, secret) and not kobo.secret_matches(source, secret + "x")


def test_kobo_pages_are_guarded(app, client, make_user, login, source):
    login(client, make_user("viewer"))
    assert client.get("/imports/kobo/").status_code == 403
    assert client.post(f"/imports/kobo/{source.id}/pull").status_code == 403


# --- where the API token may go ------------------------------------------------------------------


def _form(project, server_url: str, name: str = "Survey") -> dict:
    return {
        "name": name,
        "server_url": server_url,
        "asset_uid": ASSET,
        "token": TOKEN,
        "project_id": project.id,
        "group_id": 0,
    }


@pytest.mark.parametrize(
    "server_url",
    [
        "http://169.254.169.254",
        "http://2130706433",
        "http://0x7f.1:8000",
        "http://[::ffff:127.0.0.1]:8000",
        "https://kf.kobotoolbox.org@10.0.0.1",
        "https://kf.kobotoolbox.org:8443",
        "https://kf.kobotoolbox.org.evil.example",
        "https://redis.internal:6379",
        "http://localhost:5432",
    ],
)
def test_the_form_refuses_a_server_off_the_allow_list(
    app, client, make_user, login, project, server_url
):
    login(client, make_user("admin"))
    page = client.post("/imports/kobo/new", data=_form(project, server_url))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert (
        "not an allowed KoboToolbox server" in html
        or "must not hold a user name" in html
        or ("not a host name" in html)
    )
    assert db.session.scalar(select(func.count()).select_from(ImportSource)) == 0


def test_the_form_accepts_an_allowed_server(app, client, make_user, login, project):
    login(client, make_user("admin"))
    page = client.post("/imports/kobo/new", data=_form(project, "https://KF.kobotoolbox.org/"))
    assert page.status_code == 302
    saved = db.session.scalar(select(ImportSource))
    assert saved.kobo_server_url == "https://KF.kobotoolbox.org"


def test_the_allow_list_setting_lets_an_own_server_in(app, client, make_user, login, project):
    from portal.settings import services as settings

    login(client, make_user("admin"))
    own = "https://kobo.ngo.example:8443"
    assert client.post("/imports/kobo/new", data=_form(project, own)).status_code == 200
    settings.set_value(settings.KOBO_ALLOWED_HOSTS, "kf.kobotoolbox.org, KOBO.ngo.example:8443")
    assert settings.get(settings.KOBO_ALLOWED_HOSTS) == "kf.kobotoolbox.org, kobo.ngo.example:8443"
    db.session.commit()
    assert client.post("/imports/kobo/new", data=_form(project, own)).status_code == 302


def test_the_allow_list_setting_refuses_what_is_not_a_host(app):
    from portal.errors import DomainError
    from portal.settings import services as settings

    for value in ("kf.kobotoolbox.org, 0x7f.1", "kobo.example:https", "a:b:c"):
        with pytest.raises(DomainError):
            settings.set_value(settings.KOBO_ALLOWED_HOSTS, value)


def test_pulling_checks_the_address_again(app, source, monkeypatch):
    """Saved while it resolved to a public address; now the name leads inside: nothing sent."""
    from portal import outbound

    with FakeKobo(ASSET, TOKEN, people(1)) as fake:
        source.kobo_server_url = f"http://kf.kobotoolbox.org:{fake.server.server_address[1]}"
        monkeypatch.setattr(outbound, "resolve", lambda host, port: ["127.0.0.1"])
        app.config["KOBO_ALLOWED_HOSTS"] = "kf.kobotoolbox.org:*"
        with pytest.raises(kobo.KoboError, match="not on the public Internet"):
            kobo.pull_to_batch(source, None)
        assert fake.requests == []


def test_a_source_saved_before_the_allow_list_is_not_pulled(app, source):
    source.kobo_server_url = "http://10.1.2.3:8080"
    with pytest.raises(kobo.KoboError, match="not an allowed KoboToolbox server"):
        kobo.pull_to_batch(source, None)


def test_a_redirect_is_not_followed(app, source):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    hits: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        source.kobo_server_url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(kobo.KoboError, match="redirect"):
            kobo.pull_to_batch(source, None)
    finally:
        server.shutdown()
        server.server_close()
    assert len(hits) == 1
