"""SMS providers: the development outbox, and a Twilio-style HTTP API.

A provider gets a number and a text and returns the provider's message id. Errors name what went
wrong (timeout, HTTP status, the provider's numeric error code) and never the number or the text:
they end up in job errors, which staff read.

With each message the HTTP provider is given a ``StatusCallback`` URL under ``PUBLIC_BASE_URL``
that names the message's key, so its delivery receipts find the message (see
``portal.comms.receipts``). ``SMS_IDEMPOTENCY_HEADER``, when set, names the request header in
which the provider takes an idempotency key: the message's key goes there, and a send that was
interrupted may then be repeated safely (the provider answers the first message again).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from portal import outbound

OUTBOX, HTTP = "outbox", "http"
PROVIDERS = (OUTBOX, HTTP)
HTTP_SETTINGS = ("SMS_HTTP_URL", "SMS_ACCOUNT", "SMS_TOKEN", "SMS_FROM")
# Where the SMS provider posts its delivery receipts (``portal.comms.receipt_routes``).
RECEIPT_PATH = "/api/comms/receipts/sms"
# Statuses worth another try: the provider was busy or down, not the request wrong.
_TRANSIENT = {408, 425, 429}
# A provider's answer is a small JSON object; anything bigger is not read.
MAX_REPLY_BYTES = 64 * 1024


class ProviderError(Exception):
    """Sending failed. ``permanent``: the same request will fail again (do not retry).
    ``code``: the provider's error code, for the delivery log. ``unknown``: the request may
    have reached the provider (it timed out waiting for the answer)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        code: str | None = None,
        unknown: bool = False,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.unknown = unknown


class ProviderConfigError(RuntimeError):
    """The SMS settings cannot work; raised when the app starts."""


class OutboxProvider:
    """Sends nothing: the stored message is what the development outbox page shows."""

    name = OUTBOX
    idempotent = True  # nothing leaves the portal: trying again cannot send twice

    def send(self, to: str, body: str, *, key: str | None = None) -> str | None:
        return None


class HttpSmsProvider:
    """POSTs ``To``, ``From`` and ``Body`` as a form with basic auth, as Twilio's API takes them.

    ``url`` may contain ``{account}``, filled with the account id.
    """

    name = HTTP

    def __init__(
        self,
        url: str,
        account: str,
        token: str,
        sender: str,
        *,
        policy: outbound.Policy,
        callback_base: str | None = None,
        idempotency_header: str | None = None,
    ):
        self.url = url.replace("{account}", account)
        self.account = account
        self.token = token
        self.sender = sender
        self.policy = policy
        self.callback_base = (callback_base or "").rstrip("/") or None
        self.idempotency_header = idempotency_header or None
        self.idempotent = bool(self.idempotency_header)

    def callback_url(self, key: str) -> str | None:
        if not self.callback_base:
            return None
        return f"{self.callback_base}{RECEIPT_PATH}/{key}"

    def send(self, to: str, body: str, *, key: str | None = None) -> str | None:
        credentials = base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        form = {"To": to, "From": self.sender, "Body": body}
        headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if key:
            callback = self.callback_url(key)
            if callback:
                form["StatusCallback"] = callback
            if self.idempotency_header:
                headers[self.idempotency_header] = key
        try:
            reply = outbound.request(
                "POST", self.url, self.policy, headers=headers, body=urlencode(form).encode()
            )
        except outbound.Refused as exc:
            raise ProviderError(f"Not sent to the SMS provider: {exc}", permanent=True) from None
        except outbound.TimedOut:
            raise ProviderError("The SMS provider did not answer in time.", unknown=True) from None
        except outbound.Failed as exc:
            raise ProviderError(f"The SMS provider could not be reached: {exc}") from None
        if reply.status >= 300:
            code = reply_json(reply).get("code")
            raise ProviderError(
                f"The SMS provider refused the message: HTTP {reply.status}{_error_code(reply)}.",
                permanent=reply.status < 500 and reply.status not in _TRANSIENT,
                code=str(code) if isinstance(code, int) else None,
            )
        return _message_id(reply)


def reply_json(reply: outbound.Reply) -> dict:
    """The reply's JSON object, or an empty one (a provider's error page is often HTML)."""
    try:
        found = reply.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _error_code(reply: outbound.Reply) -> str:
    # Only the numeric code: providers' error texts often quote the number they refused.
    code = reply_json(reply).get("code")
    return f" (provider code {code})" if isinstance(code, int) else ""


def _message_id(reply: outbound.Reply) -> str | None:
    found = reply_json(reply)
    for key in ("sid", "id", "message_id"):
        value = found.get(key)
        if isinstance(value, str | int) and str(value):
            return str(value)[:80]
    return None


def api_policy(label: str, setting: str, url: str, config: Mapping, timeout: float):
    """A provider API's host and port (from its URL) is the one place its token may go."""
    parts = urlsplit(url)
    try:
        port = parts.port or outbound.DEFAULT_PORTS.get(parts.scheme.lower(), 443)
        host = outbound.canonical_host(parts.hostname or "")
    except (ValueError, outbound.Refused):
        raise ProviderConfigError(f"{setting} is not a usable URL: {url!r}.") from None
    shown = f"[{host}]" if ":" in host else host
    return outbound.policy_from_config(
        label,
        config,
        [f"{shown}:{port}"],
        connect_timeout=min(5.0, timeout),
        read_timeout=timeout,
        total_timeout=2 * timeout,
        max_bytes=MAX_REPLY_BYTES,
    )


def sms_policy(config: Mapping) -> outbound.Policy:
    url = (config.get("SMS_HTTP_URL") or "").replace("{account}", config.get("SMS_ACCOUNT") or "")
    timeout = float(config.get("SMS_TIMEOUT_SECONDS") or 10)
    return api_policy("SMS provider", "SMS_HTTP_URL", url, config, timeout)


def check_config(config: Mapping) -> None:
    """Refuse settings that cannot work, naming what to set (called when the app starts)."""
    name = config.get("SMS_PROVIDER") or OUTBOX
    if name not in PROVIDERS:
        raise ProviderConfigError(
            f"SMS_PROVIDER must be one of {', '.join(PROVIDERS)}, got {name!r}."
        )
    if name == OUTBOX and config.get("ENV_NAME") == "production":
        raise ProviderConfigError(
            "SMS_PROVIDER is 'outbox', which only stores messages for the development outbox "
            "page: in production nobody would receive their codes. Set SMS_PROVIDER=http with "
            + ", ".join(HTTP_SETTINGS)
            + " (see README.md, 'Production')."
        )
    if name == HTTP:
        missing = [key for key in HTTP_SETTINGS if not config.get(key)]
        if missing:
            raise ProviderConfigError(
                "SMS_PROVIDER=http needs these settings, which are not set: "
                + ", ".join(missing)
                + "."
            )
        url = config["SMS_HTTP_URL"].replace("{account}", config["SMS_ACCOUNT"])
        try:
            outbound.check_url(url, sms_policy(config))
        except outbound.Refused as exc:
            raise ProviderConfigError(f"SMS_HTTP_URL cannot be used: {exc}") from None


def get_provider(config: Mapping):
    check_config(config)
    if (config.get("SMS_PROVIDER") or OUTBOX) == HTTP:
        return HttpSmsProvider(
            config["SMS_HTTP_URL"],
            config["SMS_ACCOUNT"],
            config["SMS_TOKEN"],
            config["SMS_FROM"],
            policy=sms_policy(config),
            callback_base=config.get("PUBLIC_BASE_URL"),
            idempotency_header=config.get("SMS_IDEMPOTENCY_HEADER"),
        )
    return OutboxProvider()
