"""WhatsApp through an API shaped like the WhatsApp Cloud API: approved message templates.

Outside a conversation the person opened, WhatsApp delivers only templates the business had
approved; a message names its template and language, and the text it carries is the template's
body parameter. ``POST {WHATSAPP_API_URL}/{WHATSAPP_PHONE_ID}/messages`` with a bearer token
answers ``{"messages": [{"id": "wamid..."}]}``; status webhooks (``X-Hub-Signature-256``) carry
that id and the ``biz_opaque_callback_data`` given here (the message's key), which lets a
receipt settle a message whose send was interrupted. The API takes no idempotency key.

Errors name the HTTP status and the API's numeric code, never the number or the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from portal import outbound
from portal.comms.providers import ProviderConfigError, ProviderError, api_policy, reply_json

OUTBOX, CLOUD = "outbox", "cloud"
PROVIDERS = (OUTBOX, CLOUD)
CLOUD_SETTINGS = ("WHATSAPP_API_URL", "WHATSAPP_PHONE_ID", "WHATSAPP_TOKEN", "WHATSAPP_APP_SECRET")
# The API's codes that mean "later": throttling and the service's own trouble.
TRANSIENT_CODES = {1, 2, 4, 17, 341, 80007, 130429, 131000, 131048, 131056, 133004}
_TRANSIENT_HTTP = {408, 425, 429}


class OutboxWhatsAppProvider:
    """Sends nothing: the stored message is what the development outbox page shows."""

    name = OUTBOX
    idempotent = True

    def send(self, to: str, text: str, *, template: str, language: str, key: str | None = None):
        return None


class CloudWhatsAppProvider:
    name = CLOUD
    idempotent = False

    def __init__(self, api_url: str, phone_id: str, token: str, *, policy: outbound.Policy):
        self.url = f"{api_url.rstrip('/')}/{phone_id}/messages"
        self.token = token
        self.policy = policy

    @staticmethod
    def payload(to: str, text: str, template: str, language: str, key: str | None) -> dict:
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.lstrip("+"),
            "type": "template",
            "template": {
                "name": template,
                "language": {"code": language},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": text}]}],
            },
        }
        if key:
            body["biz_opaque_callback_data"] = key
        return body

    def send(self, to: str, text: str, *, template: str, language: str, key: str | None = None):
        raw = json.dumps(self.payload(to, text, template, language, key)).encode()
        try:
            reply = outbound.request(
                "POST",
                self.url,
                self.policy,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                body=raw,
            )
        except outbound.Refused as exc:
            raise ProviderError(f"Not sent to WhatsApp: {exc}", permanent=True) from None
        except outbound.TimedOut:
            raise ProviderError("WhatsApp did not answer in time.", unknown=True) from None
        except outbound.Failed as exc:
            raise ProviderError(f"WhatsApp could not be reached: {exc}") from None
        found = reply_json(reply)
        if reply.status >= 300:
            error = found.get("error") if isinstance(found.get("error"), dict) else {}
            code = error.get("code") if isinstance(error.get("code"), int) else None
            shown = f" (code {code})" if code is not None else ""
            transient = (
                reply.status >= 500 or reply.status in _TRANSIENT_HTTP or code in TRANSIENT_CODES
            )
            raise ProviderError(
                f"WhatsApp refused the message: HTTP {reply.status}{shown}.",
                permanent=not transient,
                code=None if code is None else str(code),
            )
        messages = found.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            ident = messages[0].get("id")
            if isinstance(ident, str) and ident:
                return ident[:80]
        return None


def policy(config: Mapping) -> outbound.Policy:
    timeout = float(config.get("WHATSAPP_TIMEOUT_SECONDS") or 10)
    url = config.get("WHATSAPP_API_URL") or ""
    return api_policy("WhatsApp", "WHATSAPP_API_URL", url, config, timeout)


def check_config(config: Mapping) -> None:
    name = config.get("WHATSAPP_PROVIDER") or OUTBOX
    if name not in PROVIDERS:
        raise ProviderConfigError(
            f"WHATSAPP_PROVIDER must be one of {', '.join(PROVIDERS)}, got {name!r}."
        )
    if name == CLOUD:
        missing = [key for key in CLOUD_SETTINGS if not config.get(key)]
        if missing:
            raise ProviderConfigError(
                "WHATSAPP_PROVIDER=cloud needs these settings, which are not set: "
                + ", ".join(missing)
                + "."
            )
        try:
            outbound.check_url(config["WHATSAPP_API_URL"], policy(config))
        except outbound.Refused as exc:
            raise ProviderConfigError(f"WHATSAPP_API_URL cannot be used: {exc}") from None


def enabled(config: Mapping) -> bool:
    """WhatsApp campaigns are offered when a real provider is set, or in development."""
    name = config.get("WHATSAPP_PROVIDER") or OUTBOX
    return name == CLOUD or config.get("ENV_NAME") != "production"


def get_provider(config: Mapping):
    check_config(config)
    if (config.get("WHATSAPP_PROVIDER") or OUTBOX) == CLOUD:
        return CloudWhatsAppProvider(
            config["WHATSAPP_API_URL"],
            config["WHATSAPP_PHONE_ID"],
            config["WHATSAPP_TOKEN"],
            policy=policy(config),
        )
    return OutboxWhatsAppProvider()
