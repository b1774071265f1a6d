"""Gas per beneficiary of Entitlements.allocate on a real JSON-RPC node (anvil), against its floor.

Starts anvil from contracts/node_modules on a free loopback port (Prague), deploys ProjectToken
and Entitlements from the committed artifacts with web3.py, funds the contract, then allocates
to N fresh random addresses in batches and reads gasUsed from the receipts.

The floor is what no implementation can go below for one new beneficiary: the fresh storage
slot (22,100: cold access 2,100 + zero-to-non-zero write 20,000), one Allocated event (LOG2 with
one 32-byte word: 375 + 2 x 375 + 8 x 32) and the beneficiary's ABI-encoded address in calldata
(16 gas per non-zero byte, 4 per zero byte). The baseline is what paying each beneficiary by a
plain ERC-20 transfer (one transaction each) costs, measured in the same run.

    .venv/bin/python bench/disburse_gas.py [--beneficiaries 10000] [--batch 500]

Prints a table, then one JSON line (the last line of the output).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = REPO_ROOT / "contracts"
ARTIFACTS = REPO_ROOT / "portal" / "chain" / "artifacts"

# anvil's first well-known development key (public, funded only on a local dev chain).
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

TARGET_GAS_PER_BENEFICIARY = 25_500
FRESH_SLOT_GAS = 22_100
ALLOCATED_LOG_GAS = 375 + 2 * 375 + 8 * 32
ANVIL_DEFAULT_BLOCK_GAS_LIMIT = 30_000_000
# The allocate transaction's gas limit (generous; gasUsed is what is measured), and so the
# block gas limit anvil needs for the chosen batch size.
GAS_LIMIT_PER_ITEM = 30_000
GAS_LIMIT_FIXED = 200_000
# Fixed fees: anvil's base fee starts at 1 gwei and only falls under this load, so one value
# keeps every transaction valid without a fee query per transaction. Fees do not change gasUsed.
MAX_FEE = 20 * 10**9
PRIORITY_FEE = 10**9


def anvil_binary() -> Path:
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    arch = machine.get(platform.machine().lower(), platform.machine().lower())
    system = platform.system().lower()
    binary = CONTRACTS / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if not binary.exists():
        # The binary comes from the pinned npm package; install it like `make test` would.
        subprocess.run(["bash", str(CONTRACTS / "ensure_deps.sh")], check=True)
    if not binary.exists():
        raise SystemExit(f"anvil not found at {binary.relative_to(REPO_ROOT)}")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Anvil:
    """anvil as a child process whose PID we own; stopped by stop(), whatever happened before."""

    def __init__(self, block_gas_limit: int, log) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log  # anvil's own output, shown only if it fails to start
        cmd = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--hardfork",
            "prague",
            "--gas-limit",
            str(block_gas_limit),
            "--silent",
        ]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, w3: Web3, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"anvil exited with {self.proc.returncode}: {self.output()}")
            if w3.is_connected():
                return
            time.sleep(0.05)
        raise RuntimeError(f"anvil not answering on {self.url} after {timeout:.0f} s")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load_artifact(name: str) -> dict:
    return json.loads((ARTIFACTS / f"{name}.json").read_text(encoding="utf-8"))


class Sender:
    """Signs locally with the dev key and tracks the nonce, as the portal's signer does."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.account = Account.from_key(DEV_KEY)
        self.chain_id = w3.eth.chain_id
        self.nonce = w3.eth.get_transaction_count(self.account.address)

    def send(self, call, gas: int) -> bytes:
        tx = call.build_transaction(
            {
                "from": self.account.address,
                "nonce": self.nonce,
                "gas": gas,
                "chainId": self.chain_id,
                "maxFeePerGas": MAX_FEE,
                "maxPriorityFeePerGas": PRIORITY_FEE,
            }
        )
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.nonce += 1
        return tx_hash

    def receipt(self, tx_hash: bytes):
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def transact(self, call, gas: int):
        return self.receipt(self.send(call, gas))

    def deploy(self, name: str, *args):
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.transact(factory.constructor(*args), gas=5_000_000)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def calldata_gas(address: bytes) -> int:
    """Calldata cost of one ABI-encoded address: 12 zero bytes of padding, then the 20 bytes."""
    word = bytes(12) + address
    return sum(16 if b else 4 for b in word)


def measure_allocate(sender: Sender, entitlements, addresses: list[bytes], batch: int, amount):
    """Allocates to every address, ``batch`` at a time; returns [(items, gasUsed)] per batch."""
    batches: list[tuple[int, int]] = []
    for index, start in enumerate(range(0, len(addresses), batch)):
        chunk = [Web3.to_checksum_address(a) for a in addresses[start : start + batch]]
        batch_id = (index + 1).to_bytes(32, "big")  # zero is refused as an id
        call = entitlements.functions.allocate(batch_id, chunk, amount)
        receipt = sender.transact(call, GAS_LIMIT_FIXED + GAS_LIMIT_PER_ITEM * len(chunk))
        # One Allocated per item plus the BatchAllocated: proof every item was really written.
        if len(receipt["logs"]) != len(chunk) + 1:
            raise RuntimeError(f"batch {index}: {len(receipt['logs'])} logs for {len(chunk)}")
        batches.append((len(chunk), receipt["gasUsed"]))
    return batches


def measure_baseline(sender: Sender, token, recipients: list[str], amount: int) -> int:
    """Total gasUsed of one plain ERC-20 transfer per recipient. Sent back to back (explicit
    nonces) and collected afterwards: anvil mines each on arrival, so gasUsed is unaffected."""
    hashes = [sender.send(token.functions.transfer(r, amount), 100_000) for r in recipients]
    return sum(sender.receipt(h)["gasUsed"] for h in hashes)


def run(beneficiaries: int, batch: int, baseline_sample: int, seed: int) -> dict:
    started = time.perf_counter()
    rng = random.Random(seed)
    addresses = [rng.randbytes(20) for _ in range(beneficiaries)]
    probe = rng.randbytes(20)
    recipients = [Web3.to_checksum_address(rng.randbytes(20)) for _ in range(baseline_sample)]
    floor = FRESH_SLOT_GAS + ALLOCATED_LOG_GAS + sum(map(calldata_gas, addresses)) / beneficiaries
    amount = 1_000  # 10.00 in a 2-decimal currency; the value does not change the gas
    block_gas_limit = max(
        ANVIL_DEFAULT_BLOCK_GAS_LIMIT, GAS_LIMIT_FIXED + GAS_LIMIT_PER_ITEM * batch + 1_000_000
    )

    with tempfile.TemporaryFile() as anvil_log:
        anvil = Anvil(block_gas_limit, anvil_log)
        try:
            w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 120}))
            anvil.wait_ready(w3)
            sender = Sender(w3)
            me = sender.account.address
            token = sender.deploy("ProjectToken", "Bench Voucher", "BV", 2, me)
            entitlements = sender.deploy("Entitlements", token.address, me, me)
            # One more than the beneficiaries: the marginal-cost probe allocates once more.
            funding = amount * (beneficiaries + 1)
            sender.transact(token.functions.mint(entitlements.address, funding), 200_000)
            # One more than the sample, so that no transfer empties the sender's balance (that
            # would earn a storage refund a real payer does not get).
            sender.transact(token.functions.mint(me, amount * (baseline_sample + 1)), 200_000)

            allocate_started = time.perf_counter()
            batches = measure_allocate(sender, entitlements, addresses, batch, amount)
            allocate_wall = time.perf_counter() - allocate_started

            outstanding = entitlements.functions.outstanding().call()
            if outstanding != amount * beneficiaries:
                raise RuntimeError(f"outstanding {outstanding} != {amount * beneficiaries}")
            for a in rng.sample(addresses, min(5, beneficiaries)):
                got = entitlements.functions.entitlementOf(Web3.to_checksum_address(a)).call()
                if got != amount:
                    raise RuntimeError(f"entitlement of 0x{a.hex()} is {got}, not {amount}")

            # Marginal cost of one more item, without the transaction's fixed part: a batch of
            # one fresh address against a full batch (both pay for a new batch id).
            single = sender.transact(
                entitlements.functions.allocate(
                    b"\xee" * 32, [Web3.to_checksum_address(probe)], amount
                ),
                GAS_LIMIT_FIXED + GAS_LIMIT_PER_ITEM,
            )

            baseline_started = time.perf_counter()
            baseline_gas = measure_baseline(sender, token, recipients, amount)
            baseline_wall = time.perf_counter() - baseline_started
        finally:
            anvil.stop()

    # Against a batch other than the first where there is one: the first also pays for the
    # first write of `outstanding` (0 -> non-zero), which the probe, coming later, does not.
    ref_n, ref_gas = max(batches[1:] or batches[:1])
    marginal = (ref_gas - single["gasUsed"]) / (ref_n - 1) if ref_n > 1 else None
    per_beneficiary = sum(gas for _, gas in batches) / beneficiaries
    baseline = baseline_gas / baseline_sample
    return {
        "bench": "disburse_gas",
        "beneficiaries": beneficiaries,
        "batch": batch,
        "batches": len(batches),
        "gas_per_beneficiary": round(per_beneficiary, 1),
        "marginal_gas_per_beneficiary": round(marginal, 1) if marginal is not None else None,
        "floor": round(floor, 1),
        "ratio_to_floor": round(per_beneficiary / floor, 4),
        "baseline_sample": baseline_sample,
        "baseline_transfer_gas": round(baseline, 1),
        "ratio_to_baseline": round(per_beneficiary / baseline, 4),
        "allocate_wall_s": round(allocate_wall, 2),
        "baseline_wall_s": round(baseline_wall, 2),
        "wall_s": round(time.perf_counter() - started, 2),
        "target": TARGET_GAS_PER_BENEFICIARY,
        "met": per_beneficiary <= TARGET_GAS_PER_BENEFICIARY,
    }


def print_table(r: dict) -> None:
    m = r["marginal_gas_per_beneficiary"]
    marginal = "n/a" if m is None else f"{m:,.1f}"  # needs a batch of more than one
    print()
    print(
        f"Entitlements.allocate on anvil (Prague): {r['beneficiaries']:,} new beneficiaries "
        f"in {r['batches']} batches of up to {r['batch']}"
    )
    rows = [
        ("gas per beneficiary (all-in, incl. tx base)", f"{r['gas_per_beneficiary']:,.1f}"),
        ("gas per extra beneficiary (marginal)", marginal),
        ("floor (slot + event + calldata)", f"{r['floor']:,.1f}"),
        ("ratio to floor", f"{r['ratio_to_floor']:.4f}"),
        (
            f"baseline: ERC-20 transfer each (n={r['baseline_sample']})",
            f"{r['baseline_transfer_gas']:,.1f}",
        ),
        ("ratio to baseline", f"{r['ratio_to_baseline']:.4f}"),
        ("allocate wall time (s)", f"{r['allocate_wall_s']:.2f}"),
        ("baseline wall time (s)", f"{r['baseline_wall_s']:.2f}"),
        ("total wall time (s)", f"{r['wall_s']:.2f}"),
    ]  # fmt: skip
    for label, value in rows:
        print(f"  {label:<46} {value:>12}")
    verdict = "met" if r["met"] else "MISSED"
    print(f"  target <= {r['target']:,} gas per beneficiary: {verdict}")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beneficiaries", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="addresses per allocate call")
    parser.add_argument(
        "--baseline", type=int, default=500, help="recipients paid by plain transfers"
    )
    parser.add_argument("--seed", type=int, default=20261121, help="seed of the random addresses")
    args = parser.parse_args()
    if args.beneficiaries < 1 or args.batch < 1 or args.baseline < 1:
        parser.error("--beneficiaries, --batch and --baseline must be positive")

    # SIGTERM (e.g. a CI timeout) becomes SystemExit, so the finally block still stops anvil.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run(args.beneficiaries, args.batch, args.baseline, args.seed)
    print_table(result)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    sys.exit(main())
