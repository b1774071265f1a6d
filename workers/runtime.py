"""Running workers: in the ``dramatiq`` command (production) or as threads of ``make run``."""

from __future__ import annotations

import logging
import threading

import dramatiq

from portal.extensions import db
from portal.jobs.broker import get_broker
from workers import actors
from workers.middleware import JobLifecycle

log = logging.getLogger(__name__)


def prepare(app) -> dramatiq.Broker:
    """Add the job middleware and declare the actors on the app's broker (once)."""
    broker = get_broker(app)
    if not any(isinstance(m, JobLifecycle) for m in broker.middleware):
        broker.add_middleware(JobLifecycle(app))
        actors.declare(broker)
    return broker


def start_worker(app, threads: int | None = None) -> dramatiq.Worker:
    broker = prepare(app)
    # A short worker timeout keeps the pick-up of the first message after idle fast.
    worker = dramatiq.Worker(
        broker, worker_threads=threads or app.config["WORKER_THREADS"], worker_timeout=100
    )
    worker.start()
    return worker


def start_sweeper(app, stop: threading.Event) -> threading.Thread:
    """Run the job sweeper every SWEEP_INTERVAL_SECONDS until ``stop`` is set."""
    from portal.comms.services import purge_expired as blank_expired_messages
    from portal.files.storage import purge_expired
    from portal.jobs.services import sweep
    from portal.payouts.sending import sweep as check_payouts
    from portal.vendor_portal.sweep import sweep as sweep_payments

    def loop():
        while not stop.wait(app.config["SWEEP_INTERVAL_SECONDS"]):
            with app.app_context():
                try:
                    report = sweep()
                    if report.resent or report.orphaned:
                        log.info("sweeper re-sent %s, recovered %s", report.resent, report.orphaned)
                    purged = purge_expired()
                    if purged:
                        log.info("deleted %s expired files", purged)
                    if blank_expired_messages():
                        db.session.commit()
                    expired, _ = sweep_payments()
                    if expired:
                        log.info("expired %s unused payment codes", expired)
                    if check_payouts():  # mobile-money payouts whose callback never came
                        db.session.commit()
                except Exception:
                    log.exception("job sweep failed")
                finally:
                    db.session.remove()
                _watch_chain(app)

    thread = threading.Thread(target=loop, name="job-sweeper", daemon=True)
    thread.start()
    return thread


def _watch_chain(app) -> None:
    """Re-check unfinal transactions, find deep rollbacks, fill nonce gaps (portal/chain/watch)."""
    from portal.chain import watch

    with app.app_context():
        try:
            report = watch.run()
            if any(report.values()):
                log.info("chain watch: %s", report)
        except Exception:
            log.exception("chain watch failed")
        finally:
            db.session.remove()
