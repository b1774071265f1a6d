"""How large a request body each route accepts; a larger one is refused before it is read.

Every route gets ``MAX_CONTENT_LENGTH`` (small: sign-in, ordinary forms, the API); the few that
take more are named in ``LARGER``. The limit belongs to the request (``PortalRequest``), so it
holds from the first hook that reads the form (the CSRF check) onwards. Werkzeug refuses a body
whose Content-Length is over the limit without reading it; ``refuse_overrun`` also refuses one
that the view would never read, and a body without a declared length (chunked), which Werkzeug
would silently cut at the limit. Browsers and webhook senders always declare the length.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Request, current_app, request
from werkzeug.exceptions import LengthRequired, RequestEntityTooLarge

from portal import payloads

KIB = 1024
MIB = 1024 * KIB


def _import_upload(config) -> int:
    # The file plus the form's other fields and the multipart framing.
    return config["IMPORT_MAX_BYTES"] + 64 * KIB


# Endpoint -> limit in bytes (or a function of the config). Keep this list short.
LARGER: dict[str, int | Callable[[dict], int]] = {
    "imports.new": _import_upload,  # spreadsheet upload
    "disbursements.new": 1 * MIB,  # up to 200,000 characters of reference codes
    "kobo.webhook": payloads.MAX_BYTES,  # one submission, as JSON
    "reconciliation.upload": 8 * MIB,  # a provider statement, CSV or XLSX
    "payout_callbacks.momo_callback": 16 * KIB,  # a transfer's status, as JSON (smaller)
}


def limit_for(endpoint: str | None, config) -> int:
    larger = LARGER.get(endpoint or "")
    if larger is None:
        return config["MAX_CONTENT_LENGTH"]
    return larger(config) if callable(larger) else larger


class PortalRequest(Request):
    """A request whose body limit is its route's."""

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:
            return self._max_content_length
        if not current_app:
            return super().max_content_length
        rule = self.url_rule
        return limit_for(rule.endpoint if rule is not None else None, current_app.config)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def _describe(size: int) -> str:
    if size >= MIB:
        return f"{size / MIB:,.0f} MB"
    return f"{size / KIB:,.0f} KB"


def refused_message(limit: int | None) -> str:
    if limit is None:
        return "This request is too large."
    return f"This request is larger than this page accepts ({_describe(limit)}). Nothing was saved."


def init_app(app: Flask) -> None:
    from portal.web import _render_error

    app.request_class = PortalRequest

    @app.before_request
    def refuse_overrun():
        # Werkzeug refuses only when something reads the body; a view that ignores it would
        # otherwise leave the server to read and discard all of it.
        declared, limit = request.content_length, request.max_content_length
        if declared is not None and limit is not None and declared > limit:
            raise RequestEntityTooLarge(refused_message(limit))
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            raise LengthRequired("Send the request with a Content-Length header.")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        return _render_error(413, refused_message(request.max_content_length))

    @app.errorhandler(payloads.BodyRefused)
    def refused(exc):
        return _render_error(exc.code, exc.description)
