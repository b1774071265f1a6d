"""An import from upload to commit, through the pages and the imports queue."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.beneficiaries.models import Beneficiary, BeneficiaryPII, GroupMember
from portal.extensions import db
from portal.files.models import StoredFile
from portal.imports.models import ImportBatch, ImportSource
from portal.jobs.models import Job

GOOD = (
    "Full name,Mobile,Citizenship No,DOB\n"
    "Sita Rai,9841000001,NP-1001,1990-01-02\n"
    "Ram Thapa,9841000002,,02/03/1985\n"
    "Gita Lama,9841000003,NP-1003,\n"
)
WITH_PROBLEMS = GOOD + "Hari,123,,\nDup of Sita,9841000001,,\n=HYPERLINK(1),9841000009,,\n"


def upload(client, project, text, *, name="list.csv", source="Ward 4 survey", group=None):
    body = text if isinstance(text, bytes) else text.encode()
    return client.post(
        "/imports/new",
        data={
            "file": (io.BytesIO(body), name),
            "project_id": str(project.id),
            "group_id": str(group.id if group else 0),
            "source": source,
        },
        content_type="multipart/form-data",
    )


def batch_from(response) -> ImportBatch:
    batch_id = int(re.search(r"/imports/(\d+)", response.headers["Location"]).group(1))
    return db.session.get(ImportBatch, batch_id)


def map_and_check(client, batch, worker, mapping=None):
    form = {}
    for index, header in enumerate(batch.headers):
        form[f"map-{index}"] = (mapping or batch.mapping).get(header, "")
    response = client.post(f"/imports/{batch.id}/mapping", data=form)
    assert response.status_code == 302, response.data[:500]
    worker.run("imports")
    db.session.refresh(batch)
    return batch


@pytest.fixture
def staff(client, make_user, login, make_project):
    user = make_user("admin")
    project = make_project(status="active", creator=user)
    login(client, user)
    return user, project


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_upload_guesses_the_mapping_and_keeps_the_file_encrypted(app, client, staff):
    _, project = staff
    response = upload(client, project, GOOD)
    batch = batch_from(response)
    assert "/mapping" in response.headers["Location"]
    assert batch.mapping == {
        "Full name": "name",
        "Mobile": "phone",
        "Citizenship No": "national_id",
        "DOB": "date_of_birth",
    }
    stored = db.session.get(StoredFile, batch.file_id)
    from portal.files import storage

    raw = storage.path_of(stored).read_bytes()
    assert b"Sita Rai" not in raw and b"9841000001" not in raw
    assert b"".join(storage.iter_plain(stored)).decode() == GOOD


def test_dry_run_then_commit_all_rows(app, client, staff, worker):
    _, project = staff
    from portal.beneficiaries import groups

    group = groups.create(project, "Cash round 1", "first round")
    db.session.commit()
    batch = batch_from(upload(client, project, GOOD, group=group))
    batch = map_and_check(client, batch, worker)
    counts = (batch.status, batch.total_rows, batch.new_rows, batch.invalid_rows)
    assert counts == ("ready", 3, 3, 0)
    assert count(Beneficiary) == 0  # the dry run adds nobody

    page = client.get(f"/imports/{batch.id}")
    assert b"Import 3 new people" in page.data
    assert client.post(f"/imports/{batch.id}/commit", data={"mode": "all"}).status_code == 302
    worker.run("imports")
    db.session.refresh(batch)
    assert batch.status == "committed" and batch.imported_rows == 3
    assert count(Beneficiary) == 3
    assert count(GroupMember) == 3
    assert batch.file_id is None and count(StoredFile) == 0  # the upload is deleted once imported
    sita = db.session.scalar(select(BeneficiaryPII).where(BeneficiaryPII.name == "Sita Rai"))
    assert sita is None  # names are encrypted: no equality on plaintext in the database
    phones = sorted(p.phone for p in db.session.scalars(select(BeneficiaryPII)))
    assert phones == ["+9779841000001", "+9779841000002", "+9779841000003"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "import.committed"))
    assert "3 beneficiaries" in entry.summary and "Sita" not in entry.data


def test_problems_block_all_or_nothing_and_valid_only_skips_them(app, client, staff, worker):
    _, project = staff
    batch = map_and_check(client, batch_from(upload(client, project, WITH_PROBLEMS)), worker)
    assert (batch.total_rows, batch.new_rows, batch.duplicate_rows, batch.invalid_rows) == (
        6,
        3,
        1,
        2,
    )
    rows = {(e["row"], e["field"]) for e in batch.errors_preview}
    assert {(5, "phone"), (6, "phone"), (7, "name")} <= rows
    report = client.get(f"/imports/{batch.id}/errors.csv")
    assert report.status_code == 200
    assert report.data.decode().splitlines()[0] == "row,field,message"
    assert "Same phone number as row 2" in report.data.decode()

    response = client.post(f"/imports/{batch.id}/commit", data={"mode": "all"})
    assert response.status_code == 302
    assert b"rows have problems" in client.get(response.headers["Location"]).data
    assert count(Beneficiary) == 0

    client.post(f"/imports/{batch.id}/commit", data={"mode": "valid_only"})
    worker.run("imports")
    db.session.refresh(batch)
    assert batch.status == "committed" and batch.imported_rows == 3 and count(Beneficiary) == 3


def test_database_duplicates_are_found_and_the_commit_rechecks(
    app, client, staff, worker, make_beneficiary
):
    _, project = staff
    make_beneficiary(project=project, phone="9841000002")
    db.session.commit()
    batch = map_and_check(client, batch_from(upload(client, project, GOOD)), worker)
    assert (batch.new_rows, batch.duplicate_rows) == (2, 1)
    assert batch.errors_preview[0]["message"].startswith("A beneficiary with this phone")

    # Someone enrols row 4's person between the dry run and the commit: all-or-nothing stops.
    other = GOOD.replace("9841000002", "9841000007")
    clean = map_and_check(client, batch_from(upload(client, project, other)), worker)
    assert clean.invalid_rows == clean.duplicate_rows == 0
    make_beneficiary(project=project, phone="9841000003")
    db.session.commit()
    client.post(f"/imports/{clean.id}/commit", data={"mode": "all"})
    worker.run("imports")
    db.session.refresh(clean)
    assert clean.status == "failed" and "Nothing was imported" in clean.message
    assert "already enrolled" in clean.message
    job = db.session.get(Job, clean.job_id)
    assert job.status == "failed" and job.attempts == 1  # bad input is not retried
    assert count(Beneficiary) == 2  # the two made above: none from the file


def test_the_mapping_is_remembered_per_source(app, client, staff, worker):
    _, project = staff
    text = "Naam,Phone no,Gaun\nSita Rai,9841000001,Ward 4\n"
    batch = batch_from(upload(client, project, text, source="Partner sheet"))
    chosen = {"Naam": "name", "Phone no": "phone", "Gaun": "location"}
    map_and_check(client, batch, worker, chosen)
    again = batch_from(upload(client, project, text, source="Partner sheet"))
    assert again.mapping == chosen
    source = db.session.scalar(select(ImportSource).where(ImportSource.name == "Partner sheet"))
    assert source.mapping == chosen


def test_bad_mapping_and_bad_files_get_clear_answers(app, client, staff, worker):
    _, project = staff
    batch = batch_from(upload(client, project, GOOD))
    response = client.post(f"/imports/{batch.id}/mapping", data={"map-0": "name", "map-1": ""})
    assert response.status_code == 400
    assert b"Phone" in response.data  # the required field left unmapped is named

    for text, name, expected in [
        ("", "empty.csv", b"empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.csv", b"image"),
        ("a,b\n1,2\n", "notes.txt", b".csv or .xlsx"),
    ]:
        page = upload(client, project, text, name=name)
        assert page.status_code == 200, name  # the form again, with the reason
        assert b'class="error"' in page.data and expected in page.data, name
    assert count(StoredFile) == 1  # only the first good upload is kept


def test_imports_need_both_manage_and_pii_permissions(app, client, make_user, login):
    login(client, make_user("finance"))
    assert client.get("/imports/").status_code == 403
    assert client.get("/imports/template.csv").status_code == 403


def test_templates_download(app, client, staff):
    csv_body = client.get("/imports/template.csv")
    assert csv_body.status_code == 200 and b"phone" in csv_body.data.lower()
    xlsx = client.get("/imports/template.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_expired_files_are_purged(app, client, staff):
    from datetime import timedelta

    from portal.files import storage
    from portal.timeutil import utcnow

    _, project = staff
    batch = batch_from(upload(client, project, GOOD))
    stored = db.session.get(StoredFile, batch.file_id)
    path = storage.path_of(stored)
    assert storage.purge_expired() == 0 and path.exists()
    stored.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert storage.purge_expired() == 1
    assert not path.exists() and count(StoredFile) == 0


def test_headers_only_is_refused_and_another_sheet_can_be_read(app, client, staff, worker):
    from openpyxl import Workbook

    _, project = staff
    page = upload(client, project, "Full name,Mobile\n", name="only-headers.csv")
    assert page.status_code == 200 and b"no rows under them" in page.data

    book = Workbook()
    book.active.title = "Instructions"
    book.active.append(["Read me", "Then fill the second sheet"])
    book.active.append(["nothing", "to import"])
    people = book.create_sheet("People")
    people.append(["Full name", "Mobile"])
    people.append(["Sita Rai", 9841000001])
    data = io.BytesIO()
    book.save(data)
    batch = batch_from(upload(client, project, data.getvalue(), name="book.xlsx"))
    assert batch.sheets == ["Instructions", "People"] and batch.sheet == "Instructions"
    response = client.post(f"/imports/{batch.id}/sheet", data={"sheet": "People"})
    assert response.status_code == 302
    db.session.refresh(batch)
    assert batch.sheet == "People" and batch.mapping == {"Full name": "name", "Mobile": "phone"}
    batch = map_and_check(client, batch, worker)
    assert (batch.total_rows, batch.new_rows) == (1, 1)


def _checked_files() -> list[StoredFile]:
    from portal.imports import checked

    return db.session.scalars(select(StoredFile).where(StoredFile.kind == checked.KIND)).all()


def test_the_commit_inserts_the_rows_the_dry_run_kept(app, client, staff, worker):
    from portal.files import storage

    _, project = staff
    batch = map_and_check(client, batch_from(upload(client, project, WITH_PROBLEMS)), worker)
    (kept,) = _checked_files()
    raw = storage.path_of(kept).read_bytes()
    assert b"Sita" not in raw and b"9841000001" not in raw  # encrypted at rest too
    plain = b"".join(storage.iter_plain(kept)).decode()
    assert plain.count("\n") == 3 and "+9779841000001" in plain  # valid rows, normalised

    # The upload is not read again: without it, the commit still has everything it needs.
    upload_file = db.session.get(StoredFile, batch.file_id)
    storage.path_of(upload_file).unlink()
    client.post(f"/imports/{batch.id}/commit", data={"mode": "valid_only"})
    worker.run("imports")
    db.session.refresh(batch)
    assert batch.status == "committed" and batch.imported_rows == 3
    assert count(Beneficiary) == 3 and _checked_files() == []


def test_without_kept_rows_the_commit_checks_the_upload_again(app, client, staff, worker):
    from portal.files import storage

    _, project = staff
    batch = map_and_check(client, batch_from(upload(client, project, WITH_PROBLEMS)), worker)
    for stored in _checked_files():  # e.g. checked before the rows were kept
        storage.delete(stored)
    db.session.commit()
    client.post(f"/imports/{batch.id}/commit", data={"mode": "valid_only"})
    worker.run("imports")
    db.session.refresh(batch)
    assert batch.status == "committed" and batch.imported_rows == 3
    phones = sorted(p.phone for p in db.session.scalars(select(BeneficiaryPII)))
    assert phones == ["+9779841000001", "+9779841000002", "+9779841000003"]


def test_kept_rows_go_with_a_new_mapping_or_a_discard(app, client, staff, worker):
    _, project = staff
    batch = map_and_check(client, batch_from(upload(client, project, GOOD)), worker)
    assert len(_checked_files()) == 1
    map_and_check(client, batch, worker)  # a second dry run replaces them
    assert len(_checked_files()) == 1
    form = {f"map-{k}": batch.mapping.get(h, "") for k, h in enumerate(batch.headers)}
    form["map-3"] = ""  # the date of birth left out: what was checked no longer holds
    assert client.post(f"/imports/{batch.id}/mapping", data=form).status_code == 302
    db.session.expire_all()
    assert _checked_files() == []
    worker.run("imports")
    assert len(_checked_files()) == 1
    assert client.post(f"/imports/{batch.id}/discard").status_code == 302
    db.session.expire_all()
    assert _checked_files() == [] and count(StoredFile) == 0


# Sheets a workbook may start with that are not a table: each is refused for its own reason.
_NOT_A_TABLE = {
    "note": [["Fill one person a row on the next sheet."]],
    "gap": [["Read this first", "", "then the next sheet"], ["a", "b", "c"]],
    "empty": [],
    "twice": [["Note", "note"], ["x", "y"]],
    "long": [["x" * 300], ["y"]],
}


def _workbook(sheets: list[tuple[str, list[list]]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_a_workbook_not_starting_with_its_table_lets_the_sheet_be_chosen(
    app, client, staff, worker
):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    _, project = staff
    people = [["Full name", "Mobile"], ["Sita Rai", 9841000001], ["Ram Thapa", 9841000002]]

    @settings(
        derandomize=True,
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        junk=st.lists(st.sampled_from(sorted(_NOT_A_TABLE)), min_size=1, max_size=3),
        data_at=st.integers(1, 3),
    )
    def check(junk, data_at):
        sheets = [(f"{kind} {i}", _NOT_A_TABLE[kind]) for i, kind in enumerate(junk)]
        sheets.insert(min(data_at, len(sheets)), ("People", people))
        response = upload(client, project, _workbook(sheets), name="book.xlsx")
        assert response.status_code == 302, response.data[-800:]
        batch = batch_from(response)
        assert batch.sheets == [title for title, _ in sheets]
        assert batch.sheet is None and batch.headers == []
        assert f"“{sheets[0][0]}”" in batch.message and "Choose the sheet" in batch.message
        page = client.get(f"/imports/{batch.id}/mapping").get_data(as_text=True)
        assert "Read this sheet" in page and "Check the file" not in page
        # Nothing to check until a sheet is read.
        assert client.post(f"/imports/{batch.id}/mapping", data={}).status_code == 400
        for title, _ in sheets:
            if title == "People":
                continue
            reply = client.post(f"/imports/{batch.id}/sheet", data={"sheet": title})
            assert reply.status_code == 302
            db.session.refresh(batch)
            assert batch.sheet is None  # that sheet's own problem was flashed
        client.post(f"/imports/{batch.id}/sheet", data={"sheet": "People"})
        db.session.refresh(batch)
        assert batch.sheet == "People" and batch.message == ""
        assert batch.mapping == {"Full name": "name", "Mobile": "phone"}

    check()
    batch = db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc())).first()
    batch = map_and_check(client, batch, worker)
    assert (batch.total_rows, batch.new_rows) == (2, 2)


def test_a_workbook_of_one_sheet_that_is_not_a_table_is_refused(app, client, staff):
    _, project = staff
    before = count(StoredFile)
    for kind, rows in _NOT_A_TABLE.items():
        page = upload(client, project, _workbook([("Only", rows)]), name="one.xlsx")
        assert page.status_code == 200 and b'class="error"' in page.data, kind
    assert count(StoredFile) == before


def test_a_refused_duplicate_links_to_the_person_it_duplicates(
    app, client, staff, worker, make_beneficiary, make_project, make_user
):
    """On the import's page, a row refused as already enrolled links to that person, when the
    user may see them; the blind index behind the link stays out of the error report."""
    _, project = staff
    enrolled = make_beneficiary(project=project, phone="9841000002")
    hidden = make_beneficiary(project=make_project(), phone="9841000003")
    db.session.commit()
    batch = map_and_check(client, batch_from(upload(client, project, GOOD)), worker)
    assert batch.duplicate_rows == 2
    page = client.get(f"/imports/{batch.id}").get_data(as_text=True)
    assert f'href="/beneficiaries/{enrolled.id}" data-duplicate>Open {enrolled.ref}</a>' in page
    assert f"Open {hidden.ref}" in page  # an admin sees every project
    # Staff who see this project only are not told who holds the other number.
    from portal.imports import duplicates
    from portal.projects import services as projects

    agent = make_user("field agent")
    projects.set_members(project, {staff[0].id, agent.id})
    found = duplicates.people_of(agent, batch.errors_preview)
    assert [p.id for p in found.values()] == [enrolled.id]
    report = client.get(f"/imports/{batch.id}/errors.csv").get_data(as_text=True)
    assert enrolled.pii.phone_index not in report and "already enrolled" in report
