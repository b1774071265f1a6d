"""Live updates over Socket.IO: event and room names, emit helpers, connection auth, topics.

The browser never names a room. It asks to ``subscribe`` to a topic; the topic's handler checks
the user's permission, picks the rooms on the server and answers with a snapshot read from the
database, so a page that reconnects is consistent again at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import socketio as socketio_lib
from flask import current_app, g, session
from flask_login import current_user
from flask_socketio import SocketIO, disconnect, join_room, leave_room
from flask_sqlalchemy.session import Session
from sqlalchemy import event

from portal import inputs
from portal.errors import DomainError
from portal.extensions import db, socketio

log = logging.getLogger(__name__)

# Event names: the one place both Python and static/js agree on.
JOB_UPDATED = "job.updated"
SNAPSHOT = "snapshot"
SESSION_ENDED = "session.ended"
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"

_PENDING = "portal_pending_emits"
_PENDING_EVICTIONS = "portal_pending_evictions"
# Between web processes only: the client manager takes it off before it could reach a browser.
EVICT = "portal.evict"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def session_room(session_id: int) -> str:
    return f"session:{session_id}"


def project_room(project_id: int) -> str:
    return f"project:{project_id}"


def vendor_room(vendor_id: int) -> str:
    return f"vendor:{vendor_id}"


def vendor_session_room(session_id: int) -> str:
    return f"vendor-session:{session_id}"


def emitter():
    """The app's Socket.IO server, or a write-only emitter in a worker process."""
    return current_app.extensions.get("portal_emitter") or socketio


def emit(event_name: str, data: dict, rooms: list[str]) -> None:
    if not rooms:
        return
    payload = {**data, "ts": time.time()}
    try:
        emitter().emit(event_name, payload, to=rooms, namespace="/")
    except Exception:  # a lost live update is recovered by the next snapshot, never fatal
        log.warning("could not emit %s", event_name, exc_info=True)


def emit_after_commit(event_name: str, data: dict, rooms: list[str]) -> None:
    """Emit once the current transaction commits: nobody hears of a change that rolled back."""
    db.session.info.setdefault(_PENDING, []).append((event_name, data, rooms))


def evict_after_commit(room: str, *, ended: bool) -> None:
    """Close the sockets in ``room`` on every web process once the change commits (a socket
    that reconnected before the commit would pass the checks it must now fail)."""
    db.session.info.setdefault(_PENDING_EVICTIONS, []).append((room, ended))


@event.listens_for(Session, "after_commit")
def _emit_pending(sess) -> None:
    if sess.in_nested_transaction():  # a SAVEPOINT released: the transaction goes on
        return
    for event_name, data, rooms in sess.info.pop(_PENDING, []):
        emit(event_name, data, rooms)
    evictions: dict[str, bool] = {}
    for room, ended in sess.info.pop(_PENDING_EVICTIONS, []):
        # Once per room; an ended session wins, so its page is told and reloads.
        evictions[room] = evictions.get(room, False) or ended
    # Ended sessions first: a socket also in a user room closed for a change of access would
    # otherwise go without being told its session is over.
    for room, ended in sorted(evictions.items(), key=lambda item: not item[1]):
        evict(room, ended=ended)


@event.listens_for(Session, "after_rollback")
def _drop_pending(sess) -> None:
    if not sess.in_nested_transaction():  # a savepoint's rollback keeps the outer emits
        sess.info.pop(_PENDING, None)
        sess.info.pop(_PENDING_EVICTIONS, None)


class ClientManager(socketio_lib.RedisManager):
    """The Redis pub/sub manager, able to close a room's sockets on every web process.

    python-socketio carries emits, ``disconnect(sid)``, ``enter_room``/``leave_room`` of one
    sid and ``close_room`` (which only forgets the room) to the other processes. A room's
    sockets are known only to the process serving them, so "close every socket in this room"
    must run in each process: it travels as an emit of ``EVICT`` to the room, through the same
    channel and listener thread as every emit, and each process's manager (this class) handles
    it instead of sending it to browsers. Workers publish it with a write-only instance.
    """

    def _handle_emit(self, message):
        if message.get("event") != EVICT:
            return super()._handle_emit(message)
        if self.server is None or not isinstance(message.get("room"), str):
            return None
        data = message.get("data")
        payload = data[0] if isinstance(data, list) and data else {}
        _evict_here(self.server, message["room"], ended=bool(payload.get("ended")))
        return None


def client_manager(url: str, channel: str, write_only: bool = False) -> ClientManager:
    """The Redis pub/sub manager between Socket.IO servers and emitters.

    Built here rather than from ``message_queue=`` because Flask-SocketIO only recognises
    redis:// URLs, while the embedded Redis listens on a unix socket (unix://).
    """
    return ClientManager(url, channel=channel, write_only=write_only)


def make_worker_emitter(app) -> None:
    """Workers publish through Redis without running a Socket.IO server."""
    if app.config.get("SOCKETIO_MESSAGE_QUEUE"):
        app.extensions["portal_emitter"] = client_manager(
            app.config["SOCKETIO_MESSAGE_QUEUE"], app.config["SOCKETIO_CHANNEL"], write_only=True
        )


@dataclass
class Topic:
    name: str
    permission: str
    handler: Callable[[object, dict], tuple[list[str], dict]]


TOPICS: dict[str, Topic] = {}
# Topics for signed-in vendors (their own session, not a staff user): handler(vendor, params).
VENDOR_TOPICS: dict[str, Topic] = {}


def topic(name: str, permission: str):
    """Register a subscription topic: handler(user, params) -> (rooms, snapshot).

    The handler raises ``PermissionError``, ``LookupError`` or a ``DomainError`` (``NotFound``
    from a ``get_visible``) to refuse.
    """

    def decorator(fn):
        TOPICS[name] = Topic(name, permission, fn)
        return fn

    return decorator


def vendor_topic(name: str):
    """Register a vendor topic: handler(vendor, params) -> (rooms, snapshot).

    Whatever rooms the handler names, a vendor socket joins only its own ``vendor:<id>`` room.
    """

    def decorator(fn):
        VENDOR_TOPICS[name] = Topic(name, "vendor session", fn)
        return fn

    return decorator


def _current_vendor():
    """The vendor of this socket's vendor session, re-read for every event (None if ended)."""
    from portal.vendor_portal import sessions as vendor_sessions  # builds on this module

    vendor_sessions.forget_cached()
    return vendor_sessions.current_vendor()


def id_param(params: dict, name: str) -> int:
    """The id a topic's payload names: a JSON number from 1 to ``inputs.MAX_ID``.

    A boolean, a float, a string, a list or a number past any row is refused with ValueError
    (the subscriber gets "forbidden"), so no handler passes such a value to the database.
    """
    number = inputs.parse_id(params.get(name)) if isinstance(params.get(name), int) else None
    if number is None:
        raise ValueError(f"{name} must be an id")
    return number


def _refuse(message: str) -> dict:
    return {"ok": False, "error": message}


def _on_connect(auth=None):
    # current_user is reloaded from the server-side session row, so a revoked or signed-out
    # browser is refused here and on every later event.
    if current_user.is_authenticated:
        if _two_factor_overdue():
            return False
        join_room(user_room(current_user.id))
        join_room(session_room(session["sid_row"]))
        return True
    vendor = _current_vendor()
    if vendor is None:
        return False
    join_room(vendor_room(vendor.id))
    join_room(vendor_session_room(session["vsid_row"]))
    return True


def _signed_in() -> bool:
    """Re-read the user from the session row for this event, never from a cached value.

    Flask-Login caches the user on ``g``; a socket event must see a revoke made a moment ago.
    """
    g.pop("_login_user", None)
    return current_user.is_authenticated and not _two_factor_overdue()


def _two_factor_overdue() -> bool:
    """A user whose role requires two-factor, out of grace without it, gets no live data."""
    from portal.twofactor import policy

    return policy.overdue(current_user)


class _Refused(Exception):
    def __init__(self, reason: str):
        self.answer = _refuse(reason)


def _resolve(data) -> tuple[Topic, list[str], dict]:
    """Check the user and the topic's permission; return the topic, its rooms and snapshot."""
    if isinstance(data, dict) and str(data.get("topic", "")) in VENDOR_TOPICS:
        return _resolve_vendor(data)
    if not _signed_in():
        disconnect()
        raise _Refused("signed out")
    data = data if isinstance(data, dict) else {}
    found = TOPICS.get(str(data.get("topic", "")))
    if found is None:
        raise _Refused("unknown topic")
    if not current_user.can(found.permission):
        raise _Refused("forbidden")
    try:
        rooms, snapshot = found.handler(current_user, data)
    except (PermissionError, LookupError, ValueError, DomainError):
        raise _Refused("forbidden") from None
    finally:
        db.session.remove()
    return found, rooms, snapshot


def _resolve_vendor(data: dict) -> tuple[Topic, list[str], dict]:
    found = VENDOR_TOPICS[str(data["topic"])]
    try:
        vendor = _current_vendor()
        if vendor is None:
            disconnect()
            raise _Refused("signed out")
        own = vendor_room(vendor.id)
        try:
            rooms, snapshot = found.handler(vendor, data)
        except (PermissionError, LookupError, ValueError, DomainError):
            raise _Refused("forbidden") from None
    finally:
        db.session.remove()
    return found, [room for room in rooms if room == own], snapshot


def _on_subscribe(data):
    """Join the topic's rooms, then read its snapshot.

    In that order, a change committed at any moment is either in the snapshot or heard in the
    room afterwards: read first and join after, and a change landing in between was lost until
    the next one. The first resolve checks the permission and names the rooms; the second,
    after joining, reads the state (topic snapshots are cached or bounded reads).
    """
    try:
        found, rooms, _ = _resolve(data)
    except _Refused as refused:
        return refused.answer
    try:
        for room in rooms:
            join_room(room)
    except ValueError:
        # The socket disconnected while its subscribe was on its way (a page left or
        # reloaded): nobody is there to join or to answer.
        return {"ok": False, "error": "disconnected"}
    try:
        found, _, snapshot = _resolve(data)
    except _Refused as refused:  # access ended between the two reads
        for room in rooms:
            leave_room(room)
        return refused.answer
    return {"ok": True, "topic": found.name, "snapshot": snapshot}


def _on_unsubscribe(data):
    try:
        _, rooms, _ = _resolve(data)
    except _Refused as refused:
        return refused.answer
    for room in rooms:
        leave_room(room)
    return {"ok": True}


def evict(room: str, *, ended: bool) -> None:
    """Close the sockets in ``room`` on every web process.

    ``ended``: their session is over; they are told (the page reloads, to the sign-in page).
    Otherwise the user's access changed: the browser connects again and subscribes anew, and
    each topic checks the permissions the user holds now.
    """
    server = socketio.server
    manager = server.manager if server is not None else current_app.extensions.get("portal_emitter")
    try:
        if isinstance(manager, ClientManager):
            manager.emit(EVICT, {"ended": ended}, room=room, namespace="/")
        elif server is not None:  # one process, no message queue
            _evict_here(server, room, ended=ended)
    except Exception:  # the session row is the authority: a refused socket event still follows
        log.error("could not close the sockets of %s", room, exc_info=True)


def _evict_here(server, room: str, *, ended: bool) -> None:
    """Close the sockets in ``room`` that this process serves."""
    if ended:
        server.emit(SESSION_ENDED, {}, to=room, namespace="/", ignore_queue=True)
    try:
        sids = [sid for sid, _ in server.manager.get_participants("/", room)]
    except (KeyError, ValueError):
        sids = []
    for sid in sids:
        server.disconnect(sid, namespace="/", ignore_queue=True)


def register_handlers(sio: SocketIO) -> None:
    sio.on_event("connect", _on_connect)
    sio.on_event(SUBSCRIBE, _on_subscribe)
    sio.on_event(UNSUBSCRIBE, _on_unsubscribe)
