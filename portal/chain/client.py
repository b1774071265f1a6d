"""The web3 client of this process: a JSON-RPC node by ``WEB3_PROVIDER_URI`` or the embedded EVM,
and what its node answered kept for a while (chain id, fee quote, balances, gas limits)."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import requests
from flask import current_app
from web3 import Web3
from web3.exceptions import Web3RPCError

from portal.chain import cache, embedded


class FeeQuote(NamedTuple):
    priority: int  # maxPriorityFeePerGas
    max_fee: int  # maxFeePerGas


class ChainUnavailable(RuntimeError):
    """The chain cannot be reached or is not the one the database knows."""


# Seconds an RPC may take here before it fails, where the default 30 s is too long to wait
# (a vendor's request): set by ``rpc_timeout``, per thread or greenlet.
_timeout: contextvars.ContextVar[float | None] = contextvars.ContextVar("rpc_timeout", default=None)


# What a node that cannot be reached, or does not answer in time, raises.
UNREACHABLE = (requests.ConnectionError, requests.Timeout)


class _Provider(Web3.HTTPProvider):
    # When an RPC last failed to reach the node (time.monotonic()): see ``failed_lately``.
    failed_at: float | None = None

    def get_request_kwargs(self):
        kwargs = dict(super().get_request_kwargs())
        shorter = _timeout.get()
        if shorter is not None:
            kwargs["timeout"] = shorter
        return kwargs

    def _make_request(self, method, request_data):
        try:
            return super()._make_request(method, request_data)
        except UNREACHABLE:
            self.failed_at = time.monotonic()
            raise

    @property
    def exception_retry_configuration(self):
        # Under a short timeout, web3's own retries (five, with a backoff) would multiply it.
        if _timeout.get() is not None:
            return None
        return Web3.HTTPProvider.exception_retry_configuration.fget(self)

    @exception_retry_configuration.setter
    def exception_retry_configuration(self, value) -> None:
        Web3.HTTPProvider.exception_retry_configuration.fset(self, value)


def request_timeout() -> float:
    """Seconds a web request waits on the node (``CHAIN_REQUEST_TIMEOUT_MS``)."""
    return current_app.config["CHAIN_REQUEST_TIMEOUT_MS"] / 1000


@contextmanager
def rpc_timeout(seconds: float | None) -> Iterator[None]:
    """Within the block, this thread's RPCs to the node give up after ``seconds`` (None: the
    client's own 30 s)."""
    token = _timeout.set(seconds)
    try:
        yield
    finally:
        _timeout.reset(token)


def failed_lately(seconds: float, w3: Web3 | None = None) -> bool:
    """Whether an RPC of this client could not reach its node (refused, or no answer in time)
    in the last ``seconds``: callers that cannot wait (a vendor's request) then leave the node
    to the jobs for a while. Never for the embedded chain, which has no connection to lose."""
    failed_at = getattr(_client(w3).provider, "failed_at", None)
    return failed_at is not None and time.monotonic() - failed_at < seconds


def is_embedded(app=None) -> bool:
    app = app or current_app
    return not app.config.get("WEB3_PROVIDER_URI")


def web3(app=None) -> Web3:
    app = app or current_app
    found = app.extensions.get("portal_web3")
    if found is not None:
        return found
    uri = app.config.get("WEB3_PROVIDER_URI")
    if uri:
        w3 = connect(uri)
    else:
        if not app.config.get("CHAIN_EMBEDDED_ALLOWED", True):
            raise ChainUnavailable(
                "This worker runs in its own process, where the embedded chain of `flask serve` "
                "cannot be reached. Set WEB3_PROVIDER_URI to a JSON-RPC node (see README, "
                "'Production')."
            )
        instance = None if app.config.get("CHAIN_EPHEMERAL") else app.config["INSTANCE_DIR"]
        w3 = Web3(embedded.get(instance).provider)
    app.extensions["portal_web3"] = w3
    return w3


def connect(uri: str) -> Web3:
    """A client of the JSON-RPC node at ``uri``: 30 s an RPC, shorter under ``rpc_timeout``."""
    return Web3(_Provider(uri, request_kwargs={"timeout": 30}))


def faucet_key(app=None) -> str | None:
    """Where gas money for the portal's signers comes from, outside production."""
    app = app or current_app
    if is_embedded(app):
        instance = None if app.config.get("CHAIN_EPHEMERAL") else app.config["INSTANCE_DIR"]
        return embedded.get(instance).faucet_key
    return app.config.get("CHAIN_FAUCET_KEY")


# --- answers kept for a while (portal.chain.cache): one RPC saved on every transaction -------


def _client(w3: Web3 | None) -> Web3:
    return w3 if w3 is not None else web3()


def chain_id(w3: Web3 | None = None) -> int:
    """The node's chain id, asked once per client: a client talks to one node for its life."""
    w3 = _client(w3)
    return cache.of(w3).get("chain_id", None, lambda: int(w3.eth.chain_id))


def _ask_fees(w3: Web3) -> FeeQuote:
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    try:
        priority = int(w3.eth.max_priority_fee)
    except (Web3RPCError, ValueError):
        priority = 10**9
    return FeeQuote(priority, 2 * base + priority)


def fee_quote(w3: Web3 | None = None) -> FeeQuote:
    """Tip and fee cap for a new transaction, at most ``CHAIN_FEE_QUOTE_SECONDS`` old.

    The cap is twice the base fee plus the tip: the base fee can rise by an eighth a block at
    most, so a quote a few blocks old still gets mined.
    """
    w3 = _client(w3)
    ttl = current_app.config["CHAIN_FEE_QUOTE_SECONDS"]
    return cache.of(w3).get("fees", ttl, lambda: _ask_fees(w3))


def balance(address: str, w3: Web3 | None = None, max_age: float | None = None) -> int:
    """The account's ether balance, at most ``max_age`` seconds old (default
    ``CHAIN_BALANCE_CHECK_SECONDS``)."""
    w3 = _client(w3)
    if max_age is None:
        max_age = current_app.config["CHAIN_BALANCE_CHECK_SECONDS"]
    return cache.of(w3).get(("balance", address), max_age, lambda: w3.eth.get_balance(address))


def forget_balance(address: str, w3: Web3 | None = None) -> None:
    cache.of(_client(w3)).forget(("balance", address))


def remembered(key, max_age: float | None, compute, w3: Web3 | None = None):
    """Any other answer of this client's node, kept ``max_age`` seconds (a contract read)."""
    return cache.of(_client(w3)).get(key, max_age, compute)


def known_gas_limit(key, w3: Web3 | None = None) -> int | None:
    """A gas limit found sufficient for this kind of call (see ``remember_gas_limit``)."""
    return cache.of(_client(w3)).peek(("gas", key))


def remember_gas_limit(key, limit: int, w3: Web3 | None = None) -> None:
    """Keep the largest limit seen for a kind of call (a contract's function): the next calls
    skip ``estimate_gas``, an RPC on the hot path. Only the largest is kept, so a call that
    touched fewer cold storage slots does not lower it."""
    store = cache.of(_client(w3))
    store.put(("gas", key), max(limit, store.peek(("gas", key)) or 0))


def forget(w3: Web3 | None = None) -> None:
    """Drop every kept answer of this client (its node was replaced, say)."""
    cache.of(_client(w3)).forget()
