"""A draft changed or cancelled while someone approves its start, on PostgreSQL with real
concurrency: either the start wins (with the total that was asked for, and the change is
refused) or the change wins (the request is withdrawn and the approval refused); never a start
of something other than what was approved, never both, never a deadlock surfacing as an error."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.integration.test_races_postgres import _drafts
from tests.support import pg_race

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(pool_size=8, WTF_CSRF_ENABLED=False, CHAIN_EPHEMERAL=True) as app:
        yield app


def _ask(draft_id: int):
    """The draft's start asked for by its author; (request id, approver id)."""
    import secrets

    from portal.accounts import services as accounts
    from portal.disbursements import start_approval
    from portal.disbursements.models import Disbursement
    from portal.extensions import db

    draft = db.session.get(Disbursement, draft_id)
    asker = accounts.create_user(
        f"asker-{secrets.token_hex(4)}@example.org",
        "Asker",
        "a-long-pass-1x",
        accounts.role_by_name("admin"),
    )
    approver = accounts.create_user(
        f"approver-{secrets.token_hex(4)}@example.org",
        "Approver",
        "a-long-pass-1x",
        accounts.role_by_name("admin"),
    )
    request = start_approval.ask(draft, asker.id)
    db.session.commit()
    return request.id, approver.id


def _approve(app, request_id: int, approver_id: int, go) -> str:
    from portal.accounts.models import User
    from portal.approvals import services as approvals
    from portal.approvals.models import ApprovalRequest
    from portal.errors import DomainError
    from portal.extensions import db

    with app.app_context():
        try:
            db.session.connection()
            request = db.session.get(ApprovalRequest, request_id)
            user = db.session.get(User, approver_id)
            go()
            approvals.approve(request, user)
            db.session.commit()
            return "approved"
        except DomainError as exc:
            db.session.rollback()
            return f"refused: {exc}"
        finally:
            db.session.remove()


def _change(app, draft_id: int, how: str, go) -> str:
    from portal.disbursements import drafts
    from portal.disbursements.models import Disbursement
    from portal.errors import DomainError
    from portal.extensions import db

    with app.app_context():
        try:
            db.session.connection()
            draft = db.session.get(Disbursement, draft_id)
            people = _people(draft_id)
            go()
            if how == "cancel":
                drafts.cancel(draft, None)
            else:
                drafts.edit(
                    draft,
                    title="Changed",
                    amount=draft.amount_each * 2,
                    group_id=None,
                    beneficiary_ids=people,
                    batch_size=10,
                    user_id=None,
                )
            db.session.commit()
            return how
        except DomainError as exc:
            db.session.rollback()
            return f"refused: {exc}"
        finally:
            db.session.remove()


def _people(draft_id: int) -> list[int]:
    from portal.disbursements.models import DisbursementItem
    from portal.extensions import db

    return list(
        db.session.scalars(
            select(DisbursementItem.beneficiary_id).where(
                DisbursementItem.disbursement_id == draft_id
            )
        )
    )


@pytest.mark.parametrize("how", ["edit", "cancel"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_a_change_and_an_approval_at_once_never_start_what_was_not_approved(app, how, seed):
    from portal.approvals.models import ApprovalRequest
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job

    with app.app_context():
        project_id, (draft_id,), _ = _drafts([2_500], funded=10_000)
        request_id, approver_id = _ask(draft_id)
        asked_total = db.session.get(Disbursement, draft_id).total
        db.session.remove()

    results = pg_race.race(
        2,
        lambda i, go: (
            _approve(app, request_id, approver_id, go)
            if i == 0
            else _change(app, draft_id, how, go)
        ),
        seed=seed,
        what="a contender",
    )
    get_broker(app).flush_all()
    assert not any(isinstance(r, Exception) for r in results), results
    approved, changed = results
    with app.app_context():
        draft = db.session.get(Disbursement, draft_id)
        request = db.session.get(ApprovalRequest, request_id)
        jobs = db.session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.kind == "disbursement.batch", Job.project_id == project_id)
        )
        if approved == "approved":
            assert changed.startswith("refused: Only a draft"), results
            assert draft.status == "running" and draft.total == asked_total
            assert request.status == "executed" and jobs == 1
        else:
            assert changed == how, results
            assert request.status == "cancelled" and jobs == 0
            assert draft.status == ("cancelled" if how == "cancel" else "draft")
            if how == "edit":
                assert draft.total == 2 * asked_total
        db.session.remove()
