"""Field encryption and blind indexes for personal data.

One master key (``PII_KEY``, 32 bytes, base64) comes from the environment. Two keys are derived
from it with HKDF so that the encryption key and the search key are never the same bytes:
AES-256-GCM encrypts each field with a fresh random nonce, and HMAC-SHA256 makes the keyed hash
("blind index") that exact search by phone or national ID matches against.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

VERSION = "v1"
_keys: dict[str, bytes] = {}
# AESGCM objects are immutable and thread-safe; building one per field costs more than the
# encryption itself on bulk imports.
_ciphers: dict[str, AESGCM] = {}


class KeyError_(RuntimeError):
    """The PII key is missing or malformed."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def configure(master_key_b64: str) -> None:
    """Install the keys derived from the master key for this process."""
    try:
        master = base64.urlsafe_b64decode(master_key_b64.encode())
    except (binascii.Error, ValueError) as exc:
        raise KeyError_("PII_KEY must be 32 bytes encoded in base64") from exc
    if len(master) != 32:
        raise KeyError_("PII_KEY must be 32 bytes encoded in base64")
    _keys["enc"] = _derive(master, b"portal pii encryption v1")
    _keys["index"] = _derive(master, b"portal pii blind index v1")
    _keys["files"] = _derive(master, b"portal file encryption v1")
    _keys["chain"] = _derive(master, b"portal chain pseudonyms v1")
    _keys["otp"] = _derive(master, b"portal one-time codes v1")
    _keys["names"] = _derive(master, b"portal name search index v1")
    _ciphers.clear()


def _key(name: str) -> bytes:
    try:
        return _keys[name]
    except KeyError:
        raise KeyError_("PII keys are not configured: call crypto.configure() first") from None


def derived_key(name: str) -> bytes:
    """A purpose-bound key (``chain``: pseudonymous addresses and batch ids)."""
    return _key(name)


def cipher(name: str = "enc") -> AESGCM:
    found = _ciphers.get(name)
    if found is None:
        found = _ciphers[name] = AESGCM(_key(name))
    return found


def encrypt(plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = cipher().encrypt(nonce, plaintext.encode(), VERSION.encode())
    return f"{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str) -> str:
    version, _, body = token.partition(":")
    if version != VERSION:
        raise ValueError("unknown ciphertext version")
    raw = base64.urlsafe_b64decode(body.encode())
    return cipher().decrypt(raw[:12], raw[12:], VERSION.encode()).decode()


def blind_index(value: str) -> str:
    """Keyed hash of a normalised value; equal inputs give equal outputs, nothing else leaks."""
    return hmac.new(_key("index"), value.encode(), hashlib.sha256).hexdigest()


def token_hash(value: str) -> str:
    """Unkeyed SHA-256 for high-entropy random tokens (sessions, card tokens)."""
    return hashlib.sha256(value.encode()).hexdigest()


class Encrypted(TypeDecorator):
    """A text column whose value is encrypted before it reaches the database."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(str(value))

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)
