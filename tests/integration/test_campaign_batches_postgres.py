"""A campaign's messages made in chunks on PostgreSQL: a start killed midway (its connection
cut, as when the worker process dies) and started again, and two starts at once, leave every
person who did not say STOP exactly one message with exactly one job."""

from __future__ import annotations

import contextlib
import secrets
import threading

import pytest
from sqlalchemy import func, select, text

from tests.support import campaign_run, pg_race

pytestmark = pytest.mark.integration

PEOPLE = 230
CHUNK = 50  # several chunks with few people


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(pool_size=6) as app:
        yield app


@pytest.fixture
def small_chunks(monkeypatch):
    from portal.campaigns import sending

    monkeypatch.setattr(sending, "CHUNK", CHUNK)


def _campaign(app, stop_every: int = 7) -> tuple[int, set[int]]:
    """A campaign sent to a new project of PEOPLE people, every ``stop_every``-th of whom said
    STOP; (campaign id, ids of the people it must reach)."""
    from portal.accounts import services as accounts
    from portal.beneficiaries.models import Beneficiary, BeneficiaryPII, ProjectBeneficiary
    from portal.campaigns import optout
    from portal.extensions import db
    from portal.projects import services as projects

    with app.app_context():
        try:
            user = accounts.create_user(
                f"campaigner-{secrets.token_hex(4)}@example.org",
                "Campaigner",
                "a-long-pass-1x",
                accounts.seed_roles()["admin"],
            )
            project = projects.create(
                {"name": f"Batches {secrets.token_hex(3)}", "type": "cva"}, user
            )
            db.session.commit()
            already = db.session.scalar(select(func.count(Beneficiary.id)))
            campaign_run.seed_people(project.id, PEOPLE, start=already)
            people = db.session.execute(
                select(Beneficiary.id, BeneficiaryPII.phone)
                .join(BeneficiaryPII)
                .join(ProjectBeneficiary, ProjectBeneficiary.beneficiary_id == Beneficiary.id)
                .where(ProjectBeneficiary.project_id == project.id)
                .order_by(Beneficiary.id)
            ).all()
            reached = set()
            for i, (person_id, phone) in enumerate(people):
                if i % stop_every == 0:
                    optout.handle(phone, "STOP")
                else:
                    reached.add(person_id)
            db.session.commit()
            campaign_id = campaign_run.launch(project.id, user.id)
            return campaign_id, reached
        finally:
            db.session.remove()


def _messages(app, campaign_id: int) -> list:
    from portal.comms.models import OutboxMessage
    from portal.extensions import db
    from portal.jobs.models import Job

    with app.app_context():
        try:
            return db.session.execute(
                select(OutboxMessage.beneficiary_id, OutboxMessage.job_id, Job.payload_json)
                .outerjoin(Job, Job.id == OutboxMessage.job_id)
                .where(OutboxMessage.campaign_id == campaign_id)
            ).all()
        finally:
            db.session.remove()


def _assert_once_each(app, campaign_id: int, reached: set[int]) -> None:
    import json

    rows = _messages(app, campaign_id)
    people = [row.beneficiary_id for row in rows]
    assert sorted(people) == sorted(reached)  # everyone once, nobody who said STOP
    jobs = [row.job_id for row in rows]
    assert None not in jobs and len(set(jobs)) == len(jobs)
    from portal.comms.models import OutboxMessage
    from portal.extensions import db
    from portal.jobs.models import Job

    with app.app_context():
        try:
            ids = dict(
                db.session.execute(
                    select(OutboxMessage.job_id, OutboxMessage.id).where(
                        OutboxMessage.campaign_id == campaign_id
                    )
                ).all()
            )
            # Each job names its own message, and no job names a message of no row.
            payloads = db.session.scalars(
                select(Job.payload_json).where(Job.kind == "campaigns.sms")
            ).all()
            campaign_messages = set(ids.values())
            named = [json.loads(p)["message_id"] for p in payloads]
            named = [m for m in named if m in campaign_messages]
            assert sorted(named) == sorted(campaign_messages)
            for row in rows:
                assert json.loads(row.payload_json)["message_id"] == ids[row.job_id]
            from portal.campaigns.models import Campaign

            campaign = db.session.get(Campaign, campaign_id)
            assert campaign.recipients == len(reached)
            assert campaign.opted_out == PEOPLE - len(reached)
        finally:
            db.session.remove()


def test_a_start_killed_midway_then_retried_makes_each_message_once(app, small_chunks):
    from portal.campaigns import sending
    from portal.extensions import db
    from portal.jobs import dispatch

    campaign_id, reached = _campaign(app)
    real = dispatch.enqueue_many
    chunks_done = threading.Event()
    hold = threading.Event()
    pid: list[int] = []

    def slow(*args, **kwargs):
        found = real(*args, **kwargs)
        if not chunks_done.is_set() and threading.current_thread().name == "doomed":
            chunks_done.set()
            hold.wait(30)
        return found

    outcome: list = []

    def doomed() -> None:
        with app.app_context():
            try:
                pid.append(db.session.scalar(text("select pg_backend_pid()")))
                sending.start(campaign_id)
                db.session.commit()
                outcome.append("committed")
            except Exception as exc:  # its connection was cut: what a dead worker leaves
                outcome.append(type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    db.session.remove()

    dispatch.enqueue_many = slow
    try:
        thread = threading.Thread(target=doomed, name="doomed", daemon=True)
        thread.start()
        assert chunks_done.wait(60), "the start never made its first chunk"
        # The first chunk is written but not committed: nobody else sees it.
        assert _messages(app, campaign_id) == []
        with app.app_context():
            try:
                db.session.execute(text("select pg_terminate_backend(:p)"), {"p": pid[0]})
                db.session.commit()
            finally:
                db.session.remove()
        hold.set()
        thread.join(30)
        assert not thread.is_alive()
        assert outcome and outcome[0] != "committed"
    finally:
        dispatch.enqueue_many = real
    assert _messages(app, campaign_id) == []  # the cut transaction left nothing behind
    retried = pg_race.in_own_session(app, lambda: sending.start(campaign_id))
    assert retried == f"{len(reached)} messages queued"
    _assert_once_each(app, campaign_id, reached)
    # The retry of a start that did commit (a worker killed after it) adds nobody.
    assert pg_race.in_own_session(app, lambda: sending.start(campaign_id)) == "0 messages queued"
    _assert_once_each(app, campaign_id, reached)


@pytest.mark.parametrize("seed", [1, 2])
def test_two_starts_at_once_make_each_message_once(app, small_chunks, seed):
    from portal.campaigns import sending
    from portal.extensions import db

    campaign_id, reached = _campaign(app, stop_every=5)

    def contender(_i, go):
        with app.app_context():
            try:
                db.session.connection()
                go()
                result = sending.start(campaign_id)
                db.session.commit()
                return result
            finally:
                db.session.remove()

    results = pg_race.race(2, contender, seed=seed, what="a campaign start")
    assert not [r for r in results if isinstance(r, Exception)], results
    made = sorted(int(r.split()[0]) for r in results)
    assert sum(made) == len(reached)  # one of them made them all, or they shared them out
    _assert_once_each(app, campaign_id, reached)
