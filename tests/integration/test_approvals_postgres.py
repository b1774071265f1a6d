"""Four-eyes under real concurrency on PostgreSQL: approvers clicking at the same moment.

Threads with their own sessions (or their own signed-in clients) are released together. However
they interleave: the action runs once, a person is counted once, a request needing two
approvals runs only with two different people, and approve, reject and cancel racing each
other end in exactly one outcome.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from tests.support import pg_race

pytestmark = pytest.mark.integration

MOST = 8
PASSWORD = "a-long-test-password-for-approvals"
SEEDS = (3, 11)


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(
        pool_size=MOST + 6,
        LOGIN_RATE_LIMIT="1000 per minute",
        LOGIN_ACCOUNT_LIMIT="1000 per minute",
        LOGIN_IP_LIMIT="1000 per minute",
        WTF_CSRF_ENABLED=False,
        CHAIN_EPHEMERAL=True,
    ) as app:
        yield app


def _world(approvers: int, threshold: int | None = None) -> dict:
    """A deployed-looking project, a requester, ``approvers`` admins, one pending funding."""
    from portal.accounts import services as accounts
    from portal.approvals import services as approvals
    from portal.chain import contracts, funding_approval
    from portal.chain.models import DEPLOYED, ProjectChain
    from portal.extensions import db
    from portal.projects import services as projects

    roles = accounts.seed_roles()
    tag = secrets.token_hex(4)

    def user(name: str):
        email = f"{name}-{tag}@example.org"
        return accounts.create_user(email, f"{name} {tag}", PASSWORD, roles["admin"])

    asker = user("asker")
    people = [user(f"approver{i}") for i in range(approvers)]
    project = projects.create({"name": f"Approvals {tag}", "type": "cva"}, asker)
    projects.change_status(project, "active")
    db.session.add(
        ProjectChain(
            project_id=project.id,
            chain_id=31337,
            symbol="FOUR",
            decimals=2,
            contract_kind=contracts.ENTITLEMENTS,
            status=DEPLOYED,
            token_address="0x" + secrets.token_hex(20),
            contract_address="0x" + secrets.token_hex(20),
            funded=0,
        )
    )
    db.session.flush()
    if threshold is not None:
        approvals.set_threshold(project, threshold, None)
    req = funding_approval.ask(project, 5_000, "race", asker.id)
    db.session.commit()
    return {
        "request_id": req.id,
        "asker_id": asker.id,
        "asker_email": asker.email,
        "approver_ids": [p.id for p in people],
        "approver_emails": [p.email for p in people],
        "project_id": project.id,
    }


def _state(request_id: int) -> dict:
    from portal.approvals.models import ApprovalDecision, ApprovalRequest
    from portal.chain.models import Funding
    from portal.extensions import db
    from portal.jobs.models import Job

    req = db.session.get(ApprovalRequest, request_id)
    decisions = db.session.execute(
        select(ApprovalDecision.user_id, ApprovalDecision.decision).where(
            ApprovalDecision.request_id == request_id
        )
    ).all()
    fundings = db.session.scalar(
        select(func.count()).select_from(Funding).where(Funding.project_id == req.project_id)
    )
    jobs = db.session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.kind == "chain.fund", Job.project_id == req.project_id)
    )
    return {
        "status": req.status,
        "approvals": req.approvals,
        "decisions": sorted(decisions),
        "fundings": fundings,
        "jobs": jobs,
    }


def _decide(app, request_id: int, user_id: int, action: str, go) -> str:
    """One person's decision in a thread's own session: "ok" or the refusal's message."""
    from portal.accounts.models import User
    from portal.approvals import services as approvals
    from portal.approvals.models import ApprovalRequest
    from portal.errors import DomainError
    from portal.extensions import db

    def act():
        db.session.connection()
        req = db.session.get(ApprovalRequest, request_id)
        user = db.session.get(User, user_id)
        go()
        try:
            with db.session.begin_nested():
                if action == "approve":
                    approvals.approve(req, user, "race")
                elif action == "reject":
                    approvals.reject(req, user, "race")
                else:
                    approvals.cancel(req, user)
        except DomainError as exc:
            return str(exc)
        return "ok"

    return pg_race.in_own_session(app, act)


def _in_context(app, fn, *args):
    from portal.extensions import db

    with app.app_context():
        try:
            result = fn(*args)
            db.session.commit()
            return result
        finally:
            db.session.remove()


def _flush(app):
    from portal.jobs.broker import get_broker

    get_broker(app).flush_all()


@pytest.mark.parametrize("seed", SEEDS)
def test_many_approvers_at_once_run_the_action_once(app, seed):
    w = _in_context(app, _world, MOST)
    results = pg_race.race(
        MOST,
        lambda i, go: _decide(app, w["request_id"], w["approver_ids"][i], "approve", go),
        seed=seed,
    )
    _flush(app)
    assert results.count("ok") == 1, results
    assert all(r == "ok" or "executed now" in r for r in results), results
    state = _in_context(app, _state, w["request_id"])
    assert (state["status"], state["approvals"], state["fundings"], state["jobs"]) == (
        "executed",
        1,
        1,
        1,
    )
    assert len(state["decisions"]) == 1  # the losers' decisions rolled back with them


@pytest.mark.parametrize("seed", SEEDS)
def test_above_the_threshold_two_people_are_needed_and_counted_once(app, seed):
    w = _in_context(app, _world, MOST, 1_000)  # 50.00 > 10.00: two approvers
    results = pg_race.race(
        MOST,
        lambda i, go: _decide(app, w["request_id"], w["approver_ids"][i], "approve", go),
        seed=seed,
    )
    _flush(app)
    assert results.count("ok") == 2, results
    state = _in_context(app, _state, w["request_id"])
    assert (state["status"], state["approvals"], state["fundings"], state["jobs"]) == (
        "executed",
        2,
        1,
        1,
    )
    deciders = [u for u, _ in state["decisions"]]
    assert len(deciders) == len(set(deciders)) == 2 and w["asker_id"] not in deciders


@pytest.mark.parametrize("seed", SEEDS)
def test_one_person_clicking_in_many_tabs_counts_once(app, seed):
    w = _in_context(app, _world, 1, 1_000)
    me = w["approver_ids"][0]
    results = pg_race.race(
        MOST, lambda i, go: _decide(app, w["request_id"], me, "approve", go), seed=seed
    )
    assert results.count("ok") == 1, results
    assert all(r == "ok" or "already decided" in r for r in results), results
    state = _in_context(app, _state, w["request_id"])
    # Still waiting for a second, different person: one person never counts twice.
    assert (state["status"], state["approvals"], state["fundings"]) == ("pending", 1, 0)
    assert state["decisions"] == [(me, "approve")]


@pytest.mark.parametrize("seed", SEEDS)
def test_approve_reject_and_cancel_at_once_end_in_one_outcome(app, seed):
    w = _in_context(app, _world, 4)
    plan = [
        (w["approver_ids"][0], "approve"),
        (w["approver_ids"][1], "reject"),
        (w["asker_id"], "cancel"),
        (w["approver_ids"][2], "approve"),
        (w["approver_ids"][3], "reject"),
    ]
    results = pg_race.race(
        len(plan),
        lambda i, go: _decide(app, w["request_id"], plan[i][0], plan[i][1], go),
        seed=seed,
    )
    _flush(app)
    assert results.count("ok") == 1, results
    winner = plan[results.index("ok")][1]
    state = _in_context(app, _state, w["request_id"])
    expected = {"approve": "executed", "reject": "rejected", "cancel": "cancelled"}[winner]
    assert state["status"] == expected
    assert state["fundings"] == state["jobs"] == (1 if winner == "approve" else 0)
    assert len(state["decisions"]) == (0 if winner == "cancel" else 1)


def test_two_approvers_clicking_through_the_pages_at_once(app):
    """The same race through the decide route: one 302, the other a 409 that says why."""
    w = _in_context(app, _world, 2)

    def click(i: int, go):
        client = app.test_client()
        reply = client.post("/login", data={"email": w["approver_emails"][i], "password": PASSWORD})
        assert reply.status_code == 302
        rid = w["request_id"]
        go()
        answer = client.post(
            f"/approvals/{rid}/decide", data={f"r{rid}-decision": "approve", f"r{rid}-reason": ""}
        )
        return answer.status_code, answer.get_data(as_text=True)

    results = pg_race.race(2, click, seed=5)
    _flush(app)
    codes = sorted(code for code, _ in results)
    assert codes == [302, 409], codes
    loser = next(body for code, body in results if code == 409)
    assert "executed now" in loser
    state = _in_context(app, _state, w["request_id"])
    assert (state["status"], state["fundings"], state["jobs"]) == ("executed", 1, 1)
