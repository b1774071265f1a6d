"""Blueprints, error pages and template helpers."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from portal import inputs
from portal.errors import DomainError
from portal.extensions import db

# Titles of error pages and of API problem bodies, in the reader's language (a problem's
# ``type`` and ``status`` are what programs read).
ERROR_TITLES = {
    400: _l("That request could not be understood"),
    401: _l("Please sign in"),
    403: _l("You do not have access to this"),
    404: _l("Page not found"),
    405: _l("Not allowed"),
    409: _l("That cannot be done now"),
    411: _l("Length required"),
    413: _l("Too large"),
    429: _l("Too many requests"),
    500: _l("Something went wrong on our side"),
}
ERROR_TITLE = _l("Error")
# Werkzeug's standard descriptions, for the statuses people meet, in their language.
DESCRIPTIONS = {
    400: _l("The browser (or proxy) sent a request that this server could not understand."),
    401: _l("Sign in to see this page."),
    403: _l("Your role does not allow this. Ask an administrator if you need it."),
    404: _l("There is no page at this address. Check the link, or start from the home page."),
    405: _l("This page cannot be used that way."),
    413: _l("What was sent is too large."),
    429: _l("Too many tries from here for now. Wait a few minutes and try again."),
}


def _title(status: int) -> str:
    return str(ERROR_TITLES.get(status, ERROR_TITLE))


def wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def problem(status: int, detail: str):
    """An RFC 9457 problem body for API clients."""
    body = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    return jsonify(body), status, {"Content-Type": "application/problem+json"}


def _render_error(status: int, detail: str):
    db.session.rollback()
    title = _title(status)
    if wants_json():
        return problem(status, detail)
    return render_template("errors/error.html", status=status, title=title, detail=detail), status


def _constraint(exc: IntegrityError) -> str:
    """Which rule the database enforced: the constraint's name (PostgreSQL) or SQLite's
    "UNIQUE constraint failed: table.column" — never the values, which may be personal."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    text = str(exc.orig).splitlines()[0] if exc.orig is not None else ""
    return text if "constraint failed" in text else type(exc.orig).__name__


def register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return _render_error(
            400, _("The form expired or was sent from elsewhere. Go back, reload and try again.")
        )

    @app.errorhandler(DomainError)
    def domain_error(exc):
        return _render_error(exc.status, str(exc))

    @app.errorhandler(IntegrityError)
    def conflict(exc):
        # Two requests changed the same thing at once and the database kept the first.
        app.logger.warning(
            "integrity conflict on %s %s (%s)", request.method, request.path, _constraint(exc)
        )
        return _render_error(
            409, _("Someone else changed this at the same moment. Reload the page and try again.")
        )

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return _render_error(exc.code or 500, _description(exc))

    @app.errorhandler(Exception)
    def unexpected(exc):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _render_error(500, _("The error was logged. Please try again in a moment."))


def _description(exc: HTTPException) -> str:
    """The sentence under the title: the view's own (an ``abort(400, "...")``), or werkzeug's
    standard one for the status, in the reader's language."""
    if exc.code == 429:  # Flask-Limiter's description is the limit's own notation
        return str(DESCRIPTIONS[429])
    standard = type(exc).description
    if exc.description and exc.description != standard:
        return str(exc.description)
    if exc.code in DESCRIPTIONS:
        return str(DESCRIPTIONS[exc.code])
    return exc.description or ""


def page_url(page: int) -> str:
    args = request.args.to_dict()
    args["page"] = page
    return f"{request.path}?{urlencode(args)}"


def register_template_helpers(app: Flask) -> None:
    from portal.accounts.permissions import PERMISSIONS
    from portal.money import amounts

    def can(permission: str) -> bool:
        return current_user.is_authenticated and current_user.can(permission)

    def has_endpoint(name: str) -> bool:
        return name in app.view_functions

    # Globals rather than a context processor, so that imported macros see them too.
    app.jinja_env.globals.update(
        can=can, page_url=page_url, ALL_PERMISSIONS=PERMISSIONS, has_endpoint=has_endpoint
    )

    # Every amount on a page is written by the one module that also reads typed amounts.
    if app.config.get("AMOUNT_LOCALE", "en") not in amounts.LOCALES:
        raise RuntimeError(f"AMOUNT_LOCALE must be one of {', '.join(amounts.LOCALES)}")
    app.add_template_filter(amounts.format, "amount")
    app.add_template_filter(amounts.money, "money")

    register_language_helpers(app)


def register_language_helpers(app: Flask) -> None:
    """Dates, counts and language names in the page's locale; the page's ``lang`` and ``dir``."""
    from flask_babel import get_locale

    from portal.i18n import formatting, js_strings, locales, selection, statuses
    from portal.i18n.forms import LanguageForm

    app.add_template_filter(formatting.when, "dt")
    app.add_template_filter(formatting.day, "d")
    app.add_template_filter(formatting.short_when, "when_short")
    app.add_template_filter(formatting.number, "number")
    app.add_template_filter(formatting.digits, "number_text")
    app.add_template_filter(locales.language_name, "language_name")
    app.jinja_env.globals.update(
        page_locale=lambda: str(get_locale() or locales.DEFAULT),
        page_dir=selection.text_direction,
        js_strings=js_strings.catalog,
        language_form=LanguageForm,
        status_label=statuses.status_label,
    )


class IdConverter(IntegerConverter):
    """``<int:...>`` in a route: ASCII digits up to the largest id, else the route does not match.

    Werkzeug's own takes any number of digits, and a 30-digit id is an error in PostgreSQL
    rather than a missing row.
    """

    regex = r"[0-9]{1,10}"

    def __init__(self, url_map, **kwargs):
        kwargs.setdefault("max", inputs.MAX_ID)
        super().__init__(url_map, **kwargs)


def init_app(app: Flask) -> None:
    # Before any blueprint: rules compile their converters when they are added.
    app.url_map.converters["int"] = IdConverter
    app.before_request(inputs.check_query_string)
    from portal.accounts.invitation_routes import bp as invitations_bp
    from portal.accounts.lifecycle_routes import bp as lifecycle_bp
    from portal.accounts.link_routes import bp as links_bp
    from portal.accounts.routes import bp as accounts_bp
    from portal.approvals.routes import bp as approvals_bp
    from portal.audit.routes import bp as audit_bp
    from portal.beneficiaries.export_routes import bp as exports_bp
    from portal.beneficiaries.group_routes import bp as groups_bp
    from portal.beneficiaries.routes import bp as beneficiaries_bp
    from portal.campaigns.routes import bp as campaigns_bp
    from portal.cards.routes import bp as cards_bp
    from portal.chain.routes import bp as chain_bp
    from portal.chain.routes import wallet_bp
    from portal.comms.inbound_routes import bp as inbound_bp
    from portal.comms.log_routes import bp as delivery_log_bp
    from portal.comms.receipt_routes import bp as comms_receipts_bp
    from portal.comms.routes import bp as comms_bp
    from portal.dashboard.routes import bp as dashboard_bp
    from portal.disbursements.routes import bp as disbursements_bp
    from portal.grievances import vendor_pages as _vendor_grievance_pages  # noqa: F401
    from portal.grievances.routes import bp as grievances_bp
    from portal.i18n import vendor_pages as _vendor_language_page  # noqa: F401 (its route)
    from portal.i18n.routes import bp as i18n_bp
    from portal.imports.kobo_routes import bp as kobo_bp
    from portal.imports.routes import bp as imports_bp
    from portal.jobs.routes import bp as jobs_bp
    from portal.ledger.routes import bp as ledger_bp
    from portal.main import bp as main_bp
    from portal.messages.routes import bp as messages_bp
    from portal.payouts import vendor_pages as _vendor_payout_pages  # noqa: F401 (its routes)
    from portal.payouts.routes import bp as payouts_bp
    from portal.payouts.routes import callback_bp as payout_callbacks_bp
    from portal.projects.routes import bp as projects_bp
    from portal.reconciliation.routes import bp as reconciliation_bp
    from portal.settings.routes import bp as settings_bp
    from portal.settlements import vendor_pages as _vendor_settlement_pages  # noqa: F401
    from portal.settlements.routes import bp as settlements_bp
    from portal.twofactor.routes import bp as twofactor_bp
    from portal.vendor_portal.routes import bp as vendor_portal_bp
    from portal.vendors.routes import bp as vendors_bp

    for bp in (
        main_bp,
        accounts_bp,
        links_bp,
        invitations_bp,
        projects_bp,
        beneficiaries_bp,
        groups_bp,
        exports_bp,
        cards_bp,
        chain_bp,
        wallet_bp,
        disbursements_bp,
        dashboard_bp,
        imports_bp,
        kobo_bp,
        vendors_bp,
        jobs_bp,
        audit_bp,
        settings_bp,
        comms_bp,
        vendor_portal_bp,
        approvals_bp,
        payouts_bp,
        payout_callbacks_bp,
        reconciliation_bp,
        ledger_bp,
        settlements_bp,
        twofactor_bp,
        lifecycle_bp,
        inbound_bp,
        grievances_bp,
        i18n_bp,
        messages_bp,
        campaigns_bp,
        delivery_log_bp,
        comms_receipts_bp,
    ):
        app.register_blueprint(bp)
    register_errors(app)
    register_template_helpers(app)
