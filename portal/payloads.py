"""JSON from outside, checked for size and nesting before any decoder sees it.

The C JSON decoder recurses once per ``[`` or ``{``. A few dependencies (py-evm, py_ecc) raise
the interpreter's recursion limit far above what a thread's stack holds, so a text nested
100,000 deep would overrun the stack and kill the process without a traceback. ``check``
refuses such a text by a linear scan that counts brackets outside strings, so the decoder only
ever sees shallow input. Every entry decodes through here: Flask JSON bodies (``JSONProvider``),
Socket.IO packets (``SocketJSON``, both Engine.IO and Socket.IO layers) and the Kobo webhook.
"""

from __future__ import annotations

import json
import logging
import re

import engineio.json as engineio_json
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Deeper than any document the portal reads (a Kobo submission with nested repeat groups is
# under 10); shallow enough that decoding it, and walking the result, costs nothing.
MAX_DEPTH = 32
# A backstop for text decoded outside a request; request bodies have their own, per-route caps.
MAX_BYTES = 1024 * 1024
# Socket.IO packets and Engine.IO polling bodies: a subscription is a few hundred bytes.
SOCKET_MAX_BYTES = 64 * 1024

# A JSON string, with its closing quote optional: an unterminated string then runs to the end
# of the text rather than failing the match, which keeps the scan linear (a failed match would
# be retried at every later quote).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_OPEN = frozenset("[{")


class PayloadRefused(ValueError):
    """Too large or too deeply nested to decode; ``status`` is the HTTP status to answer with.

    A ``ValueError``, so code that treats undecodable JSON as a bad value (Engine.IO's packet
    decoder, callers of ``json.loads``) does so here too.
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


class BodyRefused(HTTPException):
    """A request body refused by ``check``: answered by the app's error handler.

    Not a ``ValueError``, or ``request.get_json(silent=True)`` would swallow it as "no JSON".
    """

    def __init__(self, refused: PayloadRefused):
        super().__init__(refused.message)
        self.code = refused.status


def depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of ``text`` as the decoder would meet it, counted up to ``limit + 1``.

    Brackets inside strings do not count; escapes inside strings are honoured. Malformed text is
    counted as far as it goes: the decoder stops at the first error, so counting past it only
    errs on the side of refusing.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    level = deepest = 0
    for char in brackets:
        if char in _OPEN:
            level += 1
            if level > deepest:
                deepest = level
                if deepest > limit:
                    break
        elif level:
            level -= 1
    return deepest


def _as_text(data: str | bytes | bytearray) -> str | None:
    """Bytes as the JSON decoder would read them (UTF-8/16/32), or None if they do not decode."""
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode(json.detect_encoding(data), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return None


def check(
    data: str | bytes | bytearray, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> str | None:
    """Raise ``PayloadRefused`` unless ``data`` is small and shallow; return it as text.

    None means the bytes are not text in any JSON encoding: the decoder refuses those itself,
    before parsing anything.
    """
    if len(data) > max_bytes:
        raise PayloadRefused(f"The JSON is over {max_bytes:,} bytes.", status=413)
    text = _as_text(data)
    if text is not None and depth(text, max_depth) > max_depth:
        raise PayloadRefused(f"The JSON is nested more than {max_depth} levels deep.")
    return text


def loads(
    data: str | bytes | bytearray,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    **kwargs,
):
    """``json.loads`` for text from outside: checked first, then decoded."""
    text = check(data, max_bytes=max_bytes, max_depth=max_depth)
    return json.loads(data if text is None else text, **kwargs)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON (``request.get_json`` and ``flask.json.loads``), checked before decoding."""

    def loads(self, s: str | bytes, **kwargs):
        try:
            text = check(s)
        except PayloadRefused as exc:
            raise BodyRefused(exc) from None
        return json.loads(s if text is None else text, **kwargs)


class SocketJSON:
    """The ``json`` module given to the Socket.IO server: decodes every incoming packet.

    Keeps Engine.IO's own guard against huge integer literals.
    """

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(s, *args, **kwargs):
        text = check(s, max_bytes=SOCKET_MAX_BYTES)
        return engineio_json.loads(s if text is None else text, *args, **kwargs)


def guard_socket_server(app, server, path: str = "/socket.io/") -> None:
    """Close the connection that sends an undecodable packet; cap bodies and WebSocket messages.

    ``server`` is the python-socketio server. A packet that fails to decode (refused by
    ``check``, or malformed) raises out of Socket.IO's message handler; Engine.IO would log a
    traceback and keep the connection. Here it is one warning line and the connection closes
    without waiting for the client to poll (Engine.IO's own ``disconnect`` waits, so a client
    that never polls again would hold a server thread for good).
    """
    eio = server.eio
    app.wsgi_app = SocketBodyCap(app.wsgi_app, path, eio.max_http_buffer_size)
    handle = eio.handlers["message"]

    def on_message(eio_sid, data):
        try:
            return handle(eio_sid, data)
        except ValueError as exc:
            reason = exc.message if isinstance(exc, PayloadRefused) else type(exc).__name__
            log.warning("closed a Socket.IO connection after an undecodable packet: %s", reason)
            # Engine.IO's own disconnect() waits for the client to collect the close packet.
            socket = eio.sockets.pop(eio_sid, None)
            if socket is not None:
                socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
            return None

    eio.on("message", on_message)
    _cap_websocket_messages(eio)


class SocketBodyCap:
    """WSGI middleware: a polling body over the cap is answered 413 before Engine.IO sees it.

    Engine.IO refuses it too, but then disconnects the session in a way that blocks the request
    thread until the client polls again, which an attacker never does.
    """

    def __init__(self, wsgi_app, path: str, max_bytes: int):
        self.wsgi_app, self.path, self.max_bytes = wsgi_app, path, max_bytes

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(self.path):
            try:
                declared = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = self.max_bytes + 1
            if declared > self.max_bytes:
                log.warning("refused a Socket.IO body of %d bytes", declared)
                start_response(
                    "413 Request Entity Too Large", [("Content-Type", "text/plain; charset=utf-8")]
                )
                return [b"Packet too large."]
        return self.wsgi_app(environ, start_response)


def _cap_websocket_messages(eio) -> None:
    """Engine.IO checks a WebSocket message's size only once it is whole in memory.

    simple-websocket can stop reading at a size, but Engine.IO's drivers do not pass one (the
    threading driver passes nothing, the gevent driver only its thread, event and selector
    classes): give it the same cap as a polling body.
    """
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI

    driver = eio._async.get("websocket")
    if not (isinstance(driver, type) and issubclass(driver, SimpleWebSocketWSGI)):
        return
    if getattr(driver, "portal_capped", False):
        return

    class CappedWebSocket(driver):
        portal_capped = True

        def __init__(self, handler, server, **kwargs):
            super().__init__(handler, server, **kwargs)
            # simple_websocket.Server(environ, **server_args) is built per connection.
            self.server_args.setdefault("max_message_size", server.max_http_buffer_size)

    eio._async = {**eio._async, "websocket": CappedWebSocket}


def socket_options() -> dict:
    """Options for ``socketio.init_app``: the checked JSON module and the body cap."""
    return {"json": SocketJSON, "max_http_buffer_size": SOCKET_MAX_BYTES}
