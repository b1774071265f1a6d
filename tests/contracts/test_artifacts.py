"""The committed artifacts are exactly what contracts/build.js makes of contracts/src today.

Compiling needs Node and contracts/node_modules (installed by contracts/ensure_deps.sh when
missing); only a machine without Node at all skips these checks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ARTIFACTS, REPO_ROOT

CONTRACTS = REPO_ROOT / "contracts"
NAMES = ["CashTransfer", "Entitlements", "EntitlementsV2", "ProjectToken", "ProjectTokenV2"]
KEYS = [
    "abi",
    "bytecode",
    "compiler",
    "contractName",
    "deployedBytecode",
    "evmVersion",
    "optimizer",
    "sourceHash",
]

needs_node = pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed: cannot compile the contracts"
)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if not (CONTRACTS / "node_modules" / "solc").is_dir():
        subprocess.run(["bash", str(CONTRACTS / "ensure_deps.sh")], check=True, timeout=600)
    return CONTRACTS / "node_modules"


def check(build_js: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", str(build_js), "--check"], capture_output=True, text=True, timeout=300
    )


@needs_node
def test_committed_artifacts_match_the_sources(node_modules):
    result = check(CONTRACTS / "build.js")

    assert result.returncode == 0, result.stderr + result.stdout
    assert ", ".join(NAMES) in result.stdout


@needs_node
def test_check_names_each_artifact_that_differs(node_modules, tmp_path):
    # The same build script on a copy of the tree whose artifacts were tampered with.
    (tmp_path / "contracts").mkdir()
    shutil.copy(CONTRACTS / "build.js", tmp_path / "contracts" / "build.js")
    shutil.copytree(CONTRACTS / "src", tmp_path / "contracts" / "src")
    (tmp_path / "contracts" / "node_modules").symlink_to(node_modules)
    artifacts = tmp_path / "portal" / "chain" / "artifacts"
    shutil.copytree(ARTIFACTS, artifacts)
    spec = json.loads((artifacts / "Entitlements.json").read_text())
    spec["bytecode"] = spec["bytecode"][:-2] + ("00" if spec["bytecode"][-2:] != "00" else "01")
    (artifacts / "Entitlements.json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    (artifacts / "CashTransfer.json").unlink()

    result = check(tmp_path / "contracts" / "build.js")

    assert result.returncode == 1
    assert "Entitlements.json (differs)" in result.stderr
    assert "CashTransfer.json (missing)" in result.stderr
    assert "ProjectToken.json" not in result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_artifact_shape(name):
    text = (ARTIFACTS / f"{name}.json").read_text(encoding="utf-8")
    spec = json.loads(text)

    assert sorted(spec) == KEYS
    assert spec["contractName"] == name
    assert spec["compiler"].startswith("0.8.37+commit.")
    # Prague: py-evm (these tests) has no Osaka opcodes.
    assert spec["evmVersion"] == "prague"
    assert spec["optimizer"] == {"enabled": True, "runs": 200, "viaIR": True}
    assert spec["bytecode"].startswith("0x") and len(spec["bytecode"]) > 1_000
    assert spec["deployedBytecode"].startswith("0x")
    assert len(spec["sourceHash"]) == 64
    # The serialisation build.js promises (what makes --check byte-exact).
    assert text == json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_the_sources_declare_the_pinned_compiler():
    for source in sorted((CONTRACTS / "src").glob("*.sol")):
        assert "pragma solidity 0.8.37;" in source.read_text(encoding="utf-8"), source.name
