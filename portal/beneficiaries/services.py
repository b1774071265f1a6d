"""Enrolling, finding, editing and assigning beneficiaries.

Users see a beneficiary only through a project they may see (``project.all`` sees everyone);
exact search by phone or national ID goes through the blind index, never a decrypting scan.
"""

from __future__ import annotations

import json
import math
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, any_, delete, exists, func, or_, select, union
from sqlalchemy.exc import IntegrityError

from portal import dateranges, events, inputs
from portal.beneficiaries import name_search, normalize
from portal.beneficiaries.models import (
    STATUSES,
    Beneficiary,
    BeneficiaryGroup,
    BeneficiaryPII,
    GroupMember,
    ProjectBeneficiary,
)
from portal.crypto import blind_index
from portal.errors import Conflict, NotFound
from portal.extensions import db
from portal.projects import links
from portal.projects import services as projects
from portal.projects.models import Project
from portal.settings.services import default_country

PII_FIELDS = ("name", "phone", "national_id", "date_of_birth", "location")
RECORD_FIELDS = ("gender", "language", "status", "consent_at", "retention_until")
# Enrolment order is the id order (one sequence, drawn as people are enrolled). Sorting on the
# key rather than created_at lets PostgreSQL merge the key index with project_beneficiaries'
# (project_id, beneficiary_id) index, instead of probing a project for each row in date order:
# with 100,000 people, 60 ms down to 5 for a project imported before the others. "status" has
# the index ix_beneficiaries_status_id (status, id DESC); references are unique.
#
# Each sort is a key of (column, descending) pairs ending in a unique column, so that one row's
# values say exactly where a page starts or ends: deep pages are found by those values (keyset
# pagination, see ``list_page``), not by counting rows off from the top.
KEYS = {
    "newest": ((Beneficiary.id, True),),
    "oldest": ((Beneficiary.id, False),),
    "ref": ((Beneficiary.ref, False),),
    "status": ((Beneficiary.status, False), (Beneficiary.id, True)),
}
# The orders as the list's menu names them.
SORT_LABELS = {
    "newest": _l("Newest first"),
    "oldest": _l("Oldest first"),
    "ref": _l("Reference"),
    "status": _l("Status"),
}
SORTS = {
    name: tuple(column.desc() if descending else column.asc() for column, descending in key)
    for name, key in KEYS.items()
}
_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


# Each random byte maps to one of 32 symbols; 256 is a multiple of 32, so all are equally likely.
_REF_TABLE = bytes((_REF_ALPHABET * 8).encode())


def new_ref() -> str:
    # 11 symbols of 32 (55 bits): a million-row import has a ~1-in-70,000 chance of one clash.
    # translate() keeps this at C speed: imports make a reference per row.
    return "B" + secrets.token_bytes(11).translate(_REF_TABLE).decode()


def _pii_values(data: dict) -> dict:
    """Validate and normalise the personal fields; raise InvalidValue naming the field."""
    name = (data.get("name") or "").strip()
    if not name:
        raise normalize.InvalidValue("name", "A name is required.")
    phone = normalize.phone_e164(data.get("phone") or "", default_country())
    nid = normalize.national_id(data.get("national_id"))
    return {
        "name": name,
        "phone": phone,
        "national_id": nid,
        "date_of_birth": normalize.date_of_birth(data.get("date_of_birth")),
        "location": (data.get("location") or "").strip() or None,
        "phone_index": blind_index("phone:" + phone),
        "national_id_index": blind_index("nid:" + nid) if nid else None,
    }


def _ensure_unique(values: dict, exclude_id: int | None = None) -> None:
    checks = [("phone", BeneficiaryPII.phone_index, values["phone_index"])]
    if values["national_id_index"]:
        checks.append(
            ("national_id", BeneficiaryPII.national_id_index, values["national_id_index"])
        )
    for field, column, value in checks:
        query = select(BeneficiaryPII.beneficiary_id).where(column == value)
        if exclude_id is not None:
            query = query.where(BeneficiaryPII.beneficiary_id != exclude_id)
        found = db.session.scalar(query)
        if found is not None:
            label = "phone number" if field == "phone" else "national ID"
            error = normalize.InvalidValue(
                field, f"A beneficiary with this {label} is already enrolled."
            )
            error.duplicate_id = found  # the page links to that person, if the user may see them
            raise error


def _check_retention(value: date | None) -> None:
    if value is not None and (problem := dateranges.RETENTION.problem(value)):
        raise normalize.InvalidValue("retention_until", problem)


def create(data: dict, *, project: Project | None = None) -> Beneficiary:
    values = _pii_values(data)
    _check_retention(data.get("retention_until"))
    _ensure_unique(values)
    if project is not None:
        projects.ensure_writable(project)
    person = Beneficiary(ref=new_ref(), **{k: data[k] for k in RECORD_FIELDS if data.get(k)})
    person.pii = BeneficiaryPII(**values)
    db.session.add(person)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent enrolment of the same phone or ID won the race
        raise Conflict(_("This person was enrolled a moment ago by someone else.")) from None
    name_search.index_person(person.id, values["name"], values["location"])
    events.beneficiary_changed.send(
        person,
        action="beneficiary.created",
        summary=f"Beneficiary {person.ref} enrolled",
        project_id=project.id if project else None,
    )
    if project is not None:
        add_to_project(person, project)
    return person


def update(person: Beneficiary, data: dict) -> Beneficiary:
    if data.get("status") not in (None, *STATUSES):
        raise normalize.InvalidValue("status", _("Unknown status."))
    values = _pii_values(data)
    if data.get("retention_until") != person.retention_until:  # a date passed may stay as it is
        _check_retention(data.get("retention_until"))
    _ensure_unique(values, exclude_id=person.id)
    changed = [k for k in PII_FIELDS if getattr(person.pii, k) != values[k]]
    for key, value in values.items():
        setattr(person.pii, key, value)
    if "name" in changed or "location" in changed:
        name_search.index_person(person.id, values["name"], values["location"])
    for key in RECORD_FIELDS:
        if key in data and data[key] is not None and getattr(person, key) != data[key]:
            setattr(person, key, data[key])
            changed.append(key)
    db.session.flush()
    if changed:
        # Field names only: the values are personal data.
        events.beneficiary_changed.send(
            person,
            action="beneficiary.updated",
            summary=f"Beneficiary {person.ref} edited",
            data={"fields": sorted(changed)},
        )
    return person


def visible(user) -> Select:
    """Beneficiaries the user may see."""
    return _in_projects(select(Beneficiary), projects.visible_project_ids(user))


def _in_projects(query: Select, ids, ids_within: tuple = ()) -> Select:
    """Limit to members of the projects ``ids`` (None: no limit)."""
    if ids is None:
        return query
    return query.where(
        exists().where(
            ProjectBeneficiary.beneficiary_id == Beneficiary.id,
            ProjectBeneficiary.project_id.in_(ids),
            *(bound(ProjectBeneficiary.beneficiary_id) for bound in ids_within),
        )
    )


def get_visible(user, beneficiary_id: int) -> Beneficiary:
    person = db.session.scalar(visible(user).where(Beneficiary.id == beneficiary_id))
    if person is None:
        raise NotFound(_("No such beneficiary."))
    return person


@dataclass
class ListQuery:
    q: str = ""
    project_id: int | None = None
    group_id: int | None = None
    status: str = ""
    sort: str = "newest"


def search(user, params: ListQuery) -> Select:
    return _filtered(user, params).order_by(*SORTS.get(params.sort, SORTS["newest"]))


def _filtered(user, params: ListQuery, ids_within: tuple = ()) -> Select:
    """The people matching ``params`` that ``user`` may see, unordered.

    ``ids_within`` (conditions on an id column, as made by ``_id_bounds``) is repeated inside
    the membership tests: the same rows, but PostgreSQL can then start its scan of the
    membership index at a page's cursor instead of at the top (a merge join does not carry
    the bound over from the other side by itself).
    """
    ids = projects.visible_project_ids(user)
    if params.project_id:
        # Members of that project, if the user may see it: one semi-join rather than two.
        seen = ids is None or params.project_id in ids
        query = _in_projects(select(Beneficiary), [params.project_id] if seen else [], ids_within)
    else:
        query = _in_projects(select(Beneficiary), ids, ids_within)
    term = params.q.strip()
    if term:
        query = query.where(_matches(term))
    if params.group_id:
        query = query.where(
            exists().where(
                GroupMember.beneficiary_id == Beneficiary.id,
                GroupMember.group_id == params.group_id,
                *(bound(GroupMember.beneficiary_id) for bound in ids_within),
            )
        )
    if params.status in STATUSES:
        query = query.where(Beneficiary.status == params.status)
    return query


# Pages of the list -----------------------------------------------------------------------------

PER_PAGE = 25
# Pages 1 to 10 have numbers (OFFSET costs little that near the top); from there on, pages are
# reached by "next" and "previous" from a row's sort values, each as fast as the first page.
NUMBERED_PAGES = 10
# Rows are counted exactly up to this many (at most that many are read: 2-4 ms); beyond, the
# total is PostgreSQL's estimate, shown as "about" (or "more than" this many when the estimate
# is lower: the planner takes filters to be independent, so a group inside a project, for
# instance, is underestimated). An exact count reads every matching row: 20 ms for the 60,000
# people of one project in bench/pages.py, and it grows with the list.
EXACT_COUNT_LIMIT = 10_000


@dataclass
class ListPage:
    items: list
    total: int
    approximate: bool  # the total is the planner's estimate ("about")
    at_least: bool = False  # the total is only known to be more than EXACT_COUNT_LIMIT
    number: int | None = None  # numbered pages only
    per_page: int = PER_PAGE
    # The query arguments of the previous and next pages (None: there is none).
    previous: dict | None = None
    next: dict | None = None
    cursor: bool = False  # reached by a row's sort values, not by number

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def cursor_of(person: Beneficiary, sort: str) -> str:
    """A row's sort values, as a page's "after" or "before" argument (shareable in a URL)."""
    return ".".join(str(getattr(person, column.key)) for column, _descending in _key(sort))


def _key(sort: str):
    return KEYS.get(sort, KEYS["newest"])


def _parse_cursor(sort: str, token: str | None) -> tuple | None:
    """The sort values in a cursor argument, or None when it is missing or not one."""
    if not token:
        return None
    key = _key(sort)
    parts = token.split(".")
    if len(parts) != len(key):
        return None
    values = []
    for (column, _descending), part in zip(key, parts, strict=True):
        if column is Beneficiary.id:
            number = inputs.parse_id(part)
            if number is None:
                return None
            values.append(number)
        elif column is Beneficiary.status:
            if part not in STATUSES:
                return None
            values.append(part)
        else:
            if not (part.isascii() and part.isalnum() and len(part) <= 12):
                return None
            values.append(part)
    return tuple(values)


def list_page(
    user,
    params: ListQuery,
    *,
    page: int = 1,
    after: str | None = None,
    before: str | None = None,
    options: tuple = (),
) -> ListPage:
    """One page of the list: numbered near the top, or after/before a row's sort values."""
    sort = params.sort if params.sort in KEYS else "newest"
    total, known = count_of(_filtered(user, params))
    approximate, at_least = known == "about", known == "more"
    cursor = _parse_cursor(sort, after) or _parse_cursor(sort, before)
    if cursor is None:
        page = max(1, page)
        rows = _numbered(user, params, sort, (page - 1) * PER_PAGE, PER_PAGE + 1, options)
        items, more = rows[:PER_PAGE], len(rows) > PER_PAGE
        result = ListPage(items, total, approximate, at_least, number=page, per_page=PER_PAGE)
        if page > 1:
            result.previous = {"page": page - 1} if page > 2 else {}
        if more:
            if page < NUMBERED_PAGES:
                result.next = {"page": page + 1}
            else:
                result.next = {"after": cursor_of(items[-1], sort)}
        return result
    forward = _parse_cursor(sort, after) is not None
    rows = _seek(user, params, sort, cursor, forward, PER_PAGE + 1, options)
    more = len(rows) > PER_PAGE
    items = rows[:PER_PAGE] if forward else list(reversed(rows[:PER_PAGE]))
    result = ListPage(items, total, approximate, at_least, per_page=PER_PAGE, cursor=True)
    if items:
        # Coming forward, the row of the cursor is behind; coming back, it is ahead.
        if not forward or more:
            result.next = {"after": cursor_of(items[-1], sort)}
        if forward or more:
            result.previous = {"before": cursor_of(items[0], sort)}
    return result


def _numbered(user, params, sort: str, offset: int, limit: int, options) -> list:
    """Rows ``offset`` on, in the sort's order (numbered pages: the offset is small).

    A key led by the status is read one status at a time, each a plain range of the (status,
    id) index. In one query PostgreSQL walks that index from the top and tests each row against
    the user's projects: for a user whose project was imported before the others, every person
    of the later ones is tested first (27 ms for 40,000 in bench/pages.py, and growing).
    """
    key = _key(sort)
    (first, descending), rest = key[0], key[1:]
    if first is not Beneficiary.status:
        query = search(user, params).options(*options).offset(offset).limit(limit)
        return list(db.session.scalars(query))
    order = [c.desc() if d else c.asc() for c, d in rest]
    found: list = []
    for status in sorted(STATUSES, reverse=descending):
        same = _filtered(user, params).where(Beneficiary.status == status)
        query = same.order_by(*order).options(*options).offset(offset).limit(limit - len(found))
        rows = list(db.session.scalars(query))
        found.extend(rows)
        if len(found) >= limit:
            break
        if rows or not offset:
            offset = 0
        else:  # all of this status were before the page: at most ``offset`` of them to count
            capped = same.with_only_columns(Beneficiary.id).limit(offset).subquery()
            offset -= db.session.scalar(select(func.count()).select_from(capped))
    return found


def _seek(user, params, sort: str, cursor: tuple, forward: bool, limit: int, options) -> list:
    """Up to ``limit`` rows beyond ``cursor`` in the sort's order (``forward``) or against it.

    A key of several columns (status, then id) is sought level by level, most specific first
    (same status, ids beyond the cursor's; then the statuses beyond), so that every query is a
    plain range of one index: an OR of the levels in one query would not be.
    """
    key = _key(sort)
    found: list = []
    for level in reversed(range(len(key))):
        column, descending = key[level]
        value = cursor[level]
        below = descending == forward

        def beyond(target, value=value, below=below):
            return target < value if below else target > value

        ids_within = (beyond,) if column is Beneficiary.id else ()
        same = [c == v for (c, _descending), v in zip(key[:level], cursor[:level], strict=True)]
        order = [c.desc() if d == forward else c.asc() for c, d in key[level:]]
        query = (
            _filtered(user, params, ids_within)
            .where(beyond(column), *same)
            .order_by(*order)
            .options(*options)
            .limit(limit - len(found))
        )
        found.extend(db.session.scalars(query))
        if len(found) >= limit:
            break
    return found


def count_of(query: Select) -> tuple[int, str]:
    """How many rows ``query`` gives, and how that is known: "exact", "about" (the planner's
    estimate) or "more" (more than ``EXACT_COUNT_LIMIT``)."""
    query = query.order_by(None)
    capped = query.with_only_columns(Beneficiary.id).limit(EXACT_COUNT_LIMIT + 1).subquery()
    counted = db.session.scalar(select(func.count()).select_from(capped))
    if counted <= EXACT_COUNT_LIMIT:
        return counted, "exact"
    estimate = _estimated_rows(query)
    if estimate is not None and estimate > EXACT_COUNT_LIMIT:
        return _rounded(estimate), "about"
    return EXACT_COUNT_LIMIT, "more"


def _estimated_rows(query: Select) -> int | None:
    """PostgreSQL's estimate of the rows of ``query`` (EXPLAIN plans without running it)."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return None
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    plan = connection.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + compiled.string, compiled.params
    ).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _rounded(estimate: int) -> int:
    """Two significant digits: an estimate should not look exact."""
    if estimate < 100:
        return estimate
    return round(estimate, 2 - len(str(estimate)))


def _matches(term: str):
    """People whose reference, phone or national ID is the term, or whose name and location
    have every word of it (a term of digits alone is looked up as a number only).

    One UNION of plain selects (an OR of two IN tests would scan the whole table). On
    PostgreSQL its ids are collected into an array first, and the rows read by key
    (``id = ANY(ARRAY(...))``): as a plain IN, the planner expects as many rows for a rare name
    as for a common one and, counting the matches, scans every person rather than look up a
    few hundred (12 ms instead of 0.5 with 20,000 people, growing with the list).
    """
    parts = _exact_matches(term)
    if name_search.is_name_query(term):
        named = name_search.matching_ids(term)
        if named is not None:
            parts.append(named)
    ids = union(*parts) if len(parts) > 1 else parts[0]
    if db.session.get_bind().dialect.name == "postgresql":
        return Beneficiary.id == any_(func.array(ids.scalar_subquery()))
    return Beneficiary.id.in_(ids)


def _exact_matches(term: str) -> list[Select]:
    """Selects of the ids whose reference, phone or national ID equals the term (through the
    blind indexes)."""
    indexes = []
    with suppress(normalize.InvalidValue):
        phone = normalize.phone_e164(term, default_country())
        indexes.append(BeneficiaryPII.phone_index == blind_index("phone:" + phone))
    with suppress(normalize.InvalidValue):
        nid = normalize.national_id(term)
        if nid:
            indexes.append(BeneficiaryPII.national_id_index == blind_index("nid:" + nid))
    parts = [select(Beneficiary.id).where(Beneficiary.ref == term.upper())]
    if indexes:
        # A term can be both a phone number and a national ID (e.g. all digits).
        parts.append(select(BeneficiaryPII.beneficiary_id).where(or_(*indexes)))
    return parts


def project_ids_of(person: Beneficiary) -> list[int]:
    return links.project_ids(ProjectBeneficiary, ProjectBeneficiary.beneficiary_id, person.id)


def add_to_project(person: Beneficiary, project: Project) -> bool:
    if not links.add(ProjectBeneficiary, ProjectBeneficiary.beneficiary_id, person.id, project):
        return False
    events.beneficiary_projects_changed.send(
        person,
        action="beneficiary.project_added",
        summary=f"Beneficiary {person.ref} added to project {project.id}",
        project_id=project.id,
    )
    return True


def remove_from_project(person: Beneficiary, project: Project) -> bool:
    removed = links.remove(
        ProjectBeneficiary, ProjectBeneficiary.beneficiary_id, person.id, project
    )
    # Leaving a project means leaving its groups too.
    group_ids = select(BeneficiaryGroup.id).where(BeneficiaryGroup.project_id == project.id)
    db.session.execute(
        delete(GroupMember).where(
            GroupMember.beneficiary_id == person.id, GroupMember.group_id.in_(group_ids)
        )
    )
    db.session.flush()
    if removed:
        events.beneficiary_projects_changed.send(
            person,
            action="beneficiary.project_removed",
            summary=f"Beneficiary {person.ref} removed from project {project.id}",
            project_id=project.id,
        )
    return removed
