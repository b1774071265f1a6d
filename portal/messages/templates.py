"""Template texts: which one applies to a beneficiary's language, checking a text staff typed,
and filling it in.

A placeholder is a name in braces (``{amount}``); ``{{`` and ``}}`` write a brace. Only the
names the kind offers are allowed, without format specs or attribute access, so a template can
neither show something it was not given nor fail at send time.
"""

from __future__ import annotations

import string

from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.i18n.locales import DEFAULT
from portal.messages.kinds import KINDS, Kind
from portal.messages.models import MessageTemplate
from portal.timeutil import utcnow

MAX_BODY = 1000  # about 15 UCS-2 segments: well past what anyone should send


class TemplateProblem(ValueError):
    """What is wrong with a template text, in words for the editor's field error."""


def problems(kind: Kind, body: str) -> list[str]:
    """Everything wrong with ``body`` as a template of ``kind``; empty when it can be saved."""
    found = []
    if not body.strip():
        return [_("Write the message.")]
    if len(body) > MAX_BODY:
        found.append(_("At most %(n)s characters.", n=MAX_BODY))
    try:
        names = _names(body)
    except TemplateProblem as exc:
        return [*found, str(exc)]
    unknown = sorted(set(names) - set(kind.placeholders))
    if unknown:
        found.append(
            _(
                "Unknown placeholder: %(names)s. This message can use %(allowed)s.",
                names=", ".join("{" + n + "}" for n in unknown),
                allowed=", ".join("{" + n + "}" for n in kind.placeholders),
            )
        )
    missing = [n for n in kind.required if n not in names]
    if missing:
        found.append(
            _(
                "The message must contain %(names)s.",
                names=", ".join("{" + n + "}" for n in missing),
            )
        )
    return found


def _names(body: str) -> list[str]:
    names = []
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError:
        raise TemplateProblem(
            _("A brace is not closed. Write placeholders as {amount}; write {{ for a brace.")
        ) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise TemplateProblem(
                _("Write placeholders as a plain name in braces, such as {amount}.")
            )
        names.append(name)
    return names


def stored(kind: str, language: str) -> MessageTemplate | None:
    return db.session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.kind == kind, MessageTemplate.language == language
        )
    )


def text_for(kind: str, language: str | None) -> tuple[str, str]:
    """``(text, language)`` of the template that applies: the language's own, else English.

    The database rows are the truth; the defaults in ``kinds`` cover a database not seeded
    (tests build tables without migrations) and a language nobody wrote yet.
    """
    for code in dict.fromkeys((language or DEFAULT, DEFAULT)):
        row = stored(kind, code)
        if row is not None:
            return row.body, code
        if code in KINDS[kind].defaults:
            return KINDS[kind].defaults[code], code
    raise KeyError(kind)


def fill(body: str, values: dict[str, str]) -> str:
    """The template with its placeholders replaced; a saved template names only known ones."""
    return body.format_map(values)


def save(kind: Kind, language: str, body: str, user_id: int | None) -> MessageTemplate:
    """Store the text (checked again here: the form is not the only caller)."""
    found = problems(kind, body)
    if found:
        raise TemplateProblem(" ".join(found))
    row = stored(kind.name, language)
    if row is None:
        row = MessageTemplate(kind=kind.name, language=language, body=body)
        db.session.add(row)
    row.body = body
    row.updated_by_id = user_id
    row.updated_at = utcnow()
    db.session.flush()
    return row
