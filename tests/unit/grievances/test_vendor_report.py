"""A vendor reports a problem from the phone: it becomes a grievance of their project, counted
per vendor, and the vendor sees its reference and status only."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.grievances.models import Grievance
from tests.unit.test_vendor_portal import sign_in


def test_a_vendor_reports_a_problem(app, client, make_project, make_vendor):
    project = make_project(name="Winter food", status="active")
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    sign_in(client, vendor)
    assert "Report a problem" in client.get("/vendor/").get_data(as_text=True)
    empty = client.post("/vendor/problems", data={"type": "payment", "project_id": project.id})
    assert empty.status_code == 400 and "Say what happened" in empty.get_data(as_text=True)
    sent = client.post(
        "/vendor/problems",
        data={"type": "payment", "project_id": project.id, "description": "Code never came"},
    )
    assert sent.status_code == 302
    g = db.session.scalar(select(Grievance))
    assert (g.source, g.vendor_id, g.project_id) == ("vendor", vendor.id, project.id)
    page = client.get("/vendor/problems").get_data(as_text=True)
    assert g.ref in page and "Received" in page


def test_a_vendor_cannot_file_into_another_project(app, client, make_project, make_vendor):
    mine = make_project(name="Mine", status="active")
    other = make_project(name="Other", status="active")
    vendor = make_vendor(project=mine, status="approved")
    db.session.commit()
    sign_in(client, vendor)
    refused = client.post(
        "/vendor/problems",
        data={"type": "payment", "project_id": other.id, "description": "x"},
    )
    assert refused.status_code == 400
    assert db.session.scalar(select(Grievance)) is None


def test_reports_are_capped_per_vendor(app, client, make_project, make_vendor):
    app.config["VENDOR_REPORT_LIMITS"] = "2 per day"
    project = make_project(status="active")
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    sign_in(client, vendor)
    codes = [
        client.post(
            "/vendor/problems",
            data={"type": "other", "project_id": project.id, "description": f"n{n}"},
        ).status_code
        for n in range(3)
    ]
    assert codes == [302, 302, 400]
    assert len(db.session.scalars(select(Grievance)).all()) == 2


def test_the_report_page_needs_a_vendor_session(client):
    response = client.get("/vendor/problems")
    assert response.status_code == 302 and "/vendor/sign-in" in response.headers["Location"]
