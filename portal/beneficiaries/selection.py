"""Acting on people chosen on the list: add to or remove from a group or a project, or give
each a new card; one person at a time through the services that do it for one, so that each
gets their own outcome (done, already so, or why not)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import inputs
from portal.beneficiaries import groups, services
from portal.beneficiaries.models import Beneficiary
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.projects import services as projects
from portal.transactions import attempt

# At most this many people at once: a page of the list is 25; a request stays short.
MAX_PEOPLE = 100
ACTIONS = {
    "add": _l("Add to"),
    "remove": _l("Remove from"),
    "cards": _l("Give new cards"),
}
# What each action needs beyond seeing the list.
PERMISSIONS = {"add": "beneficiary.manage", "remove": "beneficiary.manage", "cards": "card.manage"}


class SelectionError(DomainError):
    status = 400


@dataclass
class Target:
    kind: str  # "group" or "project"
    obj: object

    @property
    def label(self) -> str:
        if self.kind == "group":
            return _(
                "group %(group)s (%(project)s)", group=self.obj.name, project=self.obj.project.name
            )
        return _("project %(project)s", project=self.obj.name)


@dataclass
class Outcome:
    person: Beneficiary | None
    ref: str
    done: bool
    message: str
    print_id: int | None = None


@dataclass
class Result:
    action: str
    target: Target | None
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(1 for o in self.outcomes if o.done)

    @property
    def not_done(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.done]


def parse_ids(values: list[str]) -> list[int]:
    ids = []
    for value in values:
        number = inputs.parse_id(value)
        if number is not None and number not in ids:
            ids.append(number)
    if not ids:
        raise SelectionError(_("Choose at least one person on the list."))
    if len(ids) > MAX_PEOPLE:
        raise SelectionError(_("Choose at most %(num)s people at a time.", num=MAX_PEOPLE))
    return ids


def parse_target(user, action: str, value: str) -> Target | None:
    """``g-<id>`` or ``p-<id>``, one the user may see; None for cards (no target)."""
    if action == "cards":
        return None
    kind, _dash, number = (value or "").partition("-")
    target_id = inputs.parse_id(number)
    if kind not in ("g", "p") or target_id is None:
        raise SelectionError(_("Choose the group or project."))
    if kind == "g":
        return Target("group", groups.get_visible(user, target_id))
    return Target("project", projects.get_visible(user, target_id))


def people(user, ids: list[int]) -> list[tuple[int, Beneficiary | None]]:
    """Each id with the person, or None when the user may not see them."""
    found = {
        p.id: p for p in db.session.scalars(services.visible(user).where(Beneficiary.id.in_(ids)))
    }
    return [(pk, found.get(pk)) for pk in ids]


def apply(user, action: str, target: Target | None, chosen) -> Result:
    """Do ``action`` for each person, each in a savepoint: one refusal undoes only its own."""
    result = Result(action, target)
    for pk, person in chosen:
        if person is None:
            result.outcomes.append(Outcome(None, f"#{pk}", False, _("Not found, or not yours.")))
            continue
        try:
            with attempt():
                outcome = _one(user, action, target, person)
        except DomainError as exc:
            outcome = Outcome(person, person.ref, False, str(exc))
        result.outcomes.append(outcome)
    return result


def _one(user, action: str, target: Target | None, person: Beneficiary) -> Outcome:
    if action == "cards":
        from portal.cards import services as cards

        sheet = cards.print_single(person, user)
        return Outcome(person, person.ref, True, _("New card issued."), print_id=sheet.id)
    if target.kind == "group":
        if action == "add":
            added = groups.add_members(target.obj, [person])
            return Outcome(person, person.ref, True, _("Added.") if added else _("Already in it."))
        removed = groups.remove_member(target.obj, person)
        return Outcome(person, person.ref, True, _("Removed.") if removed else _("Was not in it."))
    if action == "add":
        added = services.add_to_project(person, target.obj)
        return Outcome(person, person.ref, True, _("Added.") if added else _("Already in it."))
    removed = services.remove_from_project(person, target.obj)
    return Outcome(person, person.ref, True, _("Removed.") if removed else _("Was not in it."))


def check_allowed(user, action: str) -> None:
    if action not in ACTIONS:
        raise SelectionError(_("Choose what to do with the people chosen."))
    if not user.can(PERMISSIONS[action]):
        raise NotFound(_("Your role may not do this."))


def allowed_actions(user) -> list[tuple[str, str]]:
    return [(k, label) for k, label in ACTIONS.items() if user.can(PERMISSIONS[k])]
