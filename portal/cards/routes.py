"""Card pages: look up a scanned card, issue / reissue / revoke one, print a group's sheet."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries import groups, reads
from portal.beneficiaries import services as beneficiaries
from portal.cards import services
from portal.cards.forms import LookupForm
from portal.cards.models import ACTIVE
from portal.errors import NotFound

bp = Blueprint("cards", __name__, url_prefix="/cards")


@bp.app_template_global("card_panel")
def card_panel(person) -> dict:
    """What the beneficiary page shows about cards (its template calls this)."""
    return {
        "active": services.active_card(person),
        "history": services.cards_of(person, limit=5),
        "sheet": services.recent_single_print(person),
    }


@bp.app_template_global("group_card_prints")
def group_card_prints(group) -> dict:
    """What the group page shows about card sheets (its template calls this)."""
    return {
        "prints": services.recent_prints_of_group(group),
        "printable": services.printable_count(group),
    }


@bp.app_template_global("card_print_downloadable")
def card_print_downloadable(sheet) -> bool:
    return services.downloadable(sheet) and (not sheet.with_names or current_user.can(services.PII))


@bp.route("/lookup", methods=["GET", "POST"])
@permission_required("beneficiary.read")
def lookup():
    form = LookupForm()
    found = None
    if form.validate_on_submit():
        card = services.lookup(form.token.data)
        form.token.data = ""  # a token is a credential: never echo it back
        person = None
        if card is not None:
            try:
                person = beneficiaries.get_visible(current_user, card.beneficiary_id)
            except NotFound:
                person = None  # the same answer as an unknown card
        if person is None:
            form.token.errors = [_("No card matches this token.")]
        else:
            # Who looked up whose card, whether or not a page then shows personal data.
            reads.record([person], f"card lookup, card {card.status}")
            if card.status == ACTIVE:
                flash(
                    _(
                        "Card …%(hint)s works: it belongs to %(ref)s.",
                        hint=card.token_hint,
                        ref=person.ref,
                    ),
                    "success",
                )
                return redirect(url_for("beneficiaries.show", beneficiary_id=person.id))
            found = {"card": card, "person": person}
    return render_template("cards/lookup.html", form=form, found=found)


@bp.post("/beneficiaries/<int:beneficiary_id>/issue")
@permission_required("beneficiary.read", "card.manage")
def issue(beneficiary_id: int):
    person = beneficiaries.get_visible(current_user, beneficiary_id)
    if EmptyForm().validate_on_submit():
        services.print_single(person, current_user)
        flash(
            _(
                "New card issued to %(ref)s; any older card stops working now. Download and"
                " print it below: the file is deleted after a day.",
                ref=person.ref,
            ),
            "success",
        )
        return redirect(url_for("beneficiaries.show", beneficiary_id=person.id, _anchor="card"))
    return redirect(url_for("beneficiaries.show", beneficiary_id=person.id))


@bp.post("/beneficiaries/<int:beneficiary_id>/revoke")
@permission_required("beneficiary.read", "card.manage")
def revoke(beneficiary_id: int):
    person = beneficiaries.get_visible(current_user, beneficiary_id)
    if EmptyForm().validate_on_submit():
        card = services.revoke_active(person)
        flash(_("Card …%(hint)s revoked: it no longer works.", hint=card.token_hint), "success")
    return redirect(url_for("beneficiaries.show", beneficiary_id=person.id, _anchor="card"))


@bp.post("/groups/<int:group_id>/print")
@permission_required("beneficiary.read", "card.manage")
def print_group(group_id: int):
    group = groups.get_visible(current_user, group_id)
    if EmptyForm().validate_on_submit():
        sheet = services.request_group_print(group, current_user)
        flash(
            _(
                "Printing cards as job %(job)s. When it finishes, the old cards of these"
                " people stop working.",
                job=sheet.job_id,
            ),
            "success",
        )
    return redirect(url_for("groups.show", group_id=group.id, _anchor="cards"))


@bp.get("/prints/<int:print_id>.pdf")
@permission_required("beneficiary.read", "card.manage")
def download(print_id: int):
    sheet, chunks = services.open_pdf(current_user, print_id)
    filename = sheet.file.filename
    return Response(
        stream_with_context(chunks),
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
