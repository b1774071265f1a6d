"""The live dashboard page. Its figures come from the same stored snapshot the socket pushes."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for
from flask_login import current_user

from portal.accounts.guards import permission_required
from portal.dashboard import commands, display, live
from portal.projects import services as projects

bp = Blueprint("dashboard", __name__, url_prefix="/projects/<int:project_id>")
commands.register(bp)  # flask dashboard check | repair


@bp.get("/live", endpoint="live")
@permission_required(live.PERMISSION)
def live_page(project_id: int):
    project = projects.get_visible(current_user, project_id)
    data = live.current(project.id)
    tx_base = ""
    if current_user.can("chain.read"):
        # Failed transactions link to their page only for people allowed to open it.
        tx_base = url_for("chain.transactions", project_id=project.id)
    return render_template(
        "dashboard/live.html",
        project=project,
        snap=display.for_reader(data),
        tx_base=tx_base,
        topic=live.TOPIC,
        number_format=display.number_format(),
        queue_label=display.queue_label,
    )
