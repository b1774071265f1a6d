"""Blind indexes at import speed: the same keyed hash as ``crypto.blind_index``.

An import hashes two values a row. ``hmac.new`` sets the key up again for every value (about
3 µs each here); HMAC-SHA256 is SHA-256 over the key XOR a pad and then the message (RFC 2104),
so the two padded-key states are hashed once and copied per value (about 1 µs).
tests/unit/imports/test_indexes.py checks the output against ``crypto.blind_index``.
"""

from __future__ import annotations

import hashlib

from portal import crypto

_BLOCK = 64  # SHA-256's block size in bytes


class BlindIndexer:
    """``BlindIndexer(prefix=p)(v)`` is ``crypto.blind_index(p + v)``."""

    def __init__(self, key: bytes | None = None, prefix: str = ""):
        # crypto keeps the derived keys private; this is its index key, read once per import.
        key = crypto.derived_key("index") if key is None else key
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + prefix.encode())
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, value: str) -> str:
        inner = self._inner.copy()
        inner.update(value.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
