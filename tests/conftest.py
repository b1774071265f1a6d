"""Shared fixtures: an app on an in-memory database, a test client, factories and a job worker.

Factories go through the services, like the views do, so a test starts from data the portal
itself could have written. Services and factories only ``flush``; a test commits where a real
request or job would (before a worker runs, or before a raw-SQL tamper is checked).

Note for route tests: Flask reuses the test's app context for each request, so a request sees
(and commits) what the test flushed, on the same ``db.session``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import dramatiq
import pytest
from flask import g

from config import TestConfig
from portal import create_app
from portal.extensions import db
from portal.models import import_all

DEFAULT_PASSWORD = "correct horse battery staple"

# Every model is mapped before any test module is imported, so a module that reaches the
# mappers at import (a chain helper, a query built at module level) works in any subset.
import_all()


@pytest.fixture
def app(tmp_path):
    """A fresh app per test: its own in-memory database, broker, files folder and roles."""
    from portal.accounts.services import seed_roles

    app = create_app(TestConfig, INSTANCE_DIR=str(tmp_path / "instance"))

    # The test's app context is shared by every request (Flask reuses a pushed context), so
    # Flask-Login's per-request cache of the current user would leak from one request, or one
    # client, to the next. Drop it before each request, as a fresh context would.
    def _forget_cached_user():
        g.pop("_login_user", None)
        g.pop("_flask_babel", None)  # Flask-Babel's language of the request, kept on g too

    app.before_request_funcs.setdefault(None, []).insert(0, _forget_cached_user)

    with app.app_context():
        db.create_all()
        seed_roles()
        db.session.commit()
        yield app
        db.session.remove()
        db.drop_all()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def passwords() -> dict[str, str]:
    """Email -> password of the users made by ``make_user``, for ``login``."""
    return {}


@pytest.fixture
def make_user(app, passwords):
    from portal.accounts.services import create_user, role_by_name

    counter = itertools.count(1)

    def make_user(
        role: str = "admin",
        email: str | None = None,
        password: str = DEFAULT_PASSWORD,
        name: str | None = None,
    ):
        n = next(counter)
        email = email or f"user{n}@example.org"
        user = create_user(email, name or f"Test User {n}", password, role_by_name(role))
        passwords[user.email] = password
        return user

    return make_user


@pytest.fixture
def manager(make_user):
    """A programme manager, committed: jobs and audit rows refer to a user that exists."""
    user = make_user(role="programme manager")
    db.session.commit()
    return user


@pytest.fixture
def totp_secrets() -> dict[str, str]:
    """Email -> TOTP secret of the users enrolled by ``enrol``, for ``login``."""
    return {}


@pytest.fixture
def enrol(app, totp_secrets):
    """``enrol(user)`` sets up two-factor sign-in for the user in code (as the set-up page
    would); returns the recovery codes. ``login`` then types the codes their app would show."""
    from tests.support import twofactor

    def enrol(user) -> list[str]:
        secret, codes = twofactor.enrol(user)
        totp_secrets[user.email] = secret
        return codes

    return enrol


@pytest.fixture
def login(passwords, totp_secrets):
    """``login(client, user)`` signs in through the real form (and the code step, for an
    enrolled user); returns the last response."""
    from tests.support import twofactor

    def login(client, user, password: str | None = None):
        db.session.commit()  # a request is a transaction boundary: the user must exist
        response = client.post(
            "/login",
            data={"email": user.email, "password": password or passwords[user.email]},
        )
        if response.headers.get("Location", "").endswith("/login/two-factor"):
            secret = totp_secrets[user.email]
            response = client.post("/login/two-factor", data={"code": twofactor.code(secret)})
        return response

    return login


@pytest.fixture
def second_approver(app, make_user, login):
    """``second_approver.approve()``: another person approves the newest pending request
    (funding and disbursement starts wait for one), through the decide form."""
    from tests.support.approvals import SecondApprover

    return SecondApprover(app, make_user, login)


@pytest.fixture
def make_project(app, make_user):
    from portal.projects import services as projects
    from portal.projects.models import ACTIVE, CLOSED

    counter = itertools.count(1)

    def make_project(
        name: str | None = None,
        type: str = "cva",
        status: str = "draft",
        creator=None,
        members=(),
        **fields,
    ):
        creator = creator or make_user("admin")
        data = {"name": name or f"Project {next(counter)}", "type": type, **fields}
        project = projects.create(data, creator)
        if members:
            projects.set_members(project, {creator.id, *(u.id for u in members)})
        # Walk the real lifecycle so the audit log looks like it would in use.
        if status in (ACTIVE, CLOSED):
            projects.change_status(project, ACTIVE)
        if status == CLOSED:
            projects.change_status(project, CLOSED)
        return project

    return make_project


def _phones(prefix: str):
    # Valid Nepali mobile numbers (the default country is NP), distinct per call.
    return (f"{prefix}{n:07d}" for n in itertools.count(1))


@pytest.fixture
def make_beneficiary(app):
    from portal.beneficiaries import services as beneficiaries

    phones = _phones("984")
    counter = itertools.count(1)

    def make_beneficiary(
        project=None,
        name: str | None = None,
        phone: str | None = None,
        national_id: str | None = None,
        **fields,
    ):
        data = {
            "name": name or f"Beneficiary {next(counter)}",
            "phone": phone or next(phones),
            "national_id": national_id,
            **fields,
        }
        return beneficiaries.create(data, project=project)

    return make_beneficiary


@pytest.fixture
def make_vendor(app):
    from portal.vendors import services as vendors

    phones = _phones("980")
    counter = itertools.count(1)

    def make_vendor(
        project=None,
        name: str | None = None,
        phone: str | None = None,
        category: str = "shop",
        contact_name: str = "Shop Owner",
        status: str | None = None,
        **fields,
    ):
        data = {
            "name": name or f"Vendor {next(counter)}",
            "phone": phone or next(phones),
            "category": category,
            "contact_name": contact_name,
            **fields,
        }
        vendor = vendors.register(data, project=project)
        if status and status != vendor.status:
            vendors.change_status(vendor, status)
        return vendor

    return make_vendor


@dataclass
class WorkerHarness:
    """Runs the app's Dramatiq actors on its StubBroker, to completion, from the test thread.

    The worker runs only inside ``run()``. In-memory SQLite is one connection shared by every
    thread (StaticPool), so a worker picking up a message while the test thread still uses the
    database (for instance in the after-commit send) would interleave on that connection.
    """

    broker: dramatiq.Broker

    def queued(self, queue: str = "default") -> int:
        """Messages waiting on ``queue`` (not counting delayed ones)."""
        return self.broker.queues[queue].qsize()

    def run(self, queue: str = "default", timeout_ms: int = 10_000) -> None:
        """Process everything on ``queue`` and its delay queue (retries), then refresh the session.

        Commit before calling: the worker's sessions end with a rollback on the shared
        connection, which would take uncommitted test data with it.
        """
        # One thread, for the same reason: concurrent job transactions on one connection would
        # commit or roll back each other's work.
        worker = dramatiq.Worker(self.broker, worker_timeout=100, worker_threads=1)
        worker.start()
        try:
            # StubBroker.join waits on ``queue`` and ``queue.DQ`` and cycles until neither has
            # work left, so retries sent with a delay are waited for too. It re-raises the error
            # of a dead-lettered message.
            self.broker.join(queue, timeout=timeout_ms)
            worker.join()
        finally:
            worker.stop()
        db.session.expire_all()  # the worker committed through its own sessions


@pytest.fixture
def worker(app):
    from workers.runtime import prepare

    return WorkerHarness(prepare(app))


pytest_plugins = ["tests.support.ci", "tests.support.fixtures"]
