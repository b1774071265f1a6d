"""A local JSON-RPC chain for tests and benchmarks: anvil from contracts/node_modules.

``contracts/ensure_deps.sh`` installs it (npm, pinned by package-lock.json). Each node gets a free
port, runs in its own process group and is stopped by PID.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import requests

from tests.support.services import REPO_ROOT, ManagedProcess, Unavailable, free_port, wait_for

ANVIL = REPO_ROOT / "contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
# anvil's first dev account: public knowledge, funded only on a local dev chain.
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def ensure_installed() -> Path:
    if not ANVIL.exists():
        done = subprocess.run(
            ["bash", str(REPO_ROOT / "contracts/ensure_deps.sh")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or not ANVIL.exists():
            raise Unavailable(f"anvil could not be installed: {done.stderr.strip()[-500:]}")
    return ANVIL


class Anvil(ManagedProcess):
    def __init__(self, *extra: str, log_dir: str | Path | None = None, port: int | None = None):
        # A given port: a node restarted where the portal already points (chaos tests).
        self.port = port or free_port()
        argv = [
            str(ensure_installed()),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--hardfork", "prague",
            "--silent",
            *extra,
        ]  # fmt: skip
        log = Path(log_dir) / f"anvil-{self.port}.log" if log_dir else None
        super().__init__("anvil", argv, log_path=log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rpc(self, method: str, *params):
        reply = requests.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=10,
        )
        return reply.json().get("result")

    def wait_ready(self, timeout: float = 30) -> Anvil:
        def ready():
            if not self.running():
                raise RuntimeError(f"anvil exited:\n{self.log_tail()}")
            try:
                return self.rpc("eth_chainId") is not None
            except requests.RequestException:
                return False

        wait_for(ready, timeout, what="anvil to answer")
        return self
