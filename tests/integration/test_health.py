"""``/health`` and ``flask health``: database, Redis and the chain, each checked live.

Each dependency is taken away for real: a redis-server of this test's own, stopped by PID; a
chain node on a port nobody listens on; an anvil that mines only on demand, so its latest block
ages while the test waits (stale), until a block is mined (ok again); a database that does not
exist. The shared Redis and PostgreSQL are never touched.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.support import services, stack

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own (the shared one must never be stopped)."""
    try:
        process, url = services.start_redis_server(tmp_path)
    except services.Unavailable as exc:
        pytest.skip(str(exc))
    url += "/0"
    process.url = url
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def health_db(database_factory):
    return database_factory("portal_it_health")


@pytest.fixture
def make_app(health_db, own_redis, anvil_node, portal_secrets, tmp_path):
    """A web-role app on the test's own Redis and the session's anvil."""
    from config import Config
    from portal import create_app
    from portal.extensions import db

    made = []

    def make(**overrides):
        settings = {
            "SQLALCHEMY_DATABASE_URI": health_db,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2, "max_overflow": 0},
            "REDIS_URL": own_redis.url,
            "BROKER": "redis",
            "WEB3_PROVIDER_URI": anvil_node.url,
            "SECRET_KEY": portal_secrets["SECRET_KEY"],
            "PII_KEY": portal_secrets["PII_KEY"],
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "RATELIMIT_STORAGE_URI": "memory://",
            "HEALTH_TIMEOUT_SECONDS": 2,
            **overrides,
        }
        app = create_app(Config, role="web", **settings)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        app.extensions["dramatiq_broker"].close()


def _get(app):
    reply = app.test_client().get("/health")
    return reply.status_code, reply.get_json(), reply.get_data(as_text=True)


def _no_secrets(app, text: str) -> None:
    for name in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "WEB3_PROVIDER_URI", "SECRET_KEY"):
        value = app.config.get(name)
        if value:
            assert value not in text, name
    assert "postgres" not in text and "redis://" not in text and "http://" not in text


def test_everything_up_is_200_with_chain_figures(make_app, anvil_node):
    app = make_app()
    status, body, text = _get(app)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok", "chain": "ok"}
    assert body["chain"]["chain_id"] == int(anvil_node.rpc("eth_chainId"), 16)
    assert body["chain"]["block"] >= 0 and body["chain"]["block_age_seconds"] >= 0
    assert body["async_mode"] == "threading"
    assert body["chain"]["open_alerts"] == {}
    _no_secrets(app, text)

    from portal.chain import alerts

    with app.app_context():
        alerts.raise_alert(alerts.NONCE_GAP, "The node waits for a nonce.")
        from portal.extensions import db

        db.session.commit()
    status, body, _ = _get(app)
    # Shown for monitoring, but the process is healthy: a balancer must not pull it.
    assert status == 200 and body["chain"]["open_alerts"] == {alerts.NONCE_GAP: 1}


def test_redis_stopped_is_503_redis_down(make_app, own_redis):
    app = make_app()
    assert _get(app)[0] == 200
    own_redis.stop()
    started = time.monotonic()
    status, body, text = _get(app)
    assert status == 503
    assert body["status"] == "degraded"
    assert body["checks"] == {"database": "ok", "redis": "down", "chain": "ok"}
    assert time.monotonic() - started < 10
    _no_secrets(app, text)


def test_unreachable_chain_is_503_chain_down(make_app):
    app = make_app(WEB3_PROVIDER_URI=f"http://127.0.0.1:{services.free_port()}")
    status, body, text = _get(app)
    assert status == 503
    assert body["checks"] == {"database": "ok", "redis": "ok", "chain": "down"}
    _no_secrets(app, text)


def test_a_block_older_than_the_setting_is_stale_until_a_new_one(make_app, anvil_node):
    anvil_node.rpc("evm_mine")
    app = make_app(CHAIN_STALE_SECONDS=1)
    time.sleep(2.2)  # anvil mines on demand: nothing new arrives meanwhile
    status, body, _ = _get(app)
    assert status == 503
    assert body["checks"]["chain"] == "stale"
    assert body["chain"]["block_age_seconds"] > 1
    assert body["chain"]["stale_after_seconds"] == 1
    anvil_node.rpc("evm_mine")
    status, body, _ = _get(app)
    assert status == 200, body
    assert body["checks"]["chain"] == "ok"


def test_another_chain_id_than_configured_or_recorded_is_a_mismatch(make_app, anvil_node):
    actual = int(anvil_node.rpc("eth_chainId"), 16)
    status, body, _ = _get(make_app(CHAIN_ID=actual + 1))
    assert status == 503
    assert body["checks"]["chain"] == "mismatch"
    assert body["chain"]["expected_chain_ids"] == [actual + 1]

    from portal.chain.models import ProjectChain
    from portal.extensions import db
    from portal.projects.models import Project

    app = make_app()
    with app.app_context():
        project = Project(name="Health check", type="cva")
        db.session.add(project)
        db.session.flush()
        db.session.add(
            ProjectChain(
                project_id=project.id, chain_id=actual + 7, symbol="AID", contract_kind="x"
            )
        )
        db.session.commit()
        try:
            status, body, _ = _get(app)
        finally:
            db.session.delete(db.session.get(ProjectChain, project.id))
            db.session.delete(project)
            db.session.commit()
    assert status == 503
    assert body["checks"]["chain"] == "mismatch"
    assert body["chain"]["expected_chain_ids"] == [actual + 7]


def test_database_unreachable_is_503_database_down(make_app, pg_service):
    missing = pg_service.sqlalchemy_url("portal_it_health_does_not_exist")
    app = make_app(SQLALCHEMY_DATABASE_URI=missing)
    status, body, text = _get(app)
    assert status == 503
    assert body["checks"]["database"] == "down"
    assert body["checks"]["redis"] == "ok"
    _no_secrets(app, text)


def _cli_health(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [stack.PYTHON, "-m", "flask", "--app", "wsgi", "health", *args],
        env=env,
        cwd=stack.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_health_command_exits_non_zero_when_a_dependency_is_down(
    health_db, own_redis, anvil_node, portal_secrets, tmp_path
):
    env = stack.portal_env(
        database_url=health_db,
        redis_url=own_redis.url,
        instance_dir=tmp_path / "instance",
        secrets=portal_secrets,
        WEB3_PROVIDER_URI=anvil_node.url,
        HEALTH_TIMEOUT_SECONDS="2",
    )
    up = _cli_health(env, "--role", "worker")
    assert up.returncode == 0, up.stderr[-2000:]
    body = json.loads(up.stdout.strip().splitlines()[-1])
    assert body["role"] == "worker"
    assert body["checks"] == {"database": "ok", "redis": "ok", "chain": "ok"}

    no_chain = _cli_health(
        {**env, "WEB3_PROVIDER_URI": f"http://127.0.0.1:{services.free_port()}"}, "--role", "worker"
    )
    assert no_chain.returncode == 1
    assert json.loads(no_chain.stdout.strip().splitlines()[-1])["checks"]["chain"] == "down"

    own_redis.stop()
    down = _cli_health(env, "--role", "worker")
    assert down.returncode == 1, down.stdout
    assert json.loads(down.stdout.strip().splitlines()[-1])["checks"]["redis"] == "down"
