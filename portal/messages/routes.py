"""Staff edit the messages sent to beneficiaries, per kind and language, with a preview."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts.guards import permission_required
from portal.audit import services as audit
from portal.i18n import formatting
from portal.i18n.locales import MESSAGE_LOCALES
from portal.messages import kinds, preview, templates
from portal.messages.forms import TemplateForm

bp = Blueprint("messages", __name__, url_prefix="/messages")
PERMISSION = "messages.manage"


def _kind_and_language(kind: str, language: str) -> kinds.Kind:
    if kind not in kinds.KINDS or language not in MESSAGE_LOCALES:
        abort(404)
    return kinds.KINDS[kind]


@bp.get("/")
@permission_required(PERMISSION)
def index():
    rows = []
    for kind in kinds.KINDS.values():
        for language in MESSAGE_LOCALES:
            body, used = templates.text_for(kind.name, language)
            shown = preview.build(kind, used, body)
            rows.append({"kind": kind, "language": language, "used": used, "preview": shown})
    return render_template("messages/index.html", rows=rows)


@bp.route("/<kind>/<language>", methods=["GET", "POST"])
@permission_required(PERMISSION)
def edit(kind: str, language: str):
    found = _kind_and_language(kind, language)
    body, used = templates.text_for(kind, language)
    form = TemplateForm(kind=found, data={"body": body if used == language else ""})
    status = 200
    if form.is_submitted():
        if form.validate():
            if request.form.get("action") == "save":
                templates.save(found, language, form.body.data, current_user.id)
                audit.record(
                    "messages.template_saved",
                    f"Message template {kind} ({language}) saved",
                    target_type="message_template",
                    target_id=f"{kind}:{language}",
                )
                flash(_("Message saved."), "success")
                return redirect(url_for("messages.edit", kind=kind, language=language))
        else:
            status = 400
    text = form.body.data if form.body.data is not None else body
    shown = None if form.errors or not text.strip() else preview.build(found, language, text)
    return render_template(
        "messages/edit.html",
        kind=found,
        language=language,
        form=form,
        preview=shown,
        fallback=used != language,
        placeholders={name: kinds.PLACEHOLDERS[name] for name in found.placeholders},
    ), status


@bp.post("/<kind>/<language>/preview")
@permission_required(PERMISSION)
def preview_json(kind: str, language: str):
    """The preview as the editor's script shows it while staff type; nothing is saved."""
    found = _kind_and_language(kind, language)
    form = TemplateForm(kind=found)
    if not form.validate():
        return jsonify({"ok": False, "errors": form.body.errors}), 422
    shown = preview.build(found, language, form.body.data)
    return jsonify(
        {
            "ok": True,
            "text": shown.text,
            "encoding": shown.length.encoding,
            "characters": shown.length.characters,
            "characters_text": formatting.number(shown.length.characters),
            "segments": shown.length.segments,
            "segments_text": formatting.number(shown.length.segments),
            "cost": shown.cost,
        }
    )
