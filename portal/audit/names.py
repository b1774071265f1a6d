"""Names in the audit log: "User 3" and "Vendor 4" read as the people and shops they are.

Entries are written with ids only (the log is hash-chained and must not hold personal data), so
names are put in when a page is shown, for the reader looking at it: a staff member's name to
every audit reader (their email to those who manage users), a vendor's name to those who see
vendors, a project's or group's name to those who see it, a beneficiary's name only to holders
of ``beneficiary.pii.read`` (a masked form for others). One query per kind of name for the whole
page, however many entries it has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.audit import actions
from portal.extensions import db

# "User 3", "vendor 4", "project 12", "group 2", "beneficiary BX7…" as services write them.
MENTION = re.compile(
    r"\b(?P<kind>[Uu]ser|[Vv]endor|[Pp]roject|[Gg]roup)s? (?P<id>\d{1,12})\b"
    r"|\b(?P<bkind>[Bb]eneficiary) (?P<ref>B[A-Z0-9]{6,15})\b"
)
ACTOR = re.compile(r"^(?P<kind>user|vendor):(?P<id>\d{1,12})$")
ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
# "Chain transaction 7 (deploy.contract) confirmed": the purpose is a code name of the chain step.
TX_PURPOSE = re.compile(r"\b(?:Chain transaction|Transaction) (\d{1,12}) \([\w.:-]{1,60}\)")

ACTORS = {"system": _l("The portal (automatic)"), "anonymous": _l("Someone not signed in")}


@dataclass
class _Wanted:
    ids: dict[str, set[int]] = field(
        default_factory=lambda: {"user": set(), "vendor": set(), "project": set(), "group": set()}
    )
    refs: set[str] = field(default_factory=set)


def _collect(entries) -> _Wanted:
    wanted = _Wanted()
    for entry in entries:
        actor = ACTOR.match(entry.actor_label or "")
        if actor:
            wanted.ids[actor["kind"]].add(int(actor["id"]))
        for m in MENTION.finditer(entry.summary or ""):
            if m["kind"]:
                wanted.ids[m["kind"].lower()].add(int(m["id"]))
            else:
                wanted.refs.add(m["ref"])
    return wanted


def _pairs(query) -> dict:
    return {key: name for key, name in db.session.execute(query)}


def _users(ids: set[int], reader) -> dict[int, str]:
    from portal.accounts.models import User

    if not ids:
        return {}
    with_email = reader.can("user.manage")
    rows = db.session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
    return {uid: f"{name} ({email})" if with_email else name for uid, name, email in rows}


def _vendors(ids: set[int], reader) -> dict[int, str]:
    from portal.vendors.models import Vendor

    if not ids or not reader.can("vendor.read"):
        return {}
    return _pairs(select(Vendor.id, Vendor.name).where(Vendor.id.in_(ids)))


def _projects(ids: set[int], reader) -> dict[int, str]:
    from portal.projects.models import Project
    from portal.projects.services import visible_project_ids

    visible = visible_project_ids(reader)
    ids = ids if visible is None else ids & visible
    if not ids:
        return {}
    return _pairs(select(Project.id, Project.name).where(Project.id.in_(ids)))


def _groups(ids: set[int], reader) -> dict[int, str]:
    from portal.beneficiaries.models import BeneficiaryGroup
    from portal.projects.services import visible_project_ids

    if not ids or not reader.can("beneficiary.read"):
        return {}
    query = select(BeneficiaryGroup.id, BeneficiaryGroup.name).where(BeneficiaryGroup.id.in_(ids))
    visible = visible_project_ids(reader)
    if visible is not None:
        query = query.where(BeneficiaryGroup.project_id.in_(visible))
    return _pairs(query)


def _people(refs: set[str], reader) -> dict[str, str]:
    from portal.beneficiaries import reads
    from portal.beneficiaries.models import Beneficiary
    from portal.redemptions.payer_names import initials

    if not refs or not reader.can("beneficiary.read"):
        return {}
    rows = db.session.scalars(
        select(Beneficiary).options(joinedload(Beneficiary.pii)).where(Beneficiary.ref.in_(refs))
    )
    people = [p for p in rows if p.pii is not None]
    if not reader.can("beneficiary.pii.read"):
        return {p.ref: initials(p.pii.name) for p in people}
    reads.record(people, "audit log")  # a name shown is personal data read, as on any page
    return {p.ref: p.pii.name for p in people}


@dataclass
class Shown:
    """An entry as the reader sees it."""

    who: str
    summary: str
    action: str = ""  # the action's label in the reader's language


def resolve(entries: Iterable, reader) -> dict[int, Shown]:
    """Entry id → who and summary with names put in, for ``reader``; five queries at most."""
    entries = list(entries)
    wanted = _collect(entries)
    names = {
        "user": _users(wanted.ids["user"], reader),
        "vendor": _vendors(wanted.ids["vendor"], reader),
        "project": _projects(wanted.ids["project"], reader),
        "group": _groups(wanted.ids["group"], reader),
    }
    people = _people(wanted.refs, reader)
    details = reader.can("chain.details.read")

    def mention(m: re.Match) -> str:
        if m["kind"]:
            name = names[m["kind"].lower()].get(int(m["id"]))
            return m[0] if name is None else f"{m['kind']} “{name}”"
        name = people.get(m["ref"])
        return m[0] if name is None else f"{m['bkind']} {name} ({m['ref']})"

    shown = {}
    for entry in entries:
        summary = MENTION.sub(mention, entry.summary or "")
        if not details:  # addresses and the chain's step names are on-chain details
            summary = ADDRESS.sub(_("(address)"), summary)
            step = _("Payment network step %(id)s", id="\\1")
            summary = TX_PURPOSE.sub(step, summary)
        shown[entry.id] = Shown(
            who=_who(entry.actor_label or "", names),
            summary=summary,
            action=actions.label(entry.action),
        )
    return shown


def _who(label: str, names: dict[str, dict[int, str]]) -> str:
    if label in ACTORS:
        return str(ACTORS[label])
    actor = ACTOR.match(label)
    if actor is None:
        return label
    kind, key = actor["kind"], int(actor["id"])
    name = names[kind].get(key)
    if name is None:
        return f"{kind.capitalize()} {key}"
    return name if kind == "user" else _("Vendor “%(name)s”", name=name)
