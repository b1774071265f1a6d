"""Four-eyes in tests: a second person approves what a test asked for through the pages.

Funding and starting a disbursement wait for someone other than the person who asked; a test
that funds or starts through the pages has this second person approve it, through the real
decide form, in a browser session of their own.
"""

from __future__ import annotations

from sqlalchemy import select


def decide(client, request_id: int, decision: str = "approve", reason: str = ""):
    """Post the decide form of one request, as the list page renders it (prefixed fields)."""
    page = client.get("/approvals")
    assert page.status_code == 200
    return client.post(
        f"/approvals/{request_id}/decide",
        data={f"r{request_id}-decision": decision, f"r{request_id}-reason": reason},
    )


def latest_pending(kind: str | None = None):
    from portal.approvals.models import PENDING, ApprovalRequest
    from portal.extensions import db

    query = select(ApprovalRequest).where(ApprovalRequest.status == PENDING)
    if kind:
        query = query.where(ApprovalRequest.kind == kind)
    return db.session.scalar(query.order_by(ApprovalRequest.id.desc()).limit(1))


class SecondApprover:
    """An admin other than the test's user, signed in on a client of their own."""

    def __init__(self, app, make_user, login):
        self._app, self._make_user, self._login = app, make_user, login
        self.user = None
        self.client = None

    def approve(self, kind: str | None = None, reason: str = "checked") -> int:
        """Approve the newest pending request (of ``kind``); returns its id."""
        if self.user is None:
            self.user = self._make_user("admin", name="Second Approver")
            self.client = self._app.test_client()
            self._login(self.client, self.user)
        found = latest_pending(kind)
        assert found is not None, "nothing is waiting for approval"
        answer = decide(self.client, found.id, "approve", reason)
        assert answer.status_code == 302, answer.data[:2000]
        return found.id
