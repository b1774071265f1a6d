"""Vendors, payouts and jobs in the reader's language: the jobs page and a job's problem
sentence in Nepali (stored as a code and values, written at read time, older English rows
still readable), a vendor page in Arabic (right to left), and the vendor's SMS about a payout
method change in the vendor's language."""

from __future__ import annotations

import re

from flask_babel import force_locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.jobs import problems
from portal.jobs.kinds import DIAGNOSTIC
from portal.jobs.models import FAILED, Job
from portal.timeutil import utcnow

NEPALI_GENERAL = "यो काम चलाउँदा केही गडबडी भयो (सन्दर्भ %(ref)s)।"


def _html_tag(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


def _failed_job(problem: str | None, *, error: str = "KeyError: 'x'", created_by=None) -> Job:
    job = Job(
        kind=DIAGNOSTIC.name,
        queue="default",
        status=FAILED,
        attempts=2,
        max_attempts=3,
        error=error,
        problem=problem,
        created_by_id=created_by.id if created_by else None,
        finished_at=utcnow(),
    )
    db.session.add(job)
    db.session.commit()
    return job


def test_a_job_problem_sentence_in_nepali(app):
    stored = problems.coded(problems.GENERAL, ref="J5-2")
    with app.test_request_context(), force_locale("ne"):
        assert problems.render(stored).startswith(NEPALI_GENERAL % {"ref": "J5-2"})
        # An older row holding the English sentence itself is shown in Nepali too.
        assert problems.render(problems.WORKER_GONE) == (
            "यो काम चलाइरहेको कम्प्युटर काम नसकिँदै रोकियो। काम आफैँ फेरि चल्छ।"
        )
        # The exception's own words (a domain error's message) stay as written.
        assert problems.render("The batch is empty.") == "The batch is empty."
    with app.test_request_context(), force_locale("en"):
        assert problems.render(stored) == problems.english(problems.GENERAL, ref="J5-2")


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    code=st.sampled_from(sorted(problems.SENTENCES)),
    ref=st.text(min_size=1, max_size=30),
    locale=st.sampled_from(["en", "ne", "ar"]),
)
def test_every_coded_sentence_reads_back_in_every_language(app, code, ref, locale):
    values = {"ref": ref} if code == problems.GENERAL else {}
    stored = problems.coded(code, **values)
    assert problems.decode(stored) == (code, values)
    with app.test_request_context(), force_locale(locale):
        text = problems.render(stored)
        assert text and not text.startswith("{")
        if code == problems.GENERAL:
            assert ref in text
        if locale == "en":
            assert text == problems.english(code, **values)
        else:
            assert text != problems.english(code, **values)  # translated, not the English


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=80))
def test_any_other_stored_text_is_shown_as_written(app, text):
    english = {problems.english(c) for c in problems.SENTENCES if c != problems.GENERAL}
    with app.test_request_context(), force_locale("ne"):
        shown = problems.render(text)
    if problems.decode(text) is None and text not in english:
        assert shown == text


def test_the_jobs_page_in_nepali(client, make_user, login):
    admin = make_user("admin")
    db.session.commit()
    job = _failed_job(problems.coded(problems.GENERAL, ref="J1-2"), created_by=admin)
    old = _failed_job(problems.WORKER_GONE, created_by=admin)
    login(client, admin)
    assert client.post("/account/language", data={"locale": "ne"}).status_code == 302

    listing = client.get("/jobs/").get_data(as_text=True)
    assert 'lang="ne"' in _html_tag(listing)
    assert "कामहरू" in listing and "प्रणाली जाँच" in listing  # "Jobs", "Pipeline check"
    assert "असफल" in listing  # the status label
    assert NEPALI_GENERAL % {"ref": "J1-2"} in listing
    assert "यो काम चलाइरहेको कम्प्युटर काम नसकिँदै रोकियो।" in listing  # the older row
    assert "२/३" in listing  # tries, in Devanagari digits
    assert re.search(r'data-count="failed"[^>]*>[०-९]+<', listing)
    assert "Something went wrong" not in listing

    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f"काम #{job.id}" in page and "के बिग्रियो" in page
    assert NEPALI_GENERAL % {"ref": "J1-2"} in page
    assert old.id


def test_a_vendor_page_in_arabic(client, make_user, login, make_project, make_vendor):
    admin = make_user("admin")
    project = make_project(status="active", creator=admin)
    vendor = make_vendor(project=project, status="approved", name="Corner Shop")
    db.session.commit()
    login(client, admin)
    assert client.post("/account/language", data={"locale": "ar"}).status_code == 302
    page = client.get(f"/vendors/{vendor.id}").get_data(as_text=True)
    tag = _html_tag(page)
    assert 'lang="ar"' in tag and 'dir="rtl"' in tag
    assert "البائعون" in page and "التفاصيل" in page and "متجر" in page  # Vendors, Details, Shop
    assert 'data-status="approved">تمت الموافقة<' in page
    listing = client.get("/vendors/").get_data(as_text=True)
    assert "سجّل بائعًا" in listing and "Register a vendor" not in listing


def test_the_payout_method_sms_is_in_the_vendors_language(
    app, make_project, make_vendor, make_user
):
    from tests.unit.test_vendor_portal import sign_in

    project = make_project(status="active")
    vendor = make_vendor(project=project, status="approved")
    vendor.locale = "ne"
    db.session.commit()
    client = app.test_client()
    sign_in(client, vendor)
    response = client.post(
        "/vendor/payout-methods",
        data={
            "kind": "bank",
            "account_name": "Shop Owner",
            "account_number": "0123456789",
            "bank_code": "BANKUGKA",
        },
    )
    assert response.status_code == 302
    sms = db.session.scalar(
        select(OutboxMessage.body)
        .where(OutboxMessage.purpose == "payout-method")
        .order_by(OutboxMessage.id.desc())
    )
    assert sms.startswith("तपाईंको भुक्तानी विवरण बदलियो: बैंक खाता")
    assert "6789" in sms and "Your payout details" not in sms
