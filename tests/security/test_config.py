"""Secrets come from the environment; production refuses to start without them."""

from __future__ import annotations

import json
import stat

import pytest

from config import Config, ProductionConfig
from portal import MissingSecrets, create_app


def test_production_names_every_missing_secret(monkeypatch):
    for name in ProductionConfig.REQUIRED:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingSecrets) as caught:
        create_app(ProductionConfig)
    message = str(caught.value)
    for name in ("SECRET_KEY", "PII_KEY", "DATABASE_URL", "REDIS_URL"):
        assert name in message


def test_production_names_only_what_is_missing(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("PII_KEY", raising=False)
    with pytest.raises(MissingSecrets, match="PII_KEY") as caught:
        create_app(ProductionConfig)
    assert "SECRET_KEY" not in str(caught.value)


def test_embedded_mode_generates_private_secrets_once(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("PII_KEY", raising=False)

    class Embedded(Config):
        SECRET_KEY = None
        PII_KEY = None
        INSTANCE_DIR = str(tmp_path)
        SQLALCHEMY_DATABASE_URI = "sqlite://"
        BROKER = "stub"

    first = create_app(Embedded)
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "PII_KEY" in caplog.text  # the operator is warned
    second = create_app(Embedded)
    assert (
        first.config["PII_KEY"]
        == second.config["PII_KEY"]
        == json.loads(path.read_text())["PII_KEY"]
    )
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
