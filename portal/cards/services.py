"""Beneficiary cards: issue, revoke, resolve a scanned token, and print card sheets.

A card token is 20 random bytes from the OS CSPRNG, in base32 without padding, behind the
prefix ``AC1-`` that scanners recognise. It is neither personal data nor derived from it. Only
its SHA-256 and its last characters (the hint) are stored: the printed card, and the PDF it came
from, are the only copies. So printing a sheet *issues* the cards on it, and every older card of
the same people stops working.
"""

from __future__ import annotations

import base64
import io
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import events, offload
from portal.accounts.models import User
from portal.beneficiaries import groups as groups_service
from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.models import (
    ACTIVE as PERSON_ACTIVE,
)
from portal.beneficiaries.models import (
    Beneficiary,
    BeneficiaryGroup,
    GroupMember,
    ProjectBeneficiary,
)
from portal.cards.models import ACTIVE, REVOKED, BeneficiaryCard, CardPrint
from portal.cards.pdf import CardFace, CardSheet, find_font
from portal.crypto import token_hash
from portal.errors import Conflict, Forbidden, InvalidTransition, NotFound
from portal.extensions import db
from portal.files import storage
from portal.files.models import StoredFile
from portal.jobs import dispatch
from portal.jobs.kinds import CARDS_PDF
from portal.jobs.models import CLAIMABLE, RUNNING, Job
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transitions import move

PII = "beneficiary.pii.read"
TOKEN_PREFIX = "AC1-"  # noqa: S105  (a format marker, not a secret)
TOKEN_BYTES = 20
HINT_LENGTH = 4
_TOKEN = re.compile(r"AC1-[A-Z2-7]{32}")
# Live progress of a card sheet job, to the job's room and the requester's.
PROGRESS_EVENT = "cards.progress"
GROUP_KEEP_DAYS = 7
SINGLE_KEEP_DAYS = 1
_CHUNK = 200

Progress = Callable[[int, int, str], None]


def batched(items: list[int], size: int) -> Iterator[list[int]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- tokens -----------------------------------------------------------------------------------


def new_token() -> str:
    body = base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode().rstrip("=")
    return TOKEN_PREFIX + body


def normalize_token(raw: str) -> str | None:
    """The canonical token from what a scanner or a person typed; None if it cannot be one."""
    value = "".join((raw or "").split()).upper()[:80]
    body = value[3:] if value.startswith("AC1") else value
    token = TOKEN_PREFIX + body.replace("-", "")
    return token if _TOKEN.fullmatch(token) else None


def hint_of(token: str) -> str:
    return token[-HINT_LENGTH:]


# --- cards ------------------------------------------------------------------------------------


def active_card(person: Beneficiary) -> BeneficiaryCard | None:
    return db.session.scalar(
        select(BeneficiaryCard).where(
            BeneficiaryCard.beneficiary_id == person.id, BeneficiaryCard.status == ACTIVE
        )
    )


def cards_of(person: Beneficiary, limit: int = 10) -> list[BeneficiaryCard]:
    return list(
        db.session.scalars(
            select(BeneficiaryCard)
            .where(BeneficiaryCard.beneficiary_id == person.id)
            .order_by(BeneficiaryCard.issued_at.desc(), BeneficiaryCard.id.desc())
            .limit(limit)
        )
    )


def _revoke_active_of(beneficiary_ids: Iterable[int]) -> list[int]:
    """Revoke the working cards of these people; returns the ids of the cards revoked."""
    ids = list(
        db.session.scalars(
            select(BeneficiaryCard.id).where(
                BeneficiaryCard.beneficiary_id.in_(list(beneficiary_ids)),
                BeneficiaryCard.status == ACTIVE,
            )
        )
    )
    if ids:
        db.session.execute(
            update(BeneficiaryCard)
            .where(BeneficiaryCard.id.in_(ids))
            .values(status=REVOKED, revoked_at=utcnow())
        )
    return ids


def _new_card(person_id: int, issued_by_id: int | None, print_id: int | None):
    token = new_token()
    card = BeneficiaryCard(
        beneficiary_id=person_id,
        token_hash=token_hash(token),
        token_hint=hint_of(token),
        status=ACTIVE,
        issued_at=utcnow(),
        issued_by_id=issued_by_id,
        print_id=print_id,
    )
    db.session.add(card)
    return card, token


def _flush_cards() -> None:
    try:
        db.session.flush()
    except IntegrityError:  # another issue for the same person won the race
        raise Conflict(_("A card was issued to this person a moment ago; try again.")) from None


def issue(
    person: Beneficiary, *, issued_by: User | None = None, print_id: int | None = None
) -> tuple[BeneficiaryCard, str]:
    """Revoke the person's working card, if any, and make a new one.

    Returns the card and its token: the only time the token exists in clear. Print it, never
    store or log it.
    """
    if person.status != PERSON_ACTIVE:
        raise InvalidTransition(_("This beneficiary is inactive: no card can be issued."))
    revoked = _revoke_active_of([person.id])
    card, token = _new_card(person.id, issued_by.id if issued_by else None, print_id)
    _flush_cards()
    summary = f"Card {card.id} issued to beneficiary {person.ref}"
    if revoked:
        summary += f"; card {', '.join(map(str, revoked))} revoked"
    events.card_changed.send(
        person,
        action="card.issued",
        summary=summary,
        data={"card_id": card.id, "revoked_card_ids": revoked, "print_id": print_id},
    )
    return card, token


def revoke(card: BeneficiaryCard) -> BeneficiaryCard:
    # Twice at once: one revokes (and is audited), the other is told.
    move(card, (ACTIVE,), REVOKED, _("This card is already revoked."), revoked_at=utcnow())
    person = db.session.get(Beneficiary, card.beneficiary_id)
    events.card_changed.send(
        person,
        action="card.revoked",
        summary=f"Card {card.id} of beneficiary {person.ref} revoked",
        data={"card_id": card.id},
    )
    return card


def revoke_active(person: Beneficiary) -> BeneficiaryCard:
    card = active_card(person)
    if card is None:
        raise InvalidTransition(_("This beneficiary has no working card."))
    return revoke(card)


def lookup(token: str) -> BeneficiaryCard | None:
    """The card a token belongs to, working or revoked (for staff); None if none."""
    canonical = normalize_token(token)
    if canonical is None:
        return None
    return db.session.scalar(
        select(BeneficiaryCard).where(BeneficiaryCard.token_hash == token_hash(canonical))
    )


def resolve(token: str) -> Beneficiary | None:
    """The holder of a working card, for the vendor scanner; None for unknown or revoked.

    The beneficiary may be inactive: the caller decides what that means for a redemption.
    """
    canonical = normalize_token(token)
    if canonical is None:
        return None
    person_id = db.session.scalar(
        select(BeneficiaryCard.beneficiary_id).where(
            BeneficiaryCard.token_hash == token_hash(canonical),
            BeneficiaryCard.status == ACTIVE,
        )
    )
    return None if person_id is None else db.session.get(Beneficiary, person_id)


# --- printing ---------------------------------------------------------------------------------


def card_font() -> str | None:
    """The TrueType font for cards: CARD_FONT if set ("core": the built-in Latin-1 font)."""
    configured = current_app.config.get("CARD_FONT")
    if configured is None:
        return find_font()
    return None if configured in ("", "core") else configured


def _active_members(group: BeneficiaryGroup) -> Select:
    return (
        select(Beneficiary.id)
        .join(GroupMember, GroupMember.beneficiary_id == Beneficiary.id)
        .where(GroupMember.group_id == group.id, Beneficiary.status == PERSON_ACTIVE)
    )


def printable_count(group: BeneficiaryGroup) -> int:
    return db.session.scalar(select(func.count()).select_from(_active_members(group).subquery()))


def pending_print(group: BeneficiaryGroup) -> CardPrint | None:
    return db.session.scalar(
        select(CardPrint)
        .join(Job, Job.id == CardPrint.job_id)
        .where(CardPrint.group_id == group.id, Job.status.in_((*CLAIMABLE, RUNNING)))
        .limit(1)
    )


def request_group_print(group: BeneficiaryGroup, user: User) -> CardPrint:
    """Queue the card sheet of a group's active members; the job issues their new cards."""
    project = db.session.get(Project, group.project_id)
    projects.ensure_writable(project)
    count = printable_count(group)
    if not count:
        raise Conflict(_("Nobody active in this group: there are no cards to print."))
    running = pending_print(group)
    if running is not None:
        raise Conflict(
            _("Cards of this group are being printed already (job %(job)s).", job=running.job_id)
        )
    sheet = CardPrint(
        group_id=group.id,
        project_id=group.project_id,
        requested_by_id=user.id,
        with_names=user.can(PII),
    )
    db.session.add(sheet)
    db.session.flush()
    job = dispatch.enqueue(
        CARDS_PDF.name, {"print_id": sheet.id}, project_id=group.project_id, created_by_id=user.id
    )
    sheet.job_id = job.id
    db.session.flush()
    events.card_print_changed.send(
        sheet,
        action="cards.print_requested",
        summary=(
            f"Card print {sheet.id} of group {group.id} queued as job {job.id}: {count} new cards"
            " to be issued, the old cards of these beneficiaries revoked"
        ),
        project_id=group.project_id,
        data={"group_id": group.id, "people": count, "with_names": sheet.with_names},
    )
    return sheet


def _requester_sees_names(sheet: CardPrint) -> bool:
    """Names only if asked by someone who may read them, and still may."""
    if not sheet.with_names or sheet.requested_by_id is None:
        return False
    user = db.session.get(User, sheet.requested_by_id)
    return bool(user and user.active and user.can(PII))


def _face(person: Beneficiary, token: str, project_name: str, with_names: bool) -> CardFace:
    return CardFace(
        project=project_name,
        ref=person.ref,
        token=token,
        hint=hint_of(token),
        issued=utcnow().strftime("%Y-%m-%d"),
        name=person.pii.name if with_names else None,
    )


def _store_pdf(
    sheet: CardPrint,
    cards: CardSheet,
    filename: str,
    keep_days: int,
    content: bytes | None = None,
) -> StoredFile:
    """Store the sheet's PDF; ``content``: its bytes, when already made (off the loop)."""
    stored = storage.store(
        io.BytesIO(cards.output() if content is None else content),
        kind="cards",
        filename=filename,
        content_type="application/pdf",
        created_by_id=sheet.requested_by_id,
        project_id=sheet.project_id,
        keep_days=keep_days,
    )
    sheet.file_id = stored.id
    sheet.cards_count = cards.count
    sheet.pages = cards.pages
    sheet.finished_at = utcnow()
    return stored


def print_group(sheet: CardPrint, progress: Progress | None = None) -> CardPrint:
    """Issue a card to every active member of the sheet's group and store the PDF (the job)."""
    group = db.session.get(BeneficiaryGroup, sheet.group_id) if sheet.group_id else None
    if group is None:
        raise NotFound("The group of this card print no longer exists.")
    project = db.session.get(Project, group.project_id)
    with_names = _requester_sees_names(sheet)
    sheet.with_names = with_names
    ids = list(db.session.scalars(_active_members(group).order_by(Beneficiary.ref)))
    total = len(ids)
    cards = CardSheet(font_path=card_font(), title=f"Cards of group {group.id}")
    revoked = 0
    if progress:
        progress(0, total, "cards")
    for done, chunk in enumerate(batched(ids, _CHUNK), start=1):
        revoked += len(_revoke_active_of(chunk))
        query = select(Beneficiary).where(Beneficiary.id.in_(chunk)).order_by(Beneficiary.ref)
        if with_names:
            query = query.options(joinedload(Beneficiary.pii))
        for person in db.session.scalars(query):
            _card, token = _new_card(person.id, sheet.requested_by_id, sheet.id)
            cards.add(_face(person, token, project.name, with_names))
        _flush_cards()
        if progress:
            progress(min(done * _CHUNK, total), total, "cards")
    if progress:
        progress(total, total, "saving")
    stored = _store_pdf(sheet, cards, f"cards-group-{group.id}-{sheet.id}.pdf", GROUP_KEEP_DAYS)
    try:
        db.session.flush()
        events.card_print_changed.send(
            sheet,
            action="cards.printed",
            summary=(
                f"Card print {sheet.id} of group {group.id}: {cards.count} cards issued,"
                f" {revoked} old cards revoked"
            ),
            project_id=group.project_id,
            data={
                "group_id": group.id,
                "cards": cards.count,
                "revoked": revoked,
                "pages": cards.pages,
                "with_names": with_names,
                "job_id": sheet.job_id,
            },
        )
    except BaseException:
        storage.path_of(stored).unlink(missing_ok=True)  # the row rolls back; so must the file
        raise
    return sheet


def _project_label(person: Beneficiary, user: User) -> str:
    visible = projects.visible_project_ids(user)
    query = (
        select(Project.name)
        .join(ProjectBeneficiary, ProjectBeneficiary.project_id == Project.id)
        .where(ProjectBeneficiary.beneficiary_id == person.id)
        .order_by(Project.name)
    )
    if visible is not None:
        query = query.where(Project.id.in_(visible))
    return " · ".join(db.session.scalars(query)) or "Aid programme"


def _one_card(face: CardFace, font_path: str | None, title: str) -> tuple[CardSheet, bytes]:
    cards = CardSheet(font_path=font_path, title=title)
    cards.add(face)
    return cards, cards.output()


def print_single(person: Beneficiary, user: User) -> CardPrint:
    """Issue a new card to one person now and keep its one-card PDF briefly for download."""
    sheet = CardPrint(beneficiary_id=person.id, requested_by_id=user.id, with_names=user.can(PII))
    db.session.add(sheet)
    db.session.flush()
    _card, token = issue(person, issued_by=user, print_id=sheet.id)
    face = _face(person, token, _project_label(person, user), sheet.with_names)
    # Loading the font and drawing the PDF is CPU work in a request: off gevent's loop.
    cards, content = offload.run(_one_card, face, card_font(), f"Card of {person.ref}")
    stored = _store_pdf(
        sheet, cards, f"card-{person.ref}-{sheet.id}.pdf", SINGLE_KEEP_DAYS, content=content
    )
    try:
        db.session.flush()
    except BaseException:
        storage.path_of(stored).unlink(missing_ok=True)
        raise
    return sheet


# --- prints as staff see them -----------------------------------------------------------------


def get_print(user: User, print_id: int) -> CardPrint:
    """A print the user may download: its group or person is visible to them, and names on it
    only if they may read personal data."""
    sheet = db.session.get(CardPrint, print_id)
    if sheet is None:
        raise NotFound(_("No such card print."))
    if sheet.group_id is not None:
        groups_service.get_visible(user, sheet.group_id)
    elif sheet.beneficiary_id is not None:
        beneficiaries.get_visible(user, sheet.beneficiary_id)
    else:
        raise NotFound(_("No such card print."))
    if sheet.with_names and not user.can(PII):
        raise Forbidden(_("This sheet shows names, which your role may not see."))
    return sheet


def downloadable(sheet: CardPrint) -> bool:
    stored = sheet.file
    return stored is not None and (stored.expires_at is None or stored.expires_at > utcnow())


def open_pdf(user: User, print_id: int) -> tuple[CardPrint, Iterator[bytes]]:
    sheet = get_print(user, print_id)
    if not downloadable(sheet):
        raise NotFound(_("This card sheet is not ready, or was deleted after its keeping time."))
    events.card_print_changed.send(
        sheet,
        action="cards.downloaded",
        summary=f"Card print {sheet.id} downloaded ({sheet.cards_count} cards)",
        project_id=sheet.project_id,
        data={"group_id": sheet.group_id, "with_names": sheet.with_names},
    )
    return sheet, _plain_chunks(sheet.file.id)


def _plain_chunks(file_id: str) -> Iterator[bytes]:
    # Read while the response streams, after the request's session has ended: load afresh.
    yield from storage.iter_plain(db.session.get(StoredFile, file_id))


def recent_prints_of_group(group: BeneficiaryGroup, limit: int = 5) -> list[CardPrint]:
    return list(
        db.session.scalars(
            select(CardPrint)
            .options(joinedload(CardPrint.job), joinedload(CardPrint.file))
            .where(CardPrint.group_id == group.id)
            .order_by(CardPrint.created_at.desc(), CardPrint.id.desc())
            .limit(limit)
        )
    )


def recent_single_print(person: Beneficiary) -> CardPrint | None:
    """The person's newest one-card sheet still kept, if its card still works."""
    card = active_card(person)
    if card is None or card.print_id is None:
        return None
    sheet = db.session.get(CardPrint, card.print_id)
    if sheet is None or sheet.beneficiary_id != person.id or not downloadable(sheet):
        return None
    return sheet
