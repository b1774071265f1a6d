"""The HTTP servers in front of the app, without a ``Server:`` banner.

Naming the server software only helps someone matching it against known vulnerabilities.
Neither server has a setting for it: gunicorn writes ``Server: gunicorn`` in its response class
(``hide_gunicorn_banner``, called from ``gunicorn.conf.py``), Werkzeug's development server
(``flask serve``) writes ``Server: Werkzeug/x Python/y`` in its request handler.
"""

from __future__ import annotations

from werkzeug.serving import WSGIRequestHandler


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


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler, without the ``Server:`` header."""

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() != "server":
            super().send_header(keyword, value)
