"""Security headers on every response, limits on what a request may carry, and the login
manager's session check."""

from __future__ import annotations

from flask import Flask, session
from flask_babel import lazy_gettext as _l

from portal import body_limits, payloads, stack_limits
from portal.extensions import login_manager

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class NoStore:
    """WSGI middleware: ``Cache-Control: no-store`` on every response but static files.

    Pages, exports and Socket.IO polling answers may all carry personal data; no browser or
    proxy keeps a copy. Outermost, so Engine.IO's answers (which bypass Flask) get it too.
    """

    def __init__(self, wsgi_app, static_prefix: str):
        self.wsgi_app = wsgi_app
        self.static_prefix = static_prefix.rstrip("/") + "/"

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(self.static_prefix):
            return self.wsgi_app(environ, start_response)

        def no_store(status, headers, exc_info=None):
            headers = [(k, v) for k, v in headers if k.lower() != "cache-control"]
            headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, no_store)


def init_app(app: Flask) -> None:
    stack_limits.apply()
    app.json = payloads.JSONProvider(app)
    body_limits.init_app(app)
    app.wsgi_app = NoStore(app.wsgi_app, app.static_url_path or "/static")

    login_manager.login_view = "accounts.login"
    # Lazy, and made text when flashed: in the language of the page that asked for sign-in.
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.localize_callback = str
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "geolocation=(), microphone=()")
        if app.config.get("HSTS"):
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response


@login_manager.user_loader
def load_user(user_id: str):
    """A user is signed in only while their server-side session row is live."""
    from portal.accounts.sessions import current_session_user

    return current_session_user(user_id, session.get("sid"))
