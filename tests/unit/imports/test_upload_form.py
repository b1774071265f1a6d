"""The upload form marks what is required, keeps the chosen file when another field is wrong,
and the check page's button says what the import will do."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from portal.extensions import db
from portal.files.models import StoredFile
from portal.imports.models import ImportBatch
from tests.unit.test_import_flow import GOOD, WITH_PROBLEMS, batch_from, map_and_check, upload


def _token(html: str) -> str:
    return re.search(r'name="kept" type="hidden" value="([^"]*)"', html).group(1)


def test_required_fields_say_so_in_their_label(client, login, make_user):
    login(client, make_user("admin"))
    page = client.get("/imports/new").get_data(as_text=True)
    assert "Source (required)" in page and "File (CSV or Excel .xlsx, required)" in page
    assert page.count('aria-required="true"') == 2


def test_an_error_elsewhere_keeps_the_chosen_file_for_the_next_attempt(
    client, login, make_user, make_project
):
    user = make_user("admin")
    project = make_project(status="active", creator=user)
    login(client, user)
    first = upload(client, project, GOOD, name="ward4.csv", source="")
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and "This field is required" in html
    assert "Chosen file: <strong>ward4.csv</strong> (kept)" in html
    token = _token(html)
    assert token

    # The next attempt sends no file, only the token: the kept file becomes the import's.
    second = client.post(
        "/imports/new",
        data={"kept": token, "project_id": str(project.id), "group_id": "0", "source": "Ward 4"},
        content_type="multipart/form-data",
    )
    assert second.status_code == 302, second.data[:800]
    batch = batch_from(second)
    assert batch.filename == "ward4.csv"
    stored = db.session.get(StoredFile, batch.file_id)
    assert stored.kind == "import" and stored.project_id == project.id
    from portal.files import storage

    assert b"".join(storage.iter_plain(stored)).decode() == GOOD
    # Used once: the token no longer names a kept file.
    again = client.post(
        "/imports/new",
        data={"kept": token, "project_id": str(project.id), "group_id": "0", "source": "Ward 4"},
        content_type="multipart/form-data",
    )
    assert "Choose a file to upload." in again.get_data(as_text=True)


def test_a_kept_file_is_only_its_uploaders_and_a_forged_token_is_ignored(
    client, login, make_user, make_project
):
    user = make_user("admin")
    project = make_project(status="active", creator=user)
    login(client, user)
    token = _token(upload(client, project, GOOD, source="").get_data(as_text=True))
    client.post("/logout")
    other = make_user("admin")
    login(client, other)
    for forged in (token, token[:-2] + "xx", "nonsense"):
        answer = client.post(
            "/imports/new",
            data={"kept": forged, "project_id": str(project.id), "group_id": "0", "source": "W"},
            content_type="multipart/form-data",
        )
        assert "Choose a file to upload." in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_a_file_error_keeps_nothing(client, login, make_user, make_project):
    user = make_user("admin")
    project = make_project(status="active", creator=user)
    login(client, user)
    answer = client.post(
        "/imports/new",
        data={
            "file": (io.BytesIO(b"x"), "people.pdf"),
            "project_id": str(project.id),
            "group_id": "0",
            "source": "W",
        },
        content_type="multipart/form-data",
    )
    html = answer.get_data(as_text=True)
    assert "Upload a .csv or .xlsx file" in html and _token(html) == ""
    assert db.session.scalar(select(func.count()).select_from(StoredFile)) == 0


def test_the_button_says_what_the_import_will_do(client, login, make_user, make_project, worker):
    user = make_user("admin")
    project = make_project(status="active", creator=user)
    login(client, user)
    clean = map_and_check(client, batch_from(upload(client, project, GOOD)), worker)
    page = client.get(f"/imports/{clean.id}").get_data(as_text=True)
    assert "Import 3 new people" in page and 'name="mode" value="all"' in page
    assert "All rows or none" not in page  # no choice where only one is possible

    mixed = map_and_check(
        client, batch_from(upload(client, project, WITH_PROBLEMS, source="B")), worker
    )
    page = client.get(f"/imports/{mixed.id}").get_data(as_text=True)
    assert "Import 0 new" not in page
    assert 'name="mode" value="valid_only"' in page
    assert re.search(r"Import \d+ new (people|person), skip 3 rows", page)
