"""Vendor pages on the phone: sign in with an SMS code, home, charge, code entry, receipt.

Views parse the form and render; ``portal.vendor_portal.signin`` and
``portal.redemptions.services`` do the work. Every page but sign-in needs a vendor session.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal import inputs, realtime
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import public
from portal.chain import setup
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.extensions import db, limiter
from portal.redemptions import codes, ledger
from portal.redemptions import live as redemption_live
from portal.redemptions import services as redemptions
from portal.redemptions.models import AWAITING
from portal.vendor_portal import sessions, signin
from portal.vendor_portal.forms import ChargeForm, CodeForm, PhoneForm
from portal.vendor_portal.guards import vendor_required
from portal.vendor_portal.sessions import current_vendor

bp = Blueprint("vendor", __name__, url_prefix="/vendor")
SIGN_IN_KEY = "vsignin"

WRONG_CODE = "That code is not right. {left} more {tries} before it stops working."
TOO_MANY = "Too many tries for now. Wait a few minutes, then try again."
OUTCOME_NOTES = {
    codes.LOCKED: "The code was entered wrong too many times and no longer works.",
    codes.EXPIRED: "The code has expired.",
    codes.USED: "This code was used already.",
}


# --- rate limits ------------------------------------------------------------------------------


def _limit(name: str):
    return lambda: current_app.config[name]


def _phone_key() -> str:
    # Per number, whatever address asks: SMS to one phone cannot be pumped from many addresses.
    try:
        return "vendor-phone:" + signin.phone_index(request.form.get("phone", ""))
    except ValidationFailed:
        return "vendor-phone:invalid"


def _attempt_key() -> str:
    return f"vendor-attempt:{session.get(SIGN_IN_KEY)}"


def _vendor_key() -> str:
    return f"vendor-session:{session.get(sessions.ROW_KEY)}"


# --- errors inside vendor pages look like vendor pages ----------------------------------------


def _message(status: int, title: str, message: str):
    db.session.rollback()
    return render_template("vendor/message.html", title=title, message=message), status


@bp.errorhandler(CSRFError)
def _csrf_error(exc):
    return _message(400, "Please try again", "The page was open too long. Go back and reload it.")


@bp.errorhandler(DomainError)
def _domain_error(exc):
    return _message(exc.status, "That did not work", str(exc))


@bp.errorhandler(HTTPException)
def _http_error(exc):
    if exc.code == 429:
        return _message(429, "Please wait", TOO_MANY)
    return _message(exc.code or 500, "That did not work", exc.description or "")


def _field_errors(form, exc: ValidationFailed, fallback: str) -> None:
    for name, message in exc.fields.items():
        getattr(form, name, getattr(form, fallback)).errors.append(message)


# --- sign-in ----------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and (target == "/vendor" or target.startswith("/vendor/")):
        return target
    return url_for("vendor.home")


@bp.route("/sign-in", methods=["GET", "POST"])
@public
@limiter.limit(_limit("VENDOR_CODE_IP_LIMIT"), methods=["POST"])
@limiter.limit(
    _limit("VENDOR_CODE_PHONE_LIMIT"),
    key_func=_phone_key,
    methods=["POST"],
    scope="vendor-phone",
)
def sign_in():
    if current_vendor() is not None:
        return redirect(url_for("vendor.home"))
    form = PhoneForm()
    if form.validate_on_submit():
        try:
            attempt = signin.request_code(form.phone.data)
        except ValidationFailed as exc:
            db.session.rollback()
            _field_errors(form, exc, "phone")
        else:
            db.session.commit()
            session[SIGN_IN_KEY] = attempt.id
            session["vsignin_next"] = _safe_next(request.args.get("next"))
            return redirect(url_for("vendor.sign_in_code"))
    return render_template("vendor/sign_in.html", form=form)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@public
@limiter.limit(_limit("VENDOR_CODE_ENTRY_LIMIT"), methods=["POST"])
def sign_in_code():
    attempt_id = session.get(SIGN_IN_KEY)
    if not attempt_id:
        return redirect(url_for("vendor.sign_in"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            check, vendor = signin.verify(attempt_id, form.code.data)
        except ValidationFailed as exc:
            db.session.rollback()
            _field_errors(form, exc, "code")
        else:
            if check.ok:
                sessions.start(vendor)
                db.session.commit()
                session.pop(SIGN_IN_KEY, None)
                return redirect(_safe_next(session.pop("vsignin_next", None)))
            db.session.commit()
            if check.outcome == codes.WRONG:
                form.code.errors.append(_wrong(check.tries_left))
            else:
                session.pop(SIGN_IN_KEY, None)
                flash(
                    OUTCOME_NOTES.get(check.outcome, "Start again.") + " Ask for a new one.",
                    "error",
                )
                return redirect(url_for("vendor.sign_in"))
    form.code.data = ""
    return render_template("vendor/sign_in_code.html", form=form, resend_form=EmptyForm())


@bp.post("/sign-in/resend")
@public
@limiter.limit(_limit("VENDOR_CODE_IP_LIMIT"))
@limiter.limit(_limit("VENDOR_CODE_PHONE_LIMIT"), key_func=_attempt_key, scope="attempt")
def sign_in_resend():
    attempt_id = session.get(SIGN_IN_KEY)
    if not attempt_id or not EmptyForm().validate_on_submit():
        return redirect(url_for("vendor.sign_in"))
    try:
        signin.resend(attempt_id)
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("If the number is a vendor's, a new code is on its way.", "success")
    return redirect(url_for("vendor.sign_in_code"))


def _wrong(left: int) -> str:
    return WRONG_CODE.format(left=left, tries="try" if left == 1 else "tries")


@bp.post("/sign-out")
@vendor_required
def sign_out():
    if EmptyForm().validate_on_submit():
        row_id = sessions.end_current()
        db.session.commit()
        if row_id:
            realtime.end_room_sockets(realtime.vendor_session_room(row_id))
        flash("You are signed out.", "info")
        return redirect(url_for("vendor.sign_in"))
    return redirect(url_for("vendor.home"))


# --- home, history ----------------------------------------------------------------------------


@bp.get("/")
@vendor_required
def home():
    vendor = current_vendor()
    if redemptions.expire_due(vendor.id):
        db.session.commit()
    return render_template(
        "vendor/home.html",
        vendor=vendor,
        balances=ledger.balances(vendor, with_chain=True),
        recent=ledger.recent(vendor.id),
        projects=redemptions.chargeable_projects(vendor),
        label=redemption_live.label,
        tones=redemption_live.TONES,
        money=_money_of(vendor),
        sign_out_form=EmptyForm(),
    )


@bp.get("/payments")
@vendor_required
def history():
    vendor = current_vendor()
    page = db.paginate(
        ledger.history(vendor.id),
        page=inputs.page_arg(),
        per_page=20,
        error_out=False,
    )
    return render_template(
        "vendor/history.html",
        vendor=vendor,
        page=page,
        label=redemption_live.label,
        tones=redemption_live.TONES,
        money=_money_of(vendor),
    )


def _money_of(vendor):
    chains = {project.id: pc for project, pc in ledger.served_chains(vendor)}

    def money(redemption) -> str:
        return redemption_live.money(redemption.amount, chains.get(redemption.project_id))

    return money


# --- charging ---------------------------------------------------------------------------------


@bp.route("/charge", methods=["GET", "POST"])
@vendor_required
@limiter.limit(
    _limit("VENDOR_CHARGE_LIMIT"),
    key_func=_vendor_key,
    methods=["POST"],
    scope="vendor-charge",
)
def charge():
    vendor = current_vendor()
    options = redemptions.chargeable_projects(vendor)
    form = ChargeForm()
    form.project_id.choices = [(project.id, project.name) for project, _ in options]
    if request.method == "GET":
        chosen = inputs.id_arg("project")
        form.project_id.data = chosen or (options[0][0].id if options else None)
    if options and form.validate_on_submit():
        try:
            project, pc = redemptions.chargeable_project(vendor, form.project_id.data)
            amount = setup.parse_amount(form.amount.data or "", pc.decimals)
            person, method = redemptions.find_beneficiary(
                project, card=form.card.data or "", phone=form.phone.data or ""
            )
            redemption = redemptions.start(vendor, project, pc, person, amount, method)
        except ValidationFailed as exc:
            db.session.rollback()
            _field_errors(form, exc, "amount")
        except DomainError as exc:
            db.session.rollback()
            form.amount.errors.append(str(exc))
        else:
            db.session.commit()
            return redirect(url_for("vendor.code", redemption_id=redemption.id))
    form.card.data = ""  # a card code is a credential: never echoed back
    decimals = {project.id: pc.decimals for project, pc in options}
    symbols = {project.id: pc.symbol for project, pc in options}
    return render_template(
        "vendor/charge.html",
        form=form,
        options=options,
        decimals=decimals,
        symbols=symbols,
    )


def _code_page(vendor, redemption, form):
    return render_template(
        "vendor/code.html",
        redemption=redemption,
        form=form,
        person_ref=ledger.person_ref(redemption),
        amount=redemption_live.money(redemption.amount, setup.state(redemption.project_id)),
        resend_wait=codes.resend_wait(redemption),
        seconds_left=ledger.seconds_left(redemption),
        resend_form=EmptyForm(),
        cancel_form=EmptyForm(),
    )


@bp.route("/payments/<int:redemption_id>/code", methods=["GET", "POST"])
@vendor_required
@limiter.limit(
    _limit("VENDOR_CODE_ENTRY_LIMIT"),
    key_func=_vendor_key,
    methods=["POST"],
    scope="vendor-code",
)
def code(redemption_id: int):
    vendor = current_vendor()
    redemption = redemptions.get_for_vendor(vendor, redemption_id)
    expired = redemptions.expire_if_due(redemption)
    if expired.status != redemption.status:
        db.session.commit()
    redemption = expired
    if redemption.status != AWAITING:
        return redirect(url_for("vendor.receipt", redemption_id=redemption.id))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            result = redemptions.confirm(vendor, redemption.id, form.code.data)
        except ValidationFailed as exc:
            db.session.rollback()
            _field_errors(form, exc, "code")
        else:
            db.session.commit()
            if result.ok:
                return redirect(url_for("vendor.receipt", redemption_id=redemption.id))
            if result.outcome == codes.WRONG:
                form.code.errors.append(_wrong(result.tries_left))
                redemption = result.redemption
            else:
                return redirect(url_for("vendor.receipt", redemption_id=redemption.id))
    form.code.data = ""
    return _code_page(vendor, redemption, form)


@bp.post("/payments/<int:redemption_id>/resend")
@vendor_required
@limiter.limit(_limit("VENDOR_CODE_PHONE_LIMIT"), key_func=_vendor_key, scope="resend")
def resend(redemption_id: int):
    vendor = current_vendor()
    if EmptyForm().validate_on_submit():
        try:
            redemptions.resend(vendor, redemption_id)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(
                "A new code is on its way to the beneficiary. The old one no longer works.",
                "success",
            )
    return redirect(url_for("vendor.code", redemption_id=redemption_id))


@bp.post("/payments/<int:redemption_id>/cancel")
@vendor_required
def cancel(redemption_id: int):
    vendor = current_vendor()
    if EmptyForm().validate_on_submit():
        if redemptions.cancel(vendor, redemption_id):
            db.session.commit()
            flash("Cancelled. Nothing was taken.", "info")
        return redirect(url_for("vendor.receipt", redemption_id=redemption_id))
    return redirect(url_for("vendor.code", redemption_id=redemption_id))


@bp.get("/payments/<int:redemption_id>")
@vendor_required
def receipt(redemption_id: int):
    vendor = current_vendor()
    redemption = redemptions.expire_if_due(redemptions.get_for_vendor(vendor, redemption_id))
    db.session.commit()
    return render_template(
        "vendor/receipt.html",
        vendor=vendor,
        redemption=redemption,
        state=redemption_live.serialize(redemption),
        person_ref=ledger.person_ref(redemption),
        project=ledger.project_of(redemption),
        tx_hash=ledger.tx_hash_of(redemption),
    )


@realtime.vendor_topic("redemptions")
def redemptions_topic(vendor, params: dict):
    """The vendor's own redemptions; with an ``id``, the snapshot of that one."""
    snapshot: dict = {}
    if params.get("id") is not None:
        try:
            found = redemptions.get_for_vendor(vendor, realtime.id_param(params, "id"))
        except NotFound:
            raise LookupError("not this vendor's") from None
        snapshot["redemption"] = redemption_live.serialize(found)
    return [realtime.vendor_room(vendor.id)], snapshot
