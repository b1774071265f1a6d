"""The embedded chain: an in-process EVM (py-evm through eth-tester) that survives restarts.

eth-tester keeps its state in memory only. Every raw transaction the node accepts is appended
to a journal under ``instance/chain/`` before the answer returns; at start the journal is
replayed into a fresh EVM with the same genesis, which recreates the same accounts, contract
addresses and transaction hashes, so the chain agrees with the database again. Replay puts
transactions into a shared block until one depends on a pending one (then that block is mined).

One EVM per journal file per process; web and worker threads of ``flask serve`` share it. A
separate worker process cannot, which is why production uses a JSON-RPC node instead.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider

log = logging.getLogger(__name__)

REPLAY_BLOCK_SIZE = 200
_chains: dict[str, EmbeddedChain] = {}
_chains_lock = threading.Lock()


class JournalError(RuntimeError):
    """The journal cannot be replayed into the same state (edited, truncated mid-line...)."""


class _JournaledProvider(EthereumTesterProvider):
    """Serialises requests (eth-tester is not thread-safe) and journals accepted raw txs."""

    def __init__(self, tester: EthereumTester, chain: EmbeddedChain):
        super().__init__(ethereum_tester=tester)
        self._chain = chain

    def make_request(self, method, params):
        with self._chain.lock:
            try:
                response = super().make_request(method, params)
            except TransactionFailed as exc:
                # Answer as a JSON-RPC node does (code 3 with the revert data), so callers see
                # the same ContractLogicError / ContractCustomError here as against anvil.
                return _revert_response(exc)
            if method == "eth_sendRawTransaction" and "result" in response:
                self._chain.record(params[0])
            return response


def _revert_response(exc: TransactionFailed) -> dict:
    raw = b""
    for candidate in (exc.__context__, exc):
        arg = candidate.args[0] if candidate is not None and candidate.args else None
        if isinstance(arg, Exception) and arg.args:
            arg = arg.args[0]
        if isinstance(arg, bytes):
            raw = arg
            break
    error = {"code": 3, "message": "execution reverted", "data": "0x" + raw.hex()}
    return {"jsonrpc": "2.0", "id": 0, "error": error}


class EmbeddedChain:
    def __init__(self, journal: Path | None):
        self.lock = threading.RLock()
        self.journal = journal
        self.tester = EthereumTester(PyEVMBackend())
        self.provider = _JournaledProvider(self.tester, self)
        self.replayed = 0
        if journal is not None:
            journal.parent.mkdir(parents=True, exist_ok=True)
            self._replay()

    @property
    def faucet_key(self) -> str:
        """A genesis account's key: the embedded chain's source of gas money, nothing else."""
        return self.tester.backend.account_keys[0].to_hex()

    def record(self, raw) -> None:
        if self.journal is None:
            return
        text = raw if isinstance(raw, str) else "0x" + bytes(raw).hex()
        with open(self.journal, "a", encoding="ascii") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _replay(self) -> None:
        if not self.journal.exists():
            return
        lines = self.journal.read_text(encoding="ascii").splitlines()
        self.tester.disable_auto_mine_transactions()
        try:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    self._replay_one(line.strip())
                except Exception as exc:
                    raise JournalError(
                        f"The embedded chain's journal ({self.journal}) cannot be replayed: "
                        f"transaction {number} is refused ({type(exc).__name__}). Restore the "
                        "journal that belongs to this database, or start from an empty instance."
                    ) from exc
                self.replayed += 1
                if self.replayed % REPLAY_BLOCK_SIZE == 0:
                    self.tester.mine_block()
            self.tester.mine_block()
        finally:
            self.tester.enable_auto_mine_transactions()
        log.info("embedded chain: replayed %d transactions", self.replayed)

    def _replay_one(self, raw: str) -> None:
        try:
            self.tester.send_raw_transaction(raw)
        except Exception:
            # A transaction may depend on one still pending (gas money just sent to its
            # sender); mining the pending block settles that, and a second refusal is real.
            self.tester.mine_block()
            self.tester.send_raw_transaction(raw)


def get(instance_dir: str | None) -> EmbeddedChain:
    """The process's embedded chain for this instance folder (None: a throwaway chain)."""
    key = str(instance_dir or "")
    with _chains_lock:
        chain = _chains.get(key)
        if chain is None:
            journal = Path(instance_dir) / "chain" / "journal.txt" if instance_dir else None
            chain = _chains[key] = EmbeddedChain(journal)
        return chain


def forget(instance_dir: str | None) -> None:
    """Drop the cached chain (tests that simulate a restart)."""
    with _chains_lock:
        _chains.pop(str(instance_dir or ""), None)
