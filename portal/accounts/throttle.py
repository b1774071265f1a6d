"""Sign-in throttling: per account-and-address and per address, never a lock on the account.

A hard lock let anyone keep any account locked by failing on purpose, and a locked account
answered faster than an unknown one. Here tries are counted in the rate limiter's storage (Redis
in production, so every web process sees the same counts), keyed on the address the attempt
comes from: someone failing elsewhere never stops the account's owner signing in from their own
address. Past a limit the answer is 429 with Retry-After; nothing sleeps.

The counts do not depend on whether the email belongs to an account, so a throttled answer says
nothing about which emails exist. Keys hold a keyed hash of the email, not the email.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
import unicodedata

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

from portal import crypto
from portal.extensions import limiter
from portal.i18n.formatting import number

_ACCOUNT_SCOPE = "login-account"
_ADDRESS_SCOPE = "login-address"
_CODE_SCOPE = "two-factor-code"


def normalise_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).strip().casefold()


def client_network() -> str:
    """The attempt's source: the IPv4 address, or the /64 an IPv6 host gets as one allocation."""
    raw = get_remote_address() or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _account_key(email: str) -> str:
    digest = hmac.new(
        crypto.derived_key("index"),
        b"sign-in throttle\x00" + normalise_email(email).encode(),
        hashlib.sha256,
    )
    return digest.hexdigest()[:32]


def _buckets(email: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
    cfg = current_app.config
    network = client_network()
    return [
        (parse(cfg["LOGIN_ACCOUNT_LIMIT"]), (_ACCOUNT_SCOPE, _account_key(email), network)),
        (parse(cfg["LOGIN_IP_LIMIT"]), (_ADDRESS_SCOPE, network)),
    ]


def _seconds_until_reset(item: RateLimitItem, ids: tuple[str, ...]) -> int:
    reset_at = limiter.limiter.get_window_stats(item, *ids).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def login_rate_limit() -> str:
    """Every POST of a sign-in step from one address (the password, the code): a flood guard."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def wait_words(seconds: int) -> str:
    minutes = -(-seconds // 60)
    if seconds <= 60:
        return _("a minute")
    return ngettext("%(n)s minute", "%(n)s minutes", minutes, n=number(minutes))


def _enabled() -> bool:
    # This app's own setting: with rate limits off, Flask-Limiter builds no store for it.
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def consume(email: str) -> int | None:
    """Count one attempt; the seconds to wait if a limit is passed, else None.

    The attempt is counted before the password is checked, in one atomic step per bucket, so
    parallel guesses cannot slip past the limit between a check and a count.
    """
    if not _enabled():
        return None
    for item, ids in _buckets(email):
        if not limiter.limiter.hit(item, *ids):
            return _seconds_until_reset(item, ids)
    return None


def succeeded(email: str) -> None:
    """A right password from this address: its earlier typos for the account no longer count."""
    if not _enabled():
        return
    item, ids = _buckets(email)[0]
    limiter.limiter.clear(item, *ids)


def _code_bucket(user_id: int) -> tuple[RateLimitItem, tuple[str, ...]]:
    # Keyed on the account alone: only someone who has the password reaches the code step, and
    # guesses spread over many addresses must not each get a fresh allowance.
    return parse(current_app.config["TWO_FACTOR_CODE_LIMIT"]), (_CODE_SCOPE, str(user_id))


def consume_code(user_id: int) -> int | None:
    """Count one two-factor code attempt for the account; the seconds to wait if over the limit."""
    if not _enabled():
        return None
    item, ids = _code_bucket(user_id)
    if not limiter.limiter.hit(item, *ids):
        return _seconds_until_reset(item, ids)
    return None


def code_succeeded(user_id: int) -> None:
    if _enabled():
        item, ids = _code_bucket(user_id)
        limiter.limiter.clear(item, *ids)
