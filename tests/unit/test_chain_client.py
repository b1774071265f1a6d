"""The JSON-RPC client's record of a node it could not reach (portal.chain.client)."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.chain import client


def _closed_port() -> int:
    """A port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


def test_a_refused_rpc_is_remembered_by_its_client_alone(app_ctx):
    down = client.connect(f"http://127.0.0.1:{_closed_port()}")
    other = client.connect(f"http://127.0.0.1:{_closed_port()}")
    assert not client.failed_lately(30, down)
    with client.rpc_timeout(0.5), pytest.raises(client.UNREACHABLE):
        down.eth.get_block("latest")
    assert client.failed_lately(30, down)
    assert not client.failed_lately(30, other)  # another node's client is not paused
    assert not client.failed_lately(0, down)  # the pause is over once its seconds have passed


@settings(max_examples=10, deadline=None)
@given(short=st.booleans())
def test_any_unreachable_rpc_counts_with_or_without_a_short_timeout(short):
    down = client.connect(f"http://127.0.0.1:{_closed_port()}")
    down.provider.exception_retry_configuration = None  # one refusal, not web3's five
    with client.rpc_timeout(0.5 if short else None), pytest.raises(client.UNREACHABLE):
        down.eth.get_block("latest")
    assert client.failed_lately(30, down)


def test_the_embedded_chain_is_never_paused(app_ctx):
    assert client.is_embedded()
    assert not client.failed_lately(30)
