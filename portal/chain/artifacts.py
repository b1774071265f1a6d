"""The compiled contracts committed under ``artifacts/`` (built by ``contracts/build.js``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@cache
def load(name: str) -> dict:
    return json.loads((ARTIFACTS / f"{name}.json").read_text(encoding="utf-8"))


def abi(name: str) -> list:
    return load(name)["abi"]


def bytecode(name: str) -> str:
    code = load(name)["bytecode"]
    return code if code.startswith("0x") else "0x" + code
