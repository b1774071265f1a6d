"""Beneficiary cards: opaque tokens stored only as hashes, revoke and reissue, the scanner's
``resolve``, the group PDF job with live progress, and the card pages."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import threading
import zlib

import pytest
from sqlalchemy import MetaData, func, insert, select
from sqlalchemy.exc import IntegrityError

from portal import realtime
from portal.accounts.services import save_role
from portal.audit.models import AuditEntry
from portal.beneficiaries import groups
from portal.cards import services as cards
from portal.cards.models import ACTIVE, REVOKED, BeneficiaryCard, CardPrint
from portal.crypto import token_hash
from portal.errors import Conflict, InvalidTransition
from portal.extensions import db, socketio
from portal.files import storage
from portal.jobs.models import FAILED, SUCCEEDED, Job
from portal.projects import services as projects

TOKEN_RE = re.compile(r"AC1-[A-Z2-7]{32}")


@pytest.fixture
def manager(make_user):
    return make_user("programme manager")


@pytest.fixture
def project(make_project, manager):
    return make_project(name="Monsoon cash 2026", status="active", members=[manager])


@pytest.fixture
def no_names_user(make_user, manager, project):
    """May see and print cards of the project but not read personal data."""
    role = save_role(None, "card printer", "", {"beneficiary.read", "card.manage", "job.read"})
    user = make_user("viewer")
    user.role = role
    projects.set_members(project, {manager.id, user.id})
    return user


def _group(project, make_beneficiary, size: int, name: str = "Round 1"):
    group = groups.create(project, name, "Distribution")
    people = [make_beneficiary(project=project, name=f"Person Number{n:03d}") for n in range(size)]
    groups.add_members(group, people)
    return group, people


def _streams(pdf: bytes) -> bytes:
    """Every content stream of a PDF, inflated: the text fpdf2 draws with its built-in font."""
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(match.group(1)))
        except zlib.error:
            out.append(match.group(1))
    return b"\n".join(out)


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def _pdf_of(sheet: CardPrint) -> bytes:
    return b"".join(storage.iter_plain(sheet.file))


def _dump_database() -> str:
    metadata = MetaData()
    metadata.reflect(bind=db.engine)
    return "\n".join(
        str(value)
        for table in metadata.sorted_tables
        for row in db.session.execute(select(table))
        for value in row
    )


# --- tokens -----------------------------------------------------------------------------------


def test_tokens_are_random_prefixed_base32_without_padding():
    tokens = [cards.new_token() for _ in range(500)]
    assert len(set(tokens)) == len(tokens)
    assert all(TOKEN_RE.fullmatch(t) for t in tokens)
    raw = [base64.b32decode(t.removeprefix("AC1-")) for t in tokens]
    assert {len(r) for r in raw} == {20}  # 160 bits from the CSPRNG
    ones = sum(bin(int.from_bytes(r)).count("1") for r in raw)
    assert 0.47 < ones / (500 * 160) < 0.53  # no stuck bits: about half of them set


@pytest.mark.parametrize(
    "typed",
    [
        "{t}",
        "{t_lower}",
        "  {t}  ",
        "{body}",
        "AC1{body}",
        "{spaced}",
    ],
)
def test_typed_or_scanned_tokens_are_normalised(typed):
    token = cards.new_token()
    body = token.removeprefix("AC1-")
    value = typed.format(
        t=token,
        t_lower=token.lower(),
        body=body,
        spaced="AC1- " + " ".join(body[i : i + 4] for i in range(0, 32, 4)),
    )
    assert cards.normalize_token(value) == token


@pytest.mark.parametrize(
    "junk", ["", "AC1-", "AC1-" + "A" * 31, "AC1-" + "A" * 33, "AC1-" + "0" * 32, "x" * 500]
)
def test_malformed_tokens_resolve_to_nobody(app, junk):
    assert cards.normalize_token(junk) is None
    assert cards.resolve(junk) is None


# --- issue, resolve, revoke, reissue ----------------------------------------------------------


def test_only_the_hash_and_a_hint_are_stored(make_beneficiary):
    person = make_beneficiary(phone="9841234567")
    card, token = cards.issue(person)
    db.session.commit()

    assert card.token_hash == token_hash(token)
    assert card.token_hint == token[-4:]
    assert "9841234567" not in token
    dump = _dump_database()
    body = token.removeprefix("AC1-")
    assert token not in dump and body not in dump and body.lower() not in dump.lower()
    assert card.token_hash in dump


def test_tokens_are_not_derived_from_the_person(make_beneficiary):
    person = make_beneficiary()
    _, first = cards.issue(person)
    _, second = cards.issue(person)
    assert first != second


def test_resolve_finds_the_holder_of_a_working_card(make_beneficiary):
    person, other = make_beneficiary(), make_beneficiary()
    _, token = cards.issue(person)
    cards.issue(other)
    assert cards.resolve(token) is person
    assert cards.resolve(token.lower()) is person
    assert cards.resolve(cards.new_token()) is None


def test_revoked_card_no_longer_resolves(make_beneficiary):
    person = make_beneficiary()
    card, token = cards.issue(person)
    cards.revoke(card)
    assert card.status == REVOKED and card.revoked_at is not None
    assert cards.resolve(token) is None
    assert cards.lookup(token) is card  # staff still learn whose card it was
    with pytest.raises(InvalidTransition):
        cards.revoke(card)
    with pytest.raises(InvalidTransition):
        cards.revoke_active(person)


def test_reissue_revokes_the_old_card(make_beneficiary):
    person = make_beneficiary()
    old, old_token = cards.issue(person)
    new, new_token = cards.issue(person)
    assert old.status == REVOKED
    assert cards.resolve(old_token) is None
    assert cards.resolve(new_token) is person
    assert cards.active_card(person) is new
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "card.issued").order_by(AuditEntry.seq)
    ).all()
    assert len(entries) == 2
    assert f"card {old.id} revoked" in entries[1].summary
    assert person.ref in entries[1].summary
    assert all(old_token not in e.summary + e.data for e in entries)


def test_revoke_is_audited(make_beneficiary):
    person = make_beneficiary()
    card, _ = cards.issue(person)
    cards.revoke_active(person)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "card.revoked"))
    assert entry.summary == f"Card {card.id} of beneficiary {person.ref} revoked"


def test_an_inactive_person_gets_no_card(make_beneficiary):
    person = make_beneficiary(status="inactive")
    with pytest.raises(InvalidTransition):
        cards.issue(person)


def test_at_most_one_active_card_per_person_even_in_a_race(make_beneficiary):
    person = make_beneficiary()
    cards.issue(person)
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(
            insert(BeneficiaryCard).values(
                beneficiary_id=person.id, token_hash="x" * 64, token_hint="XXXX", status=ACTIVE
            )
        )
    db.session.rollback()


# --- the group PDF job ------------------------------------------------------------------------


@pytest.fixture
def progress_events(monkeypatch):
    seen = []
    real = realtime.emit

    def spy(event_name, data, rooms):
        if event_name == cards.PROGRESS_EVENT:
            seen.append((data, rooms))
        return real(event_name, data, rooms)

    monkeypatch.setattr(realtime, "emit", spy)
    return seen


def test_group_print_job_issues_cards_and_stores_an_encrypted_pdf(
    app, worker, manager, project, make_beneficiary, progress_events
):
    app.config["CARD_FONT"] = "core"  # text stays readable in the content streams
    group, people = _group(project, make_beneficiary, 11)
    _, old_token = cards.issue(people[0])
    sheet = cards.request_group_print(group, manager)
    db.session.commit()
    assert sheet.with_names

    worker.run("reports")
    job = db.session.get(Job, sheet.job_id)
    assert job.status == SUCCEEDED, job.error
    assert job.result["cards"] == 11 and job.result["pages"] == 2
    assert sheet.cards_count == 11 and sheet.pages == 2

    pdf = _pdf_of(sheet)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert _pages(pdf) == 2  # 8 cards a page
    text = _streams(pdf)
    assert all(p.ref.encode() in text for p in people)
    assert b"Person Number000" in text and b"Monsoon cash 2026" in text
    # Encrypted at rest: the file on disk is not the PDF.
    on_disk = storage.path_of(sheet.file).read_bytes()
    assert b"%PDF" not in on_disk and people[0].ref.encode() not in on_disk

    # Everyone has exactly one working card, from this print; the old card is dead.
    active = db.session.scalars(select(BeneficiaryCard).where(BeneficiaryCard.status == ACTIVE))
    assert sorted(c.beneficiary_id for c in active) == sorted(p.id for p in people)
    assert {c.print_id for c in cards_of_print(sheet)} == {sheet.id}
    assert cards.resolve(old_token) is None

    percents = [data["percent"] for data, _ in progress_events]
    assert percents[0] == 0 and percents[-1] == 100 and percents == sorted(percents)
    assert progress_events[-1][0]["phase"] == "saving"
    data, rooms = progress_events[-1]
    assert data["job_id"] == job.id and data["total"] == 11
    assert rooms == [f"job:{job.id}", realtime.user_room(manager.id)]

    actions = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.action.like("cards.%")).order_by(AuditEntry.seq)
    ).all()
    assert actions == ["cards.print_requested", "cards.printed"]
    printed = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "cards.printed"))
    assert "11 cards issued, 1 old cards revoked" in printed.summary
    assert "Person" not in printed.summary + printed.data


def cards_of_print(sheet):
    return db.session.scalars(select(BeneficiaryCard).where(BeneficiaryCard.print_id == sheet.id))


def test_names_are_left_out_for_a_requester_without_personal_data(
    app, worker, project, no_names_user, make_beneficiary
):
    app.config["CARD_FONT"] = "core"
    group, people = _group(project, make_beneficiary, 3)
    sheet = cards.request_group_print(group, no_names_user)
    db.session.commit()
    assert not sheet.with_names
    worker.run("reports")
    pdf = _pdf_of(sheet)
    text = _streams(pdf)
    assert _pages(pdf) == 1
    assert all(p.ref.encode() in text for p in people)
    assert b"Person" not in text and b"Number" not in text


def test_names_are_left_out_if_the_requester_lost_the_permission_since(
    app, worker, manager, project, make_beneficiary
):
    app.config["CARD_FONT"] = "core"
    group, _ = _group(project, make_beneficiary, 2)
    sheet = cards.request_group_print(group, manager)
    manager.role = save_role(None, "demoted", "", {"beneficiary.read", "card.manage"})
    db.session.commit()
    worker.run("reports")
    assert not sheet.with_names
    assert b"Person" not in _streams(_pdf_of(sheet))


@pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("zbarimg")), reason="poppler/zbar not here"
)
def test_printed_qr_codes_scan_back_to_working_tokens(
    worker, manager, project, make_beneficiary, tmp_path
):
    group, people = _group(project, make_beneficiary, 3)
    sheet = cards.request_group_print(group, manager)
    db.session.commit()
    worker.run("reports")
    (tmp_path / "cards.pdf").write_bytes(_pdf_of(sheet))
    subprocess.run(
        ["pdftoppm", "-r", "200", "-png", str(tmp_path / "cards.pdf"), str(tmp_path / "page")],
        check=True,
    )
    scanned = subprocess.run(
        ["zbarimg", "-q", "--raw", str(tmp_path / "page-1.png")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(scanned) == 3
    assert sorted(cards.resolve(t).id for t in scanned) == sorted(p.id for p in people)


def test_default_unicode_font_prints_accented_names(worker, manager, project, make_beneficiary):
    group = groups.create(project, "Accents", "Unicode names")
    groups.add_members(group, [make_beneficiary(project=project, name="Sītā Ñoño Tamang")])
    sheet = cards.request_group_print(group, manager)
    db.session.commit()
    worker.run("reports")
    assert db.session.get(Job, sheet.job_id).status == SUCCEEDED
    assert _pdf_of(sheet).startswith(b"%PDF-")


def test_print_of_a_deleted_group_fails_at_once(worker, manager, project, make_beneficiary):
    group, _ = _group(project, make_beneficiary, 1)
    sheet = cards.request_group_print(group, manager)
    db.session.commit()
    db.session.delete(group)
    db.session.commit()
    worker.run("reports")
    job = db.session.get(Job, sheet.job_id)
    assert job.status == FAILED and job.attempts == 1
    assert db.session.scalar(select(func.count()).select_from(BeneficiaryCard)) == 0


def test_a_group_cannot_be_printed_twice_at_once_or_when_empty(manager, project, make_beneficiary):
    group, _ = _group(project, make_beneficiary, 2)
    cards.request_group_print(group, manager)
    with pytest.raises(Conflict):
        cards.request_group_print(group, manager)
    empty = groups.create(project, "Empty", "Nobody")
    with pytest.raises(Conflict):
        cards.request_group_print(empty, manager)


def test_progress_reaches_a_subscribed_browser(
    app, client, login, worker, manager, project, make_beneficiary
):
    group, _ = _group(project, make_beneficiary, 9)
    login(client, manager)
    sheet = cards.request_group_print(group, manager)
    db.session.commit()
    sio = socketio.test_client(app, flask_test_client=client)
    sio.get_received()
    worker.run("reports")
    received = [m for m in sio.get_received() if m["name"] == cards.PROGRESS_EVENT]
    assert received, "the requester's own room hears the job's progress"
    assert received[-1]["args"][0]["percent"] == 100
    assert received[-1]["args"][0]["print_id"] == sheet.id
    sio.disconnect()


# --- pages ------------------------------------------------------------------------------------


def test_lookup_page_opens_the_holder_of_a_working_card(
    client, login, manager, project, make_beneficiary
):
    person = make_beneficiary(project=project)
    _, token = cards.issue(person)
    login(client, manager)
    assert client.get("/cards/lookup").status_code == 200
    response = client.post("/cards/lookup", data={"token": token.lower()})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/beneficiaries/{person.id}")


def test_lookup_page_says_a_revoked_card_no_longer_works(
    client, login, manager, project, make_beneficiary
):
    person = make_beneficiary(project=project)
    card, token = cards.issue(person)
    cards.revoke(card)
    login(client, manager)
    page = client.post("/cards/lookup", data={"token": token}).get_data(as_text=True)
    assert "no longer works" in page and person.ref in page
    assert token not in page


def test_lookup_page_does_not_reveal_cards_outside_the_users_projects(
    client, login, manager, make_project, make_beneficiary
):
    stranger = make_beneficiary(project=make_project(name="Elsewhere"))
    _, token = cards.issue(stranger)
    login(client, manager)
    page = client.post("/cards/lookup", data={"token": token}).get_data(as_text=True)
    assert "No card matches this token." in page
    assert stranger.ref not in page and token not in page


def test_issue_from_the_beneficiary_page_then_download_the_card(
    app, client, login, manager, project, make_beneficiary
):
    app.config["CARD_FONT"] = "core"
    person = make_beneficiary(project=project, name="Maya Gurung")
    old, old_token = cards.issue(person)
    login(client, manager)
    page = client.get(f"/beneficiaries/{person.id}").get_data(as_text=True)
    assert f"…{old.token_hint}" in page and "Reissue card" in page and "Revoke card" in page

    response = client.post(f"/cards/beneficiaries/{person.id}/issue")
    assert response.status_code == 302
    assert cards.resolve(old_token) is None
    card = cards.active_card(person)
    assert card.print_id is not None
    page = client.get(f"/beneficiaries/{person.id}").get_data(as_text=True)
    assert "Download the card PDF" in page

    # From another thread, as a server runs it: the view's session ends before the body streams.
    # (The page view committed its audit entry: read the id here, not on the thread.)
    result = {}
    url = f"/cards/prints/{card.print_id}.pdf"
    thread = threading.Thread(target=lambda: result.update(r=client.get(url, buffered=True)))
    thread.start()
    thread.join(30)
    download = result["r"]
    assert download.status_code == 200
    assert download.mimetype == "application/pdf"
    assert download.headers["Cache-Control"] == "no-store"
    assert download.data.startswith(b"%PDF-") and _pages(download.data) == 1
    assert b"Maya Gurung" in _streams(download.data)
    assert (
        db.session.scalar(select(func.count()).where(AuditEntry.action == "cards.downloaded")) == 1
    )


def test_revoke_from_the_beneficiary_page(client, login, manager, project, make_beneficiary):
    person = make_beneficiary(project=project)
    _, token = cards.issue(person)
    login(client, manager)
    assert client.post(f"/cards/beneficiaries/{person.id}/revoke").status_code == 302
    assert cards.resolve(token) is None
    page = client.get(f"/beneficiaries/{person.id}").get_data(as_text=True)
    assert "No working card." in page and "Issue a card" in page


def test_print_from_the_group_page_and_download_the_sheet(
    app, client, login, worker, manager, project, make_beneficiary
):
    group, _ = _group(project, make_beneficiary, 3)
    login(client, manager)
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert "Printing issues new cards" in page and "old cards of these people stop working" in page
    assert "js/cards.js" in page

    assert client.post(f"/cards/groups/{group.id}/print").status_code == 302
    sheet = db.session.scalar(select(CardPrint).where(CardPrint.group_id == group.id))
    assert client.post(f"/cards/groups/{group.id}/print").status_code == 409  # already under way
    worker.run("reports")
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert f"/cards/prints/{sheet.id}.pdf" in page
    download = client.get(f"/cards/prints/{sheet.id}.pdf")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")


def test_sheet_with_names_is_refused_to_a_user_without_personal_data(
    client, login, worker, manager, project, no_names_user, make_beneficiary
):
    group, _ = _group(project, make_beneficiary, 2)
    sheet = cards.request_group_print(group, manager)
    db.session.commit()
    worker.run("reports")
    login(client, no_names_user)
    assert client.get(f"/cards/prints/{sheet.id}.pdf").status_code == 403
    page = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert f"/cards/prints/{sheet.id}.pdf" not in page
    assert "with references but no names" in page


def test_sheet_of_another_project_is_not_found(
    client, login, worker, make_user, make_project, make_beneficiary
):
    admin = make_user("admin")
    other = make_project(name="Other", status="active")
    group, _ = _group(other, make_beneficiary, 1)
    sheet = cards.request_group_print(group, admin)
    db.session.commit()
    worker.run("reports")
    outsider = make_user("programme manager")
    login(client, outsider)
    assert client.get(f"/cards/prints/{sheet.id}.pdf").status_code == 404


def test_viewers_may_look_up_but_not_issue_or_print(
    client, login, make_user, project, make_beneficiary
):
    viewer = make_user("viewer")
    projects.set_members(project, {viewer.id})
    person = make_beneficiary(project=project)
    group, _ = _group(project, make_beneficiary, 1, name="V")
    login(client, viewer)
    assert client.get("/cards/lookup").status_code == 200
    assert client.post(f"/cards/beneficiaries/{person.id}/issue").status_code == 403
    assert client.post(f"/cards/beneficiaries/{person.id}/revoke").status_code == 403
    assert client.post(f"/cards/groups/{group.id}/print").status_code == 403
    page = client.get(f"/beneficiaries/{person.id}").get_data(as_text=True)
    assert "No working card." in page and "Issue a card" not in page
