"""Messages waiting for their provider's send slot do not hold up other jobs (the redemption
transfers, most of all), on Redis and PostgreSQL with a real Dramatiq worker.

Dramatiq hands a worker process's threads the messages it fetched in the order they arrived.
When a thread slept until its message's slot, a backlog of messages at the head of that order
drained at the provider's rate, and a job fetched behind them waited for all of their slots:
20 payment codes at 10 SMS/s held the transfers of the payments about 2 s. Now a slot further
off than ``COMMS_SLOT_HOLD_SECONDS`` is kept and the message's job waits in the broker's delay
queue (``lifecycle.RunLater``). The old behaviour is still what a long hold gives, which is the
contrast this test draws.
"""

from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import select

from tests.support import services as svc

pytestmark = pytest.mark.integration

NUMBER = "+9779841234567"
MESSAGES = 20
RATE = 3  # a slot every 0.33 s: 20 messages take 6.3 s to send
THREADS = 4  # Dramatiq prefetches twice as many messages of a queue as a process has threads


@pytest.mark.parametrize(("hold", "held_up"), [(0.2, False), (30.0, True)])
def test_a_job_behind_a_backlog_of_messages_waits_for_a_thread_not_for_their_slots(
    app_factory, pg_url, hold, held_up
):
    from portal.comms import services as comms
    from portal.comms.models import OutboxMessage
    from portal.extensions import db
    from portal.jobs import dispatch
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job, JobAttempt
    from workers.runtime import start_worker

    app = app_factory(
        pg_url,
        SMS_RATE_PER_SECOND=RATE,
        COMMS_SLOT_HOLD_SECONDS=hold,
        SMS_PROVIDER="outbox",
        # A schedule of this test's own in the shared Redis (keyed by the provider account).
        SMS_ACCOUNT=f"send-slots-{secrets.token_hex(4)}",
    )
    get_broker(app).flush_all()
    with app.app_context():
        ids = [comms.send_sms(NUMBER, f"Notice {k}", "notice").id for k in range(MESSAGES)]
        db.session.commit()
    worker = start_worker(app, threads=THREADS)
    try:
        time.sleep(0.5)  # the worker has fetched the first messages and is sending them
        with app.app_context():
            job_id = dispatch.enqueue("system.diagnostic", {}).id
            db.session.commit()

        def finished(job_ids):
            def check():
                with app.app_context():
                    rows = db.session.scalars(select(Job).where(Job.id.in_(job_ids))).all()
                    done = [j for j in rows if j.status in ("succeeded", "failed")]
                    db.session.remove()
                    return len(done) == len(job_ids) or None

            return check

        svc.wait_for(finished([job_id]), 30, interval=0.05, what="the diagnostic job")
        with app.app_context():
            job = db.session.get(Job, job_id)
            waited = (job.started_at - job.created_at).total_seconds()
            sms_jobs = db.session.scalars(
                select(OutboxMessage.job_id).where(OutboxMessage.id.in_(ids))
            ).all()
            db.session.remove()
        if held_up:
            # At least the prefetched messages ahead of it, each a slot after the other.
            assert waited > 1.0, waited
        else:
            assert waited < 0.6, waited
        svc.wait_for(finished(sms_jobs), 60, interval=0.1, what="the messages")
        with app.app_context():
            messages = db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.id.in_(ids))
            ).all()
            assert {(m.status, m.attempts) for m in messages} == {("sent", 1)}
            sent = sorted(m.sent_at for m in messages)
            # The provider's rate held: 20 sends over at least 19 intervals.
            assert (sent[-1] - sent[0]).total_seconds() >= (MESSAGES - 1) / RATE - 0.15
            jobs = db.session.scalars(select(Job).where(Job.id.in_(sms_jobs))).all()
            assert {(j.status, j.attempts) for j in jobs} == {("succeeded", 1)}
            attempts = db.session.scalars(
                select(JobAttempt.job_id).where(JobAttempt.job_id.in_(sms_jobs))
            ).all()
            assert sorted(attempts) == sorted(sms_jobs)  # one attempt row each
            db.session.remove()
    finally:
        worker.stop()
