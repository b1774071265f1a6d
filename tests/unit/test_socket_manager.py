"""The Socket.IO extension is one object shared by every app a process creates (tests create
many): an app without a message queue must not inherit the Redis manager of the app before it."""

from __future__ import annotations

from socketio import Manager

from config import TestConfig
from portal import create_app
from portal.extensions import socketio


def test_an_app_without_a_queue_gets_a_plain_manager_after_one_with_a_queue(tmp_path):
    create_app(
        TestConfig,
        INSTANCE_DIR=str(tmp_path / "queued"),
        BROKER="redis",
        REDIS_URL="redis://127.0.0.1:1/0",  # never connected to: the manager is lazy
    )
    assert type(socketio.server.manager) is not Manager  # the Redis one
    plain = create_app(TestConfig, INSTANCE_DIR=str(tmp_path / "plain"))
    assert type(socketio.server.manager) is Manager
    # Built at all (a queue manager makes the test client raise); refused, as nobody signed in.
    assert not socketio.test_client(plain).is_connected()
