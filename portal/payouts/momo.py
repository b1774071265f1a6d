"""The mobile-money client: an API shaped like MTN MoMo's Disbursement product.

- ``POST /disbursement/token/`` with basic auth (API user and key) and the subscription key
  returns ``{"access_token", "expires_in"}``;
- ``POST /disbursement/v1_0/transfer`` with ``X-Reference-Id`` (a UUID the portal chooses, the
  payout's reference), ``X-Target-Environment``, ``X-Callback-Url`` and the bearer token answers
  202; the same reference again answers 409, which means the first request was accepted;
- ``GET /disbursement/v1_0/transfer/{reference}`` answers the status: PENDING, SUCCESSFUL or
  FAILED with a reason.

Every request goes through ``portal.outbound``; the one host allowed is the base URL's. Errors
name the step and the HTTP status, never the payee's number or the keys.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _

from portal import outbound
from portal.settings import services as settings

BASE_URL = "momo_base_url"
CALLBACK_BASE_URL = "momo_callback_base_url"
TARGET_ENVIRONMENT = "momo_target_environment"
API_USER = "momo_api_user"
API_KEY = "momo_api_key"
SUBSCRIPTION_KEY = "momo_subscription_key"
PLAIN = (BASE_URL, CALLBACK_BASE_URL, TARGET_ENVIRONMENT)
SECRET = (API_USER, API_KEY, SUBSCRIPTION_KEY)

settings.register(BASE_URL, "Mobile-money API base URL (its host is the only one the keys go to)")
settings.register(CALLBACK_BASE_URL, "This portal's public base URL, for the provider's callbacks")
settings.register(TARGET_ENVIRONMENT, "The provider's target environment (sandbox, mtnuganda…)")
settings.register(API_USER, "Mobile-money API user", secret=True)
settings.register(API_KEY, "Mobile-money API key", secret=True)
settings.register(SUBSCRIPTION_KEY, "Mobile-money subscription key", secret=True)

PENDING, SUCCESSFUL, FAILED = "PENDING", "SUCCESSFUL", "FAILED"
MAX_REPLY_BYTES = 64 * 1024
_TRANSIENT = {408, 425, 429}


class MomoError(Exception):
    """A request failed. ``permanent``: sending it again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class MomoConfig:
    base_url: str
    callback_base_url: str
    target_environment: str
    api_user: str
    api_key: str
    subscription_key: str
    timeout: float

    @property
    def complete(self) -> bool:
        return all((self.base_url, self.api_user, self.api_key, self.subscription_key))


@dataclass(frozen=True)
class TransferStatus:
    status: str  # PENDING, SUCCESSFUL, FAILED
    reason: str = ""
    amount: str = ""
    currency: str = ""


def load_config() -> MomoConfig:
    return MomoConfig(
        base_url=(settings.get(BASE_URL) or "").rstrip("/"),
        callback_base_url=(settings.get(CALLBACK_BASE_URL) or "").rstrip("/"),
        target_environment=settings.get(TARGET_ENVIRONMENT) or "sandbox",
        api_user=settings.get_secret(API_USER),
        api_key=settings.get_secret(API_KEY),
        subscription_key=settings.get_secret(SUBSCRIPTION_KEY),
        timeout=float(current_app.config.get("MOMO_TIMEOUT_SECONDS") or 15),
    )


def check_base_url(url: str) -> str:
    """The base URL as stored; ValueError with what is wrong."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(_("Enter a URL starting with https://."))
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(_("The URL may not carry a user name, password, query or fragment."))
    try:
        outbound.canonical_host(parts.hostname)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except (outbound.Refused, ValueError) as exc:
        raise ValueError(str(exc) or _("Not a usable host.")) from None
    return url


def policy(config: MomoConfig) -> outbound.Policy:
    parts = urlsplit(config.base_url)
    port = parts.port or outbound.DEFAULT_PORTS.get(parts.scheme, 443)
    host = outbound.canonical_host(parts.hostname or "")
    shown = f"[{host}]" if ":" in host else host
    return outbound.policy_from_config(
        "mobile money",
        current_app.config,
        [f"{shown}:{port}"],
        connect_timeout=min(5.0, config.timeout),
        read_timeout=config.timeout,
        total_timeout=2 * config.timeout,
        max_bytes=MAX_REPLY_BYTES,
    )


# Tokens live an hour; one per process and credentials, renewed a minute before they expire.
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class MomoClient:
    def __init__(self, config: MomoConfig | None = None):
        self.config = config or load_config()
        if not self.config.complete:
            raise MomoError(
                "Mobile money is not configured: set the base URL and the keys on the payouts "
                "settings page.",
                permanent=True,
            )
        self.policy = policy(self.config)

    # -- plumbing --------------------------------------------------------------------------

    def _request(self, step: str, method: str, path: str, headers: dict, body=None):
        raw = None if body is None else json.dumps(body).encode()
        if raw is not None:
            headers = {**headers, "Content-Type": "application/json"}
        try:
            return outbound.request(
                method, self.config.base_url + path, self.policy, headers=headers, body=raw
            )
        except outbound.Refused as exc:
            raise MomoError(
                f"{step}: the provider's address is refused ({exc})", permanent=True
            ) from None
        except outbound.TimedOut:
            raise MomoError(f"{step}: the provider did not answer in time") from None
        except outbound.Failed as exc:
            raise MomoError(f"{step}: {type(exc).__name__} talking to the provider") from None

    def _fail(self, step: str, reply: outbound.Reply) -> MomoError:
        transient = reply.status >= 500 or reply.status in _TRANSIENT
        return MomoError(f"{step}: the provider answered {reply.status}", permanent=not transient)

    def token(self, *, fresh: bool = False) -> str:
        key = (self.config.base_url, self.config.api_user)
        with _tokens_lock:
            found = _tokens.get(key)
            if found and not fresh and found[1] > time.monotonic():
                return found[0]
        basic = base64.b64encode(f"{self.config.api_user}:{self.config.api_key}".encode())
        reply = self._request(
            "token",
            "POST",
            "/disbursement/token/",
            {
                "Authorization": "Basic " + basic.decode(),
                "Ocp-Apim-Subscription-Key": self.config.subscription_key,
            },
        )
        if reply.status != 200:
            raise self._fail("token", reply)
        try:
            body = reply.json()
            token, expires = str(body["access_token"]), int(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise MomoError("token: the provider's answer is not a token") from None
        with _tokens_lock:
            _tokens[key] = (token, time.monotonic() + max(expires - 60, 1))
        return token

    def _authorised(self, step: str, method: str, path: str, headers: dict, body=None):
        """One request with the bearer token; a 401 renews the token once."""
        for fresh in (False, True):
            sent = {
                **headers,
                "Authorization": "Bearer " + self.token(fresh=fresh),
                "X-Target-Environment": self.config.target_environment,
                "Ocp-Apim-Subscription-Key": self.config.subscription_key,
            }
            reply = self._request(step, method, path, sent, body)
            if reply.status != 401:
                return reply
        return reply

    # -- the API -----------------------------------------------------------------------------

    def callback_url(self, reference: str) -> str:
        return f"{self.config.callback_base_url}/api/payouts/momo/callback/{reference}"

    def transfer(self, reference: str, amount: str, currency: str, msisdn: str, note: str) -> str:
        """Ask for a transfer; "accepted" (202) or "duplicate" (409: accepted before)."""
        headers = {"X-Reference-Id": reference}
        if self.config.callback_base_url:
            headers["X-Callback-Url"] = self.callback_url(reference)
        body = {
            "amount": amount,
            "currency": currency,
            "externalId": reference,
            "payee": {"partyIdType": "MSISDN", "partyId": msisdn.lstrip("+")},
            "payerMessage": note[:160],
            "payeeNote": note[:160],
        }
        reply = self._authorised("transfer", "POST", "/disbursement/v1_0/transfer", headers, body)
        if reply.status == 202:
            return "accepted"
        if reply.status == 409:
            return "duplicate"
        raise self._fail("transfer", reply)

    def status(self, reference: str) -> TransferStatus | None:
        """The provider's status of the transfer; None when it does not know the reference."""
        reply = self._authorised("status", "GET", f"/disbursement/v1_0/transfer/{reference}", {})
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise self._fail("status", reply)
        try:
            body = reply.json()
            status = str(body["status"]).upper()
        except (ValueError, KeyError, TypeError):
            raise MomoError("status: the provider's answer has no status") from None
        if status not in (PENDING, SUCCESSFUL, FAILED):
            raise MomoError(f"status: unknown status {status[:20]!r}")
        reason = body.get("reason") or ""
        if isinstance(reason, dict):  # some versions answer {"code", "message"}
            reason = reason.get("code") or reason.get("message") or ""
        return TransferStatus(
            status,
            str(reason)[:200],
            str(body.get("amount") or ""),
            str(body.get("currency") or ""),
        )


def forget_tokens() -> None:
    """Drop cached tokens (the keys changed)."""
    with _tokens_lock:
        _tokens.clear()
