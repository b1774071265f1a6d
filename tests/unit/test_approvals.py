"""Four-eyes on money: the rules of approval requests, through the services.

Who may decide, how many approvals a request needs, that the action runs exactly once with the
last approval (and not at all when it refuses), and that every step is audited. A generated
sequence of asks, approvals, rejections and cancels by generated people is checked against a
plain model of the rules.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from portal.approvals import services as approvals
from portal.approvals.models import ApprovalDecision, ApprovalRequest, ApprovalThreshold
from portal.audit.models import AuditEntry
from portal.chain import funding_approval, setup
from portal.chain.models import Funding
from portal.disbursements import services as disbursements
from portal.disbursements import start_approval
from portal.disbursements.models import Disbursement
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs.models import Job
from tests.support import chain


@pytest.fixture
def world(app, make_user, make_project, worker):
    """A deployed project; a finance user who asks; two approvers; an approver elsewhere."""
    asker = make_user("finance", name="Asker")
    first = make_user("finance approver", name="First Approver")
    second = make_user("finance approver", name="Second Approver")
    outsider = make_user("finance approver", name="Outsider")
    viewer = make_user("viewer", name="Viewer")
    project = make_project(status="active", members=[asker, first, second, viewer])
    make_project(name="Elsewhere", status="active", members=[outsider])
    db.session.commit()
    chain.deploy(worker, project)
    return {
        "project": project,
        "asker": asker,
        "first": first,
        "second": second,
        "outsider": outsider,
        "viewer": viewer,
    }


def _fundings() -> int:
    return db.session.scalar(select(func.count()).select_from(Funding))


def _ask_funding(world, amount=10_000, note="grant"):
    return funding_approval.ask(world["project"], amount, note, world["asker"].id)


def test_nothing_is_minted_until_someone_else_approves(world, worker):
    asked = _ask_funding(world)
    assert (asked.status, asked.approvals_needed, _fundings()) == ("pending", 1, 0)
    with pytest.raises(Forbidden, match="yourself"):
        approvals.approve(asked, world["asker"])
    approvals.approve(asked, world["first"], "signed grant")
    assert asked.status == "executed" and asked.executed_at is not None
    funding = db.session.get(Funding, asked.result_id)
    assert (funding.amount, funding.note, funding.created_by_id) == (
        10_000,
        "grant",
        world["asker"].id,
    )
    db.session.commit()
    worker.run("contracts")
    assert setup.state(world["project"].id).funded == 10_000


def test_deciding_needs_the_permission_and_the_project(world):
    asked = _ask_funding(world)
    with pytest.raises(Forbidden):
        approvals.approve(asked, world["viewer"])
    with pytest.raises(NotFound):  # another project's approver does not even see it
        approvals.approve(asked, world["outsider"])
    with pytest.raises(NotFound):
        approvals.reject(asked, world["outsider"], "no")
    assert (asked.status, _fundings()) == ("pending", 0)


def test_above_the_threshold_two_different_people_approve(world):
    approvals.set_threshold(world["project"], 5_000, world["asker"].id)
    small = _ask_funding(world, amount=5_000)
    big = _ask_funding(world, amount=5_001)
    assert (small.approvals_needed, big.approvals_needed) == (1, 2)
    approvals.approve(big, world["first"])
    assert (big.status, big.approvals, _fundings()) == ("pending", 1, 0)
    with pytest.raises(Conflict, match="already decided"):
        approvals.approve(big, world["first"])
    assert big.approvals == 1
    approvals.approve(big, world["second"])
    assert (big.status, big.approvals, _fundings()) == ("executed", 2, 1)
    with pytest.raises(Conflict, match="executed now"):
        approvals.approve(big, world["second"])


def test_a_rejection_needs_a_reason_and_ends_the_request(world):
    asked = _ask_funding(world)
    with pytest.raises(ValidationFailed):
        approvals.reject(asked, world["first"], "   ")
    approvals.reject(asked, world["first"], "No grant agreement yet")
    assert asked.status == "rejected" and _fundings() == 0
    with pytest.raises(Conflict, match="rejected now"):
        approvals.approve(asked, world["second"])
    decision = db.session.scalar(select(ApprovalDecision))
    assert (decision.decision, decision.reason) == ("reject", "No grant agreement yet")


def test_only_the_requester_cancels_and_only_while_pending(world):
    asked = _ask_funding(world)
    with pytest.raises(Forbidden):
        approvals.cancel(asked, world["first"])
    approvals.cancel(asked, world["asker"])
    assert asked.status == "cancelled"
    with pytest.raises(Conflict):
        approvals.cancel(asked, world["asker"])
    with pytest.raises(Conflict):
        approvals.approve(asked, world["first"])
    assert _fundings() == 0


def test_the_schema_refuses_a_decision_on_ones_own_request(world):
    from sqlalchemy.exc import IntegrityError

    asked = _ask_funding(world)
    db.session.add(
        ApprovalDecision(
            request_id=asked.id,
            user_id=world["asker"].id,
            requested_by_id=world["asker"].id,
            decision="approve",
            reason="",
        )
    )
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_a_disbursement_starts_with_its_approval_and_once(world, worker, make_beneficiary):
    project = world["project"]
    people = [make_beneficiary(project=project) for _ in range(3)]
    chain.fund(worker, project, "100")
    d, _ = disbursements.create(
        project,
        title="Nov",
        amount=1_000,
        group_id=None,
        beneficiary_ids=[p.id for p in people],
        batch_size=10,
        user_id=world["asker"].id,
    )
    asked = start_approval.ask(d, world["asker"].id)
    with pytest.raises(Conflict, match="already waiting"):
        start_approval.ask(d, world["asker"].id)
    assert d.status == "draft"
    approvals.approve(asked, world["first"])
    assert (asked.status, d.status, asked.open_key) == ("executed", "running", None)
    with pytest.raises(Conflict, match="already been started"):
        start_approval.ask(d, world["asker"].id)
    db.session.commit()
    worker.run("contracts")
    assert db.session.get(Disbursement, d.id).status == "completed"


def test_an_action_that_refuses_refuses_the_approval_and_keeps_nothing(
    world, worker, make_beneficiary
):
    project = world["project"]
    people = [make_beneficiary(project=project) for _ in range(2)]
    chain.fund(worker, project, "10")
    d, _ = disbursements.create(
        project,
        title="Nov",
        amount=500,
        group_id=None,
        beneficiary_ids=[p.id for p in people],
        batch_size=10,
        user_id=None,
    )
    asked = start_approval.ask(d, world["asker"].id)
    db.session.commit()
    # Meanwhile another disbursement takes the funds: the start can no longer be covered.
    other, _ = disbursements.create(
        project,
        title="Other",
        amount=500,
        group_id=None,
        beneficiary_ids=[people[0].id],
        batch_size=10,
        user_id=None,
    )
    disbursements.start(other, None)
    db.session.commit()
    jobs_before = db.session.scalar(select(func.count()).select_from(Job))
    with pytest.raises(Conflict, match="fund the project or reduce the amount"):
        approvals.approve(asked, world["first"])
    db.session.rollback()
    db.session.expire_all()
    asked = db.session.get(ApprovalRequest, asked.id)
    assert (asked.status, asked.approvals, asked.decisions) == ("pending", 0, [])
    assert db.session.get(Disbursement, d.id).status == "draft"
    assert db.session.scalar(select(func.count()).select_from(Job)) == jobs_before


def test_every_step_is_audited_with_its_reason(world):
    approvals.set_threshold(world["project"], 1, world["asker"].id)
    asked = _ask_funding(world)
    approvals.approve(asked, world["first"], "looks right")
    approvals.reject(asked, world["second"], "Wrong grant")
    rejected_later = _ask_funding(world)
    approvals.cancel(rejected_later, world["asker"])
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action.like("approval.%")).order_by(AuditEntry.seq)
    ).all()
    actions = [e.action for e in entries]
    assert actions == [
        "approval.threshold_changed",
        "approval.requested",
        "approval.approved_once",
        "approval.rejected",
        "approval.requested",
        "approval.cancelled",
    ]
    text = " ".join(e.data for e in entries)
    assert "looks right" in text and "Wrong grant" in text


def test_waiting_for_lists_what_the_user_may_decide_now(world):
    approvals.set_threshold(world["project"], 1, None)
    asked = _ask_funding(world)
    first, second = world["first"], world["second"]
    ids = lambda user: [r.id for r in db.session.scalars(approvals.waiting_for(user))]  # noqa: E731
    assert ids(first) == [asked.id] and ids(second) == [asked.id]
    assert ids(world["asker"]) == [] and ids(world["outsider"]) == [] and ids(world["viewer"]) == []
    approvals.approve(asked, first)
    assert ids(first) == [] and ids(second) == [asked.id]
    assert approvals.waiting_count(second) == 1
    names = approvals.possible_approvers(asked)
    assert "Second Approver" in names
    assert "Asker" not in names and "First Approver" not in names and "Outsider" not in names


# --------------------------------------------------------------------------- generated

ACTORS = ("asker", "first", "second", "viewer", "outsider")
STEP = st.one_of(
    st.tuples(st.just("ask"), st.integers(1, 3), st.sampled_from(ACTORS[:3])),
    st.tuples(st.just("approve"), st.integers(0, 5), st.sampled_from(ACTORS)),
    st.tuples(st.just("reject"), st.integers(0, 5), st.sampled_from(ACTORS)),
    st.tuples(st.just("cancel"), st.integers(0, 5), st.sampled_from(ACTORS)),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=14))
def test_generated_sequences_follow_the_rules(world, steps):
    """Whatever happens, in whatever order: a request is executed exactly when its needed
    count of distinct non-requesters approved it first, and each executed funding minted once."""
    db.session.execute(delete(ApprovalDecision))
    db.session.execute(delete(ApprovalRequest))
    db.session.execute(delete(Funding))
    db.session.execute(delete(ApprovalThreshold))
    approvals.set_threshold(world["project"], 2, None)  # above 2 base units: two approvers
    allowed = {"first", "second"}
    model: dict[int, dict] = {}
    made: list[int] = []
    for action, arg, who in steps:
        user = world[who]
        if action == "ask":
            req = funding_approval.ask(world["project"], arg, "", user.id)
            made.append(req.id)
            model[req.id] = {"by": who, "status": "pending", "ok": set(), "needed": 1 + (arg > 2)}
            continue
        if not made:
            continue
        rid = made[arg % len(made)]
        req, m = db.session.get(ApprovalRequest, rid), model[rid]
        try:
            with db.session.begin_nested():
                if action == "approve":
                    approvals.approve(req, user)
                elif action == "reject":
                    approvals.reject(req, user, "no")
                else:
                    approvals.cancel(req, user)
        except (Conflict, Forbidden, NotFound):
            ok = False
        else:
            ok = True
        # What the rules say should have happened:
        if action == "cancel":
            expected = m["status"] == "pending" and who == m["by"]
            if expected:
                m["status"] = "cancelled"
        else:
            expected = (
                m["status"] == "pending"
                and who in allowed
                and who != m["by"]
                and who not in m["ok"]
            )
            if expected and action == "reject":
                m["status"] = "rejected"
            elif expected:
                m["ok"].add(who)
                if len(m["ok"]) == m["needed"]:
                    m["status"] = "executed"
        assert ok == expected, (action, who, m)
        db.session.expire_all()
    for rid, m in model.items():
        req = db.session.get(ApprovalRequest, rid)
        assert req.status == m["status"]
        approvers = {d.user_id for d in req.decisions if d.decision == "approve"}
        assert req.approvals == len(approvers) == len(m["ok"])
        assert req.requested_by_id not in {d.user_id for d in req.decisions}
        mints = db.session.scalar(
            select(func.count()).select_from(Funding).where(Funding.id == req.result_id)
        )
        assert mints == (1 if m["status"] == "executed" else 0)
    executed = sum(1 for m in model.values() if m["status"] == "executed")
    assert _fundings() == executed
    db.session.rollback()


def test_the_demo_funds_and_allocates_through_a_second_approver(app):
    """``seed-demo`` stays one command: the demo admin asks, the demo approver approves."""
    from portal.accounts.models import User
    from portal.demo import ADMIN_EMAIL, APPROVER_EMAIL, seed_demo

    accounts = seed_demo(count=12)
    db.session.commit()
    assert set(accounts) == {ADMIN_EMAIL, APPROVER_EMAIL}
    admin = db.session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    approver = db.session.scalar(select(User).where(User.email == APPROVER_EMAIL))
    assert approver.role.name == "finance approver" and approver.id != admin.id
    # The demo's cash-outs ask too (tests/unit/settlements/test_demo.py); these two come first.
    done = db.session.scalars(
        select(ApprovalRequest)
        .where(ApprovalRequest.kind.in_(("funding", "disbursement_start")))
        .order_by(ApprovalRequest.id)
    ).all()
    assert [(r.kind, r.status, r.requested_by_id) for r in done] == [
        ("funding", "executed", admin.id),
        ("disbursement_start", "executed", admin.id),
    ]
    assert {d.user_id for r in done for d in r.decisions} == {approver.id}
    project_id = done[0].project_id
    assert setup.state(project_id).funded == 10_000_000
    assert db.session.get(Disbursement, done[1].subject_id).status == "completed"
    assert seed_demo() is None  # once
