"""The import's blind indexes are the enrolment form's: equal people hash equal."""

from __future__ import annotations

import random

from portal import crypto
from portal.imports.indexes import BlindIndexer


def test_the_same_hash_as_crypto_blind_index(index_key):
    indexer = BlindIndexer()
    rng = random.Random(5)
    values = ["", "phone:+9779841000001", "nid:12345678", "ß ü नेपाली", "x" * 200]
    values += [f"phone:+977{rng.randrange(10**10):010d}" for _ in range(2000)]
    for value in values:
        assert indexer(value) == crypto.blind_index(value), value
    for prefix in ("phone:", "nid:"):
        with_prefix = BlindIndexer(prefix=prefix)
        for value in values[:50]:
            assert with_prefix(value) == crypto.blind_index(prefix + value), value


def test_keys_longer_than_a_block_are_hashed_first_as_in_hmac():
    import hashlib
    import hmac

    for key in (b"", b"short", b"k" * 64, b"long key " * 20):
        assert (
            BlindIndexer(key)("nid:AB1234")
            == hmac.new(key, b"nid:AB1234", hashlib.sha256).hexdigest()
        )
