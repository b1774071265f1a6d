"""Sign-in throttling counts live in the shared store (Redis), not in one web process."""

from __future__ import annotations

import secrets

import pytest

from config import TestConfig

pytestmark = pytest.mark.integration


def _attempt(app, email: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    return client.post("/login", data={"email": email, "password": "a wrong password"})


@pytest.fixture
def apps():
    made = []
    yield made
    from portal.extensions import db

    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_count_started_in_one_process_holds_in_another(redis_db, tmp_path, apps):
    from portal import create_app
    from portal.extensions import db

    def web_process(storage: str):
        # create_app binds the one limiter to a new storage client, as a new process would.
        app = create_app(
            TestConfig, INSTANCE_DIR=str(tmp_path / "instance"), RATELIMIT_STORAGE_URI=storage
        )
        with app.app_context():
            db.create_all()
        apps.append(app)
        return app

    email = f"probe-{secrets.token_hex(4)}@example.org"
    first = web_process(redis_db.url)
    with first.app_context():
        codes = [_attempt(first, email).status_code for _ in range(5)]
    assert codes == [401] * 5

    second = web_process(redis_db.url)
    with second.app_context():
        refused = _attempt(second, email)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0

    # The control: a process with its own memory has no count, so the count above was Redis's.
    alone = web_process("memory://")
    with alone.app_context():
        assert _attempt(alone, email).status_code == 401
