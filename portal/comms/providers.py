"""SMS providers: the development outbox, and a Twilio-style HTTP API.

A provider gets a number and a text and returns the provider's message id. Errors name what went
wrong (timeout, HTTP status, the provider's numeric error code) and never the number or the text:
they end up in job errors, which staff read.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from portal import outbound

OUTBOX, HTTP = "outbox", "http"
PROVIDERS = (OUTBOX, HTTP)
HTTP_SETTINGS = ("SMS_HTTP_URL", "SMS_ACCOUNT", "SMS_TOKEN", "SMS_FROM")
# Statuses worth another try: the provider was busy or down, not the request wrong.
_TRANSIENT = {408, 425, 429}
# A provider's answer is a small JSON object; anything bigger is not read.
MAX_REPLY_BYTES = 64 * 1024


class ProviderError(Exception):
    """Sending failed. ``permanent``: the same request will fail again (do not retry)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class ProviderConfigError(RuntimeError):
    """The SMS settings cannot work; raised when the app starts."""


class OutboxProvider:
    """Sends nothing: the stored message is what the development outbox page shows."""

    name = OUTBOX

    def send(self, to: str, body: str) -> str | None:
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
    ):
        self.url = url.replace("{account}", account)
        self.account = account
        self.token = token
        self.sender = sender
        self.policy = policy

    def send(self, to: str, body: str) -> str | None:
        credentials = base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        try:
            reply = outbound.request(
                "POST",
                self.url,
                self.policy,
                headers={
                    "Authorization": f"Basic {credentials}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                body=urlencode({"To": to, "From": self.sender, "Body": body}).encode(),
            )
        except outbound.Refused as exc:
            raise ProviderError(f"Not sent to the SMS provider: {exc}", permanent=True) from None
        except outbound.TimedOut:
            raise ProviderError("The SMS provider did not answer in time.") from None
        except outbound.Failed as exc:
            raise ProviderError(f"The SMS provider could not be reached: {exc}") from None
        if reply.status >= 300:
            raise ProviderError(
                f"The SMS provider refused the message: HTTP {reply.status}{_error_code(reply)}.",
                permanent=reply.status < 500 and reply.status not in _TRANSIENT,
            )
        return _message_id(reply)


def _json(reply: outbound.Reply) -> dict:
    try:
        found = reply.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _error_code(reply: outbound.Reply) -> str:
    # Only the numeric code: providers' error texts often quote the number they refused.
    code = _json(reply).get("code")
    return f" (provider code {code})" if isinstance(code, int) else ""


def _message_id(reply: outbound.Reply) -> str | None:
    found = _json(reply)
    for key in ("sid", "id", "message_id"):
        value = found.get(key)
        if isinstance(value, str | int) and str(value):
            return str(value)[:80]
    return None


def sms_policy(config: Mapping) -> outbound.Policy:
    """The SMS API's host and port (from its URL) is the one place the token may go."""
    url = (config.get("SMS_HTTP_URL") or "").replace("{account}", config.get("SMS_ACCOUNT") or "")
    parts = urlsplit(url)
    try:
        port = parts.port or outbound.DEFAULT_PORTS.get(parts.scheme.lower(), 443)
        host = outbound.canonical_host(parts.hostname or "")
    except (ValueError, outbound.Refused):
        raise ProviderConfigError(f"SMS_HTTP_URL is not a usable URL: {url!r}.") from None
    timeout = float(config.get("SMS_TIMEOUT_SECONDS") or 10)
    shown = f"[{host}]" if ":" in host else host
    return outbound.policy_from_config(
        "SMS provider",
        config,
        [f"{shown}:{port}"],
        connect_timeout=min(5.0, timeout),
        read_timeout=timeout,
        total_timeout=2 * timeout,
        max_bytes=MAX_REPLY_BYTES,
    )


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
        )
    return OutboxProvider()
