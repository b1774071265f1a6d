"""The ledger's operations on one entitlement and a project's funded total: what each writes,
what each refuses, and, over generated sequences of operations, that the row always equals a
plain model of it and never goes below zero."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.chain.models import ProjectChain
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.ledger import entitlements as ledger
from portal.ledger import funds
from tests.support import chain

ADDRESS = "0x" + "cd" * 20


@pytest.fixture
def person(app, make_project, make_beneficiary):
    project = make_project(status="active")
    chain.pretend_deployed(project)
    person = make_beneficiary(project=project)
    db.session.commit()
    return project, person


def _row(project, person) -> Entitlement | None:
    db.session.expire_all()
    return db.session.scalar(
        select(Entitlement).where(
            Entitlement.project_id == project.id, Entitlement.beneficiary_id == person.id
        )
    )


def test_credit_creates_then_adds(person):
    project, someone = person
    assert ledger.credit(project.id, []) == 0
    assert ledger.credit(project.id, [(someone.id, ADDRESS, 500)]) == 1
    ledger.credit(project.id, [(someone.id, ADDRESS, 250)])
    row = _row(project, someone)
    assert (row.allocated, row.redeemed, row.revoked, row.address) == (750, 0, 0, ADDRESS)


def test_reserve_only_what_is_left_and_release_never_below_zero(person):
    project, someone = person
    assert not ledger.reserve(project.id, someone.id, 1)  # no entitlement yet
    ledger.credit(project.id, [(someone.id, ADDRESS, 1_000)])
    assert ledger.reserve(project.id, someone.id, 600)
    assert not ledger.reserve(project.id, someone.id, 401)
    assert ledger.reserve(project.id, someone.id, 400)
    assert _row(project, someone).remaining == 0
    assert ledger.release(project.id, someone.id, 400)
    assert not ledger.release(project.id, someone.id, 601)
    assert _row(project, someone).redeemed == 600


def test_uncredit_takes_back_from_each_person(person, make_beneficiary):
    project, someone = person
    other = make_beneficiary(project=project)
    ledger.credit(project.id, [(someone.id, ADDRESS, 300), (other.id, ADDRESS, 300)])
    assert ledger.uncredit(project.id, [someone.id, other.id], 100) == 2
    assert _row(project, someone).allocated == 200 == _row(project, other).allocated


def test_funded_total_adds_and_takes_back(person):
    project, _ = person
    funds.add_funded(project.id, 5_000)
    funds.add_funded(project.id, 2_000)
    funds.add_funded(project.id, -2_000)
    db.session.expire_all()
    assert db.session.get(ProjectChain, project.id).funded == 5_000


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["credit", "reserve", "release"]), st.integers(1, 2_000)),
    max_size=30,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
def test_any_sequence_matches_the_model_and_stays_non_negative(person, operations):
    project, someone = person
    db.session.execute(Entitlement.__table__.delete())  # a fresh row per example
    allocated = redeemed = 0
    exists = False
    for name, amount in operations:
        if name == "credit":
            ledger.credit(project.id, [(someone.id, ADDRESS, amount)])
            allocated += amount
            exists = True
        elif name == "reserve":
            done = ledger.reserve(project.id, someone.id, amount)
            assert done == (exists and allocated - redeemed >= amount)
            redeemed += amount if done else 0
        else:
            done = ledger.release(project.id, someone.id, amount)
            assert done == (exists and redeemed >= amount)
            redeemed -= amount if done else 0
        row = _row(project, someone)
        if row is not None:
            assert (row.allocated, row.redeemed) == (allocated, redeemed)
            assert row.remaining >= 0 and row.redeemed >= 0
    db.session.rollback()
