"""The home page per project: its figures (from the running totals, equal to a recount), what
waits for the signed-in user, and the getting-started steps that tick themselves."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, update

from portal.approvals import services as approvals
from portal.chain.models import ProjectChain
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.home import figures
from portal.jobs.models import FAILED, Job
from portal.redemptions.models import Redemption
from portal.timeutil import utcnow
from tests.support import chain

R = Redemption.__table__


def _pay(project, vendor, person, amount: int, status: str = "settled", at: datetime | None = None):
    at = at or utcnow()
    db.session.execute(
        insert(R).values(
            project_id=project.id,
            vendor_id=vendor.id,
            beneficiary_id=person.id,
            status=status,
            amount=amount,
            code_expires_at=at + timedelta(minutes=5),
            created_at=at,
            confirmed_at=at,
            settled_at=at if status == "settled" else None,
        )
    )
    # The conditional UPDATE that accepts a code takes the amount from the entitlement.
    db.session.execute(
        update(Entitlement)
        .where(Entitlement.project_id == project.id, Entitlement.beneficiary_id == person.id)
        .values(redeemed=Entitlement.redeemed + amount)
    )


def _card(html: str, project) -> str:
    start = html.index(f'id="project-{project.id}"')
    return html[start : html.index("</section>", start)]


def _steps(card: str) -> dict[str, str]:
    return dict(re.findall(r'data-step="(\w+)" data-done="(\w+)"', card))


def test_a_new_project_lists_the_steps_and_each_ticks_itself_from_the_data(
    app, client, login, make_user, make_project, make_beneficiary, make_vendor
):
    user = make_user("admin")
    project = make_project(name="Winter Relief", status="active", members=[user])
    login(client, user)
    card = _card(client.get("/").get_data(as_text=True), project)
    assert _steps(card) == dict.fromkeys(
        ("enrol", "vendors", "fund", "allocate", "distribute"), "no"
    )
    assert 'href="/imports/new"' in card and f"/projects/{project.id}/chain" in card

    people = [make_beneficiary(project=project) for _ in range(2)]
    vendor = make_vendor(project=project)
    chain.pretend_deployed(project)
    db.session.flush()
    db.session.execute(
        update(ProjectChain).where(ProjectChain.project_id == project.id).values(funded=50_000)
    )
    chain.entitle(project, people[0], 20_000)
    db.session.commit()
    steps = _steps(_card(client.get("/").get_data(as_text=True), project))
    assert steps == {
        "enrol": "yes",
        "vendors": "yes",
        "fund": "yes",
        "allocate": "yes",
        "distribute": "no",
    }

    _pay(project, vendor, people[0], 1_500)
    db.session.commit()
    card = _card(client.get("/").get_data(as_text=True), project)
    assert "data-steps" not in card  # every step done: the checklist gives way to the figures
    assert "NPR\u00a0500.00" in card  # funded
    assert "NPR\u00a0200.00" in card and "NPR\u00a015.00" in card  # allocated, spent
    assert "NPR\u00a0185.00" in card  # remaining


def test_a_step_the_user_may_not_do_names_who_may_and_has_no_link(
    app, client, login, make_user, make_project
):
    viewer = make_user("viewer")
    project = make_project(status="active", members=[viewer])
    login(client, viewer)
    card = _card(client.get("/").get_data(as_text=True), project)
    assert _steps(card)["fund"] == "no"
    fund = card[card.index('data-step="fund"') :]
    fund = fund[: fund.index("</li>")]
    assert "/chain" not in fund and "Someone with the role" in fund and "admin" in fund
    assert "Funded" not in card  # money figures are for those who may watch the dashboard


def test_a_cash_project_has_no_vendor_or_distribution_step(
    app, client, login, make_user, make_project
):
    user = make_user("admin")
    project = make_project(type="cash", status="active", members=[user])
    login(client, user)
    steps = _steps(_card(client.get("/").get_data(as_text=True), project))
    assert list(steps) == ["enrol", "fund", "allocate"]


def test_what_waits_for_the_user_is_counted_per_project_with_links(
    app, client, login, make_user, make_project
):
    approver = make_user("admin")
    asker = make_user("admin")
    project = make_project(status="active", members=[approver, asker])
    other = make_project(status="active", members=[approver, asker])
    chain.pretend_deployed(project)
    db.session.flush()
    approvals.ask("funding", project, subject_id=project.id, amount=1000, note="", user_id=asker.id)
    db.session.add(
        Job(kind="disbursement.batch", queue="contracts", status=FAILED, project_id=project.id)
    )
    db.session.commit()

    login(client, approver)
    html = client.get("/").get_data(as_text=True)
    card = _card(html, project)
    assert "<strong>1</strong> funding request to decide" in card
    assert f"/jobs/?status=failed&amp;project={project.id}" in card
    assert "Waiting for you" not in _card(html, other)

    client.post("/logout")
    login(client, asker)  # their own request does not wait for them
    assert "funding request" not in _card(client.get("/").get_data(as_text=True), project)


def test_today_counts_only_payments_confirmed_since_midnight(
    app, make_project, make_beneficiary, make_vendor
):
    project = make_project(status="active")
    person = make_beneficiary(project=project)
    vendor = make_vendor(project=project)
    chain.pretend_deployed(project)
    chain.entitle(project, person, 10_000)
    db.session.flush()
    now = datetime(2026, 12, 4, 9, 30)
    _pay(project, vendor, person, 300, at=now - timedelta(hours=10))  # yesterday
    _pay(project, vendor, person, 200, at=now - timedelta(hours=9))
    _pay(project, vendor, person, 100, at=now)
    _pay(project, vendor, person, 50, status="accepted", at=now)  # not confirmed yet
    f = figures.for_projects([project.id], now=now)[project.id]
    assert (f.today_count, f.today_amount) == (2, 300)
    assert (f.spent, f.pending, f.remaining, f.served) == (600, 50, 10_000 - 650, 1)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),  # project
            st.integers(0, 2),  # person
            st.integers(1, 5_000),
            st.sampled_from(["settled", "accepted", "submitted", "failed"]),
        ),
        max_size=25,
    )
)
def test_the_figures_equal_a_recount_of_the_rows(app, payments):
    from tests.support import dashboard_machine

    db.session.rollback()
    world = dashboard_machine.make_world(db.session, projects=2, vendors=1, people=3)
    db.session.flush()
    for project_id in world["projects"]:
        for person_id in world["people"]:
            db.session.add(
                Entitlement(
                    project_id=project_id,
                    beneficiary_id=person_id,
                    address="0x" + "33" * 20,
                    allocated=100_000,
                )
            )
    db.session.flush()
    for project, person, amount, status in payments:
        db.session.execute(
            insert(R).values(
                project_id=world["projects"][project],
                vendor_id=world["vendors"][0],
                beneficiary_id=world["people"][person],
                status=status,
                amount=amount,
                code_expires_at=utcnow() + timedelta(minutes=5),
                created_at=utcnow(),
                confirmed_at=utcnow(),
                settled_at=utcnow() if status == "settled" else None,
            )
        )
    found = figures.for_projects(world["projects"])

    def total(project_id, *statuses):
        return db.session.scalar(
            select(func.coalesce(func.sum(R.c.amount), 0)).where(
                R.c.project_id == project_id, R.c.status.in_(statuses)
            )
        )

    for project_id in world["projects"]:
        f = found[project_id]
        assert f.spent == total(project_id, "settled")
        assert f.pending == total(project_id, "accepted", "submitted")
        assert f.today_amount == f.spent
        assert f.served == db.session.scalar(
            select(func.count(func.distinct(R.c.beneficiary_id))).where(
                R.c.project_id == project_id, R.c.status == "settled"
            )
        )
        assert f.allocated == 3 * 100_000
    db.session.rollback()
