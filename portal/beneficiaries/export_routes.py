"""Beneficiary list exports (CSV, XLSX) with the list page's filters."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, request, stream_with_context, url_for
from flask_login import current_user

from portal import inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries import exports, services
from portal.beneficiaries.models import STATUSES

bp = Blueprint("beneficiary_exports", __name__, url_prefix="/beneficiaries")


def list_query(values) -> services.ListQuery:
    """The list page's filters, from its query string (sent along as hidden form fields)."""
    return services.ListQuery(
        q=inputs.text_arg("q", values=values),
        project_id=inputs.id_arg("project", values),
        group_id=inputs.id_arg("group", values),
        status=inputs.choice_arg("status", STATUSES, values=values),
        sort=inputs.choice_arg("sort", services.SORTS, "newest", values=values),
    )


@bp.post("/export.<fmt>")
@permission_required("beneficiary.read", "beneficiary.export")
def export(fmt: str):
    if fmt not in exports.FORMATS:
        abort(404)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("beneficiaries.index"))
    export = exports.prepare(current_user, list_query(request.form))
    exports.record(export, fmt, exports.count(export))
    chunks = exports.csv_chunks(export) if fmt == "csv" else exports.xlsx_chunks(export)
    return Response(
        stream_with_context(chunks),  # the rows read db.session inside the request
        mimetype=exports.FORMATS[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{exports.filename(fmt)}"',
            "Cache-Control": "no-store",
        },
    )
