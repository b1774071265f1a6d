"""A failed job reads as one sentence for people; the technical error is for those who look
after the portal (``chain.details.read`` or ``settings.manage``)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.chain.client import ChainUnavailable
from portal.errors import Conflict
from portal.extensions import db
from portal.jobs import dispatch, lifecycle, live, problems
from portal.jobs.kinds import DIAGNOSTIC
from portal.jobs.lifecycle import PermanentJobError
from portal.jobs.models import FAILED, RETRYING
from portal.outbound import TimedOut

# What must never reach the sentence: code, internals, the exception's own technical message.
TECHNICAL = re.compile(r"Traceback|\bat \w+\.py:\d+|Error:|Exception|0x[0-9a-f]{4,}|psycopg")

messages = st.text(min_size=1, max_size=200).filter(lambda t: t.strip())


class _Unknown(Exception):
    """A class the table does not know."""


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(message=messages, job_id=st.integers(1, 10**9), attempt=st.integers(1, 50))
def test_an_unknown_error_never_shows_its_message_only_a_reference(message, job_id, attempt):
    for exc in (_Unknown(message), RuntimeError(message), ValueError(message), KeyError(message)):
        stored = problems.sentence(exc, job_id, attempt)
        # Stored as the general sentence's code and the reference, never the message.
        assert problems.decode(stored) == (problems.GENERAL, {"ref": f"J{job_id}-{attempt}"})
        text = problems.render(stored)
        assert f"reference J{job_id}-{attempt}" in text
        assert text == problems.general(problems.reference(job_id, attempt))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(message=messages)
def test_messages_written_for_people_speak_for_themselves(message):
    """A domain error's or a permanent job error's message is the sentence: its first line,
    at most 300 characters; an empty one falls back to the general sentence."""
    for exc in (Conflict(message), PermanentJobError(message)):
        text = problems.sentence(exc, 7, 1)
        first = message.strip().split("\n")[0]
        if first:
            assert text == first[: problems.LIMIT] and problems.render(text) == text
        else:
            assert text == problems.coded(problems.GENERAL, ref="J7-1")
            assert problems.render(text) == problems.general("J7-1")


def test_known_classes_and_their_subclasses_get_the_table_sentence():
    stored = problems.sentence(ChainUnavailable("rpc"), 1, 1)
    assert stored == problems.coded("chain_unavailable")
    assert "payment network did not answer" in problems.render(stored)
    # TimedOut is a subclass of outbound.Failed: the nearest class in the MRO with a sentence.
    unreachable = problems.coded(problems.UNREACHABLE_CODE)
    assert problems.sentence(TimedOut("socket read 10.0.0.3"), 1, 1) == unreachable
    assert problems.sentence(ConnectionRefusedError(111, "refused"), 1, 1) == unreachable
    assert problems.render(unreachable) == problems.UNREACHABLE
    for exc in (ChainUnavailable("x"), TimedOut("y"), ConnectionRefusedError(1, "z")):
        stored = problems.sentence(exc, 1, 1)
        assert not TECHNICAL.search(stored) and not TECHNICAL.search(problems.render(stored))


def test_a_failed_diagnostic_job_stores_the_sentence_beside_the_technical_error(worker):
    job = dispatch.enqueue(DIAGNOSTIC.name, {"fail_times": 5}, max_attempts=2)
    db.session.commit()
    worker.run()
    assert job.status == FAILED
    assert job.error.startswith("DiagnosticFailure: ")  # technical: type and where
    assert job.problem == "Failing on purpose: try 2 of the 5 asked to fail."
    assert job.problem_shown == job.problem
    # What every job.read holder hears live: the sentence, never the technical text.
    wire = live.serialize(job)
    assert wire["problem"] == job.problem and "error" not in wire
    assert "DiagnosticFailure" not in repr(wire)


def test_an_unexpected_error_through_the_lifecycle_reads_as_a_reference(app, manager):
    job = dispatch.enqueue(DIAGNOSTIC.name, {}, max_attempts=3, created_by_id=manager.id)
    db.session.commit()
    claimed = lifecycle.claim(job.id)
    db.session.commit()
    try:
        raise _Unknown("psycopg.errors.InternalError at 0xdeadbeef")
    except _Unknown as exc:
        failed, delay = lifecycle.fail(job.id, exc, claimed.lease_token)
    assert failed.status == RETRYING and delay is not None
    assert failed.problem == problems.coded(problems.GENERAL, ref=f"J{job.id}-1")
    assert failed.problem_shown == problems.general(f"J{job.id}-1")
    assert "psycopg" in failed.error and "psycopg" not in failed.problem
    # The page's script gets the code and values to write it in its own language.
    wire = live.serialize(failed)
    assert wire["problem_code"] == problems.GENERAL
    assert wire["problem_values"] == {"ref": f"J{job.id}-1"}


def test_retry_clears_the_sentence_with_the_error(worker, manager):
    from portal.jobs import services as jobs

    job = jobs.run_diagnostic(manager, fail_times=1)
    db.session.commit()
    worker.run()
    assert job.status == FAILED and job.problem
    jobs.retry(job)
    db.session.commit()
    db.session.refresh(job)
    assert job.error is None and job.problem is None and job.problem_shown == ""


def test_rows_failed_before_sentences_were_stored_show_the_general_sentence():
    assert problems.shown(None, "KeyError: 'x'\n  at a.py:1 in f", 12, 3) == problems.general(
        "J12-3"
    )
    assert problems.shown(None, None, 12, 3) == ""
    assert problems.shown("Said plainly.", "KeyError", 12, 3) == "Said plainly."
    # A row stored before the codes holds the English sentence itself: still shown.
    assert problems.shown(problems.WORKER_GONE, "lease", 12, 3) == problems.WORKER_GONE
    assert problems.wire(problems.WORKER_GONE, "lease", 12, 3)["problem_code"] == (
        problems.WORKER_GONE_CODE
    )


def test_the_job_page_shows_technical_details_only_to_those_who_look_after_the_portal(
    app, client, worker, make_user, login
):
    viewer = make_user("viewer")  # sees the jobs they started
    job = dispatch.enqueue(
        DIAGNOSTIC.name, {"fail_times": 5}, max_attempts=1, created_by_id=viewer.id
    )
    db.session.commit()
    worker.run()
    login(client, viewer)
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Failing on purpose: try 1 of the 5 asked to fail." in page
    assert "DiagnosticFailure" not in page and "Technical details" not in page
    listing = client.get("/jobs/").get_data(as_text=True)
    assert "DiagnosticFailure" not in listing and "Failing on purpose" in listing
    admin = make_user("admin")
    other = app.test_client()
    login(other, admin)
    page = other.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Technical details" in page and "DiagnosticFailure: Failing on purpose" in page
