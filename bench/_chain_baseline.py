"""The floor under a redemption: an ERC-20 transfer sent straight to the node, and its receipt.

Uses anvil's second development account (funded on a dev chain only), so its nonces never
collide with the portal's operator or with the faucet key the portal tops the operator up from.
The same token and account serve a quiet measurement before the load and a slow trickle during
it (one transfer at a time, so the nonce is simply counted up).
"""

from __future__ import annotations

import threading
import time

# anvil's account #1: public knowledge, funded only on a local dev chain.
BASELINE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


class Transfers:
    """``fresh``: each transfer to a new address (the full cost of a first balance, as a payment
    to someone new is); otherwise always to the same one."""

    def __init__(self, node_url: str, *, fresh: bool = False):
        from eth_account import Account
        from web3 import Web3

        from portal.chain import artifacts

        self.w3 = Web3(Web3.HTTPProvider(node_url, request_kwargs={"timeout": 30}))
        self.me = Account.from_key(BASELINE_KEY)
        self.to = Account.create().address
        self.fresh = fresh
        self.gas: list[int] = []  # gas used by each transfer, from its receipt
        factory = self.w3.eth.contract(
            abi=artifacts.abi("ProjectToken"), bytecode=artifacts.bytecode("ProjectToken")
        )
        sender = {"from": self.me.address}
        made = self.w3.eth.wait_for_transaction_receipt(
            self._send(
                factory.constructor("Base", "BASE", 2, self.me.address).build_transaction(
                    {**sender, "nonce": self._nonce(), "chainId": self.w3.eth.chain_id}
                )
            ),
            timeout=60,
        )
        self.token = self.w3.eth.contract(
            address=made.contractAddress, abi=artifacts.abi("ProjectToken")
        )
        self.chain_id = self.w3.eth.chain_id
        self.w3.eth.wait_for_transaction_receipt(
            self._send(
                self.token.functions.mint(self.me.address, 10**15).build_transaction(
                    {**sender, "nonce": self._nonce(), "chainId": self.chain_id}
                )
            ),
            timeout=60,
        )
        self.nonce = self._nonce()
        self.failures = 0

    def _nonce(self) -> int:
        return self.w3.eth.get_transaction_count(self.me.address, "pending")

    def _send(self, tx: dict):
        return self.w3.eth.send_raw_transaction(self.me.sign_transaction(tx).raw_transaction)

    def one(self) -> float:
        """Seconds from sending a signed transfer to holding its receipt."""
        from eth_account import Account

        to = Account.create().address if self.fresh else self.to
        tx = self.token.functions.transfer(to, 1).build_transaction(
            {"from": self.me.address, "nonce": self.nonce, "chainId": self.chain_id, "gas": 80_000}
        )
        raw = self.me.sign_transaction(tx).raw_transaction
        started = time.perf_counter()
        sent = self.w3.eth.send_raw_transaction(raw)
        receipt = self.w3.eth.wait_for_transaction_receipt(sent, timeout=60, poll_latency=0.01)
        self.nonce += 1
        self.gas.append(receipt.gasUsed)
        return time.perf_counter() - started

    def many(self, count: int) -> list[float]:
        return [self.one() for _ in range(count)]


class Trickle:
    """One transfer every ``every`` seconds in a thread, until stopped (the same load's floor)."""

    def __init__(self, transfers: Transfers, every: float = 1.0):
        self.transfers, self.every = transfers, every
        self.seconds: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="baseline", daemon=True)

    def start(self) -> Trickle:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.seconds.append(self.transfers.one())
            except Exception:  # a node too busy to answer in 60 s is a figure, not a crash
                self.failures += 1
                self.transfers.nonce = self.transfers._nonce()

    def stop(self) -> list[float]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(70)
        return self.seconds
