"""Checking that a webhook call comes from the provider: Twilio's ``X-Twilio-Signature`` and
WhatsApp Cloud API's ``X-Hub-Signature-256``.

Both are HMACs with a secret only the provider and the portal know; both are compared in
constant time, and a missing secret on our side refuses every call (a webhook that cannot
check its caller must not act on anything).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def twilio_signature(url: str, params: Iterable[tuple[str, str]], token: str) -> str:
    """Twilio's scheme: HMAC-SHA1, keyed with the auth token, over the full public URL the
    provider called followed by every POST parameter as name then value, sorted by name (and a
    repeated name's values in order of value); base64."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_valid(
    url: str, params: Iterable[tuple[str, str]], token: str | None, signature: str | None
) -> bool:
    if not token or not signature:
        return False
    expected = twilio_signature(url, params, token)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def hub_signature(body: bytes, secret: str) -> str:
    """WhatsApp (Meta) webhooks: ``sha256=`` and the hex HMAC-SHA256 of the raw body, keyed
    with the app secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hub_valid(body: bytes, secret: str | None, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    expected = hub_signature(body, secret)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def constant_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
