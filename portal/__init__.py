"""The aid distribution portal: ``create_app`` builds the Flask app for the web or a worker."""

from __future__ import annotations

import logging
import os

from flask import Flask

from config import BASE_DIR, Config, config_from_env

log = logging.getLogger(__name__)


class MissingSecrets(RuntimeError):
    pass


def _load_secrets(app: Flask) -> None:
    missing = [name for name in app.config.get("REQUIRED", ()) if not os.environ.get(name)]
    missing += [
        " or ".join(group)
        for group in app.config.get("REQUIRED_ONE_OF", ())
        if not any(os.environ.get(name) for name in group)
    ]
    if missing:
        raise MissingSecrets(
            "Production needs these environment variables, which are not set: "
            + ", ".join(missing)
            + ". See README.md, 'Production'."
        )
    if not app.config.get("SECRET_KEY") or not app.config.get("PII_KEY"):
        from portal.embedded import load_or_create_secrets

        generated = load_or_create_secrets(app.config["INSTANCE_DIR"])
        for key in ("SECRET_KEY", "PII_KEY"):
            app.config[key] = app.config.get(key) or generated[key]


def _configure_redis(app: Flask) -> None:
    if app.config["BROKER"] == "redis" and not app.config.get("REDIS_URL"):
        from portal.embedded import start_redis

        app.config["REDIS_URL"] = start_redis(app.config["INSTANCE_DIR"])
    if app.config["BROKER"] == "redis":
        app.config.setdefault("SOCKETIO_MESSAGE_QUEUE", app.config["REDIS_URL"])
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        url = app.config.get("REDIS_URL") or ""
        shared = url.startswith(("redis://", "rediss://"))
        app.config["RATELIMIT_STORAGE_URI"] = url if shared else "memory://"


def create_app(
    config_class: type[Config] | None = None, *, role: str = "web", **overrides
) -> Flask:
    """Build the app. ``role`` is "web" (serves pages and sockets) or "worker" (runs jobs)."""
    from portal import crypto, db_guard, db_pool, payloads, realtime, request_load
    from portal.extensions import babel, csrf, db, limiter, login_manager, migrate, socketio
    from portal.jobs.broker import init_broker
    from portal.transactions import PortalFlask

    app = PortalFlask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
        instance_path=str((config_class or config_from_env()).INSTANCE_DIR),
    )
    app.config.from_object(config_class or config_from_env())
    app.config.update(overrides)
    app.config["ROLE"] = role
    os.makedirs(app.config["INSTANCE_DIR"], exist_ok=True)

    _load_secrets(app)
    _configure_redis(app)
    crypto.configure(app.config["PII_KEY"])

    db_pool.configure(app)
    db.init_app(app)
    db_guard.install(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    # Flask-Limiter keeps "enabled" on its one shared object and takes the last app's value as
    # the default for the next: every app states its own, so one app that turns limits off
    # (a fuzz test) cannot leave the next one on a stale store.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
    from portal.i18n.catalogs import ensure_compiled
    from portal.i18n.selection import choose_now, select_locale

    ensure_compiled(BASE_DIR / "translations")
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(BASE_DIR / "translations"),
    )
    app.before_request(choose_now)
    request_load.init_app(app)
    init_broker(app)
    if role == "web":
        from portal import serving

        app.config["SOCKETIO_ASYNC_MODE"] = serving.async_mode(app.config["SOCKETIO_ASYNC_MODE"])
        if app.config["SOCKETIO_ASYNC_MODE"] == "gevent":
            from portal.cooperative import refuse_if_blocking

            # After db.init_app: the engine has imported its driver, so what it chose is known.
            refuse_if_blocking(app.config["SQLALCHEMY_DATABASE_URI"])
        # Always named: Flask-SocketIO keeps init_app's options on the one extension object, so
        # an app without a queue would otherwise inherit the previous app's Redis manager.
        options = {"client_manager": None}
        if app.config.get("SOCKETIO_MESSAGE_QUEUE"):
            options["client_manager"] = realtime.client_manager(
                app.config["SOCKETIO_MESSAGE_QUEUE"], app.config["SOCKETIO_CHANNEL"]
            )
        socketio.init_app(
            app,
            async_mode=app.config["SOCKETIO_ASYNC_MODE"],
            logger=False,
            engineio_logger=False,
            **payloads.socket_options(),
            **options,
        )
        payloads.guard_socket_server(app, socketio.server)
        realtime.register_handlers(socketio)
    else:
        realtime.make_worker_emitter(app)

    from portal import cli, models, security, transactions, web

    models.import_all()
    transactions.init_app(app)
    security.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    _connect_listeners()
    return app


def _connect_listeners() -> None:
    from portal.accounts import listeners as account_listeners
    from portal.approvals import kinds as approval_kinds
    from portal.audit import listeners as audit_listeners
    from portal.chain import settlement as chain_settlement
    from portal.chain import setup as chain_setup
    from portal.chain import vendors as chain_vendors
    from portal.dashboard import live as dashboard_live
    from portal.disbursements import services as disbursements
    from portal.redemptions import listeners as redemption_listeners
    from portal.settlements import services as settlements
    from portal.twofactor import listeners as twofactor_listeners
    from portal.vendor_portal import listeners as vendor_portal_listeners
    from portal.vendors import listeners as vendor_listeners

    audit_listeners.connect()
    approval_kinds.load()
    account_listeners.connect()
    vendor_listeners.connect()
    chain_setup.connect()
    chain_vendors.connect()
    chain_settlement.connect()
    disbursements.connect()
    dashboard_live.connect()
    redemption_listeners.connect()
    vendor_portal_listeners.connect()
    settlements.connect()
    twofactor_listeners.connect()
