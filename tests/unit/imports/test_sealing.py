"""An import's personal data is encrypted exactly as the Encrypted column would."""

from __future__ import annotations

import base64

import pytest

from portal import crypto
from portal.imports.sealing import Sealer


@pytest.fixture
def pii_key(monkeypatch):
    monkeypatch.setattr(crypto, "_keys", {})
    monkeypatch.setattr(crypto, "_ciphers", {})
    crypto.configure(crypto.generate_key())


def test_sealed_values_open_with_crypto_decrypt(pii_key):
    values = ["Sita Kumari", None, "", "+9779841000001", "नेपाली", "x" * 5000, None]
    sealed = Sealer().seal(values)
    assert [crypto.decrypt(s) if s is not None else None for s in sealed] == values
    assert all(s.startswith("v1:") for s in sealed if s is not None)
    assert "Sita" not in "".join(s for s in sealed if s)


def test_every_value_has_its_own_nonce(pii_key):
    sealed = Sealer().seal(["same"] * 200)
    assert len(set(sealed)) == 200
    nonces = {base64.urlsafe_b64decode(s[3:])[:12] for s in sealed}
    assert len(nonces) == 200
