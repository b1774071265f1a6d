"""The HTTP servers in front of the app: which Socket.IO async mode, and no ``Server:`` banner.

Async mode: ``SOCKETIO_ASYNC_MODE`` "auto" (the default) follows the server the app runs in.
gunicorn's gevent worker (the Procfile) patches the standard library before it loads the app,
so there the mode is "gevent": every connection a greenlet, thousands per process. Anywhere
else (``flask serve``, ``make run``, tests) it is "threading". A mode named explicitly is taken
as it is, and "gevent" is checked (``portal.cooperative``) before the app serves.


Naming the server software only helps someone matching it against known vulnerabilities.
Neither server has a setting for it: gunicorn writes ``Server: gunicorn`` in its response class
(``hide_gunicorn_banner``, called from ``gunicorn.conf.py``), Werkzeug's development server
(``flask serve``) writes ``Server: Werkzeug/x Python/y`` in its request handler.
"""

from __future__ import annotations

import re

from werkzeug.serving import WSGIRequestHandler

ASYNC_MODES = ("threading", "gevent")


def async_mode(configured: str | None) -> str:
    """The Socket.IO async mode for ``SOCKETIO_ASYNC_MODE`` (see the module's note)."""
    from portal.cooperative import gevent_patched

    mode = (configured or "auto").strip().lower()
    if mode == "auto":
        return "gevent" if gevent_patched("socket") else "threading"
    if mode not in ASYNC_MODES:
        raise RuntimeError(
            f"SOCKETIO_ASYNC_MODE must be auto, {' or '.join(ASYNC_MODES)}; got {configured!r}"
        )
    return mode


def check_worker(worker) -> None:
    """gunicorn's ``post_worker_init``: a gevent worker must serve the app in gevent mode.

    "auto" resolves to threading when the app was loaded before the patch (--preload, or an
    import of the app in gunicorn.conf.py); threading mode on gevent's loop would still block
    it in the database driver. Raising here fails the boot: gunicorn stops with exit code 3.
    """
    from gunicorn.workers.ggevent import GeventWorker

    from portal.cooperative import BlockingDriver
    from portal.extensions import socketio

    if not isinstance(worker, GeventWorker):
        return
    server = socketio.server
    mode = server.eio.async_mode if server is not None else None
    if mode != "gevent":
        raise BlockingDriver(
            f"gunicorn's gevent worker serves this app in {mode!r} mode: the app was imported "
            "before gevent patched the standard library (--preload, or an import in "
            "gunicorn.conf.py), or SOCKETIO_ASYNC_MODE names another mode. Remove --preload "
            "and leave SOCKETIO_ASYNC_MODE at auto (or gevent)."
        )


def _not_server(line: str) -> bool:
    return not line.lower().startswith("server:")


def hide_gunicorn_banner() -> None:
    """Drop the ``Server:`` line from gunicorn's HTTP/1 response head.

    Relies on gunicorn's ``Response.default_headers`` (the version is pinned; a test starts
    the Procfile's command and looks at the headers).
    """
    from gunicorn.http import wsgi

    original = wsgi.Response.default_headers
    if getattr(original, "portal_no_banner", False):
        return

    def default_headers(self):
        return [line for line in original(self) if _not_server(line)]

    default_headers.portal_no_banner = True
    wsgi.Response.default_headers = default_headers


# An emailed link's token (portal/accounts/links.py) in a request line.
_LINK_TOKEN = re.compile(r"(/t/)[^\s?#/]+")


def redact_request_line(line: str) -> str:
    """The request line as logged: an emailed link's token replaced, so logs open no account."""
    return _LINK_TOKEN.sub(r"\1[token]", line)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler, without the ``Server:`` header, and without link tokens in
    its request log."""

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() != "server":
            super().send_header(keyword, value)

    def log_request(self, code="-", size="-") -> None:
        # Werkzeug logs the path (the request line when the path is missing): both redacted.
        saved = {
            name: getattr(self, name) for name in ("path", "requestline") if hasattr(self, name)
        }
        for name, value in saved.items():
            setattr(self, name, redact_request_line(value))
        try:
            super().log_request(code, size)
        finally:
            for name, value in saved.items():
                setattr(self, name, value)
