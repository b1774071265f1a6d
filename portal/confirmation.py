"""A confirm step for actions that are hard to undo (funding, removing a person from a group or
a project, unassigning a vendor, cancelling a draft), with or without JavaScript.

The form posts as usual. Without ``confirmed=yes`` the view answers with a page that asks the
question and offers a form posting the same fields again, with a fresh CSRF token and
``confirmed=yes``; with JavaScript the browser's dialog asks first and adds the field itself
(``static/js/ui.js``), so one click and one request remain one click and one request.
"""

from __future__ import annotations

from flask import render_template, request

FIELD = "confirmed"
# Never carried over to the confirm form: it brings its own token.
SKIPPED = {"csrf_token", FIELD}


def given() -> bool:
    return request.form.get(FIELD) == "yes"


def page(question: str, detail: str, *, yes: str, back: str, danger: bool = False):
    """The confirm step: the question, what the action does, Yes (the same POST) and Back."""
    fields = [(k, v) for k, v in request.form.items(multi=True) if k not in SKIPPED]
    return render_template(
        "confirm.html",
        question=question,
        detail=detail,
        yes=yes,
        back=back,
        danger=danger,
        action=request.path,
        fields=fields,
    )
