"""SMS providers: the development outbox, and a Twilio-style HTTP API.

A provider gets a number and a text and returns the provider's message id. Errors name what went
wrong (timeout, HTTP status, the provider's numeric error code) and never the number or the text:
they end up in job errors, which staff read.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

OUTBOX, HTTP = "outbox", "http"
PROVIDERS = (OUTBOX, HTTP)
HTTP_SETTINGS = ("SMS_HTTP_URL", "SMS_ACCOUNT", "SMS_TOKEN", "SMS_FROM")
# Statuses worth another try: the provider was busy or down, not the request wrong.
_TRANSIENT = {408, 425, 429}


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

    def __init__(self, url: str, account: str, token: str, sender: str, timeout: float = 10):
        self.url = url.replace("{account}", account)
        self.account = account
        self.token = token
        self.sender = sender
        self.timeout = timeout

    def send(self, to: str, body: str) -> str | None:
        try:
            reply = requests.post(
                self.url,
                data={"To": to, "From": self.sender, "Body": body},
                auth=(self.account, self.token),
                timeout=(min(5.0, self.timeout), self.timeout),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise ProviderError("The SMS provider did not answer in time.") from None
        except requests.RequestException as exc:
            raise ProviderError(
                f"The SMS provider could not be reached ({type(exc).__name__})."
            ) from None
        if reply.status_code >= 300:
            raise ProviderError(
                f"The SMS provider refused the message: HTTP {reply.status_code}"
                f"{_error_code(reply)}.",
                permanent=reply.status_code < 500 and reply.status_code not in _TRANSIENT,
            )
        return _message_id(reply)


def _json(reply: requests.Response) -> dict:
    try:
        found = reply.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _error_code(reply: requests.Response) -> str:
    # Only the numeric code: providers' error texts often quote the number they refused.
    code = _json(reply).get("code")
    return f" (provider code {code})" if isinstance(code, int) else ""


def _message_id(reply: requests.Response) -> str | None:
    found = _json(reply)
    for key in ("sid", "id", "message_id"):
        value = found.get(key)
        if isinstance(value, str | int) and str(value):
            return str(value)[:80]
    return None


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


def get_provider(config: Mapping):
    check_config(config)
    if (config.get("SMS_PROVIDER") or OUTBOX) == HTTP:
        return HttpSmsProvider(
            config["SMS_HTTP_URL"],
            config["SMS_ACCOUNT"],
            config["SMS_TOKEN"],
            config["SMS_FROM"],
            timeout=float(config.get("SMS_TIMEOUT_SECONDS") or 10),
        )
    return OutboxProvider()
