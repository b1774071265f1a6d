"""The beneficiary list on PostgreSQL: deep pages by a row's sort values give what OFFSET gave,
without OFFSET; totals over the exact-count limit come from the planner, labelled "about"."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import event, text

pytestmark = pytest.mark.integration

PEOPLE = 150


@pytest.fixture(scope="module")
def world(app_factory, database_factory):
    """A database of its own: the counts and estimates below assume nobody else's rows."""
    app = app_factory(database_factory())
    from portal.accounts import services as accounts
    from portal.beneficiaries.models import INACTIVE, Beneficiary
    from portal.extensions import db
    from portal.imports import pipeline, validation
    from portal.projects import services as projects

    with app.app_context():
        roles = accounts.seed_roles()
        admin = accounts.create_user(
            f"lp-{secrets.token_hex(4)}@example.org", "Admin", "a-long-password-1", roles["admin"]
        )
        agent = accounts.create_user(
            f"lp-{secrets.token_hex(4)}@example.org", "Agent", "a-long-password-1",
            roles["field agent"],
        )  # fmt: skip
        mine = projects.create({"name": "Mine", "type": "cva"}, admin)
        other = projects.create({"name": "Other", "type": "cva"}, admin)
        projects.set_members(mine, {admin.id, agent.id})
        validator = validation.RowValidator({"N": "name", "P": "phone"}, ["N", "P"], "NP")
        rows = [validator.validate(k, [f"Person {k}", f"98410{k:05d}"]) for k in range(PEOPLE)]
        # Interleaved, so that each project's ids are spread over the whole range.
        for k in range(0, PEOPLE, 10):
            project = mine if (k // 10) % 3 else other
            pipeline.insert_rows(project.id, None, rows[k : k + 10])
        db.session.execute(
            Beneficiary.__table__.update().where(Beneficiary.id % 4 == 0).values(status=INACTIVE)
        )
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        yield app, db.session.get(type(agent), agent.id).id


@pytest.mark.parametrize("sort", ["newest", "oldest", "ref", "status"])
def test_deep_pages_match_offset_pages_without_offset(world, monkeypatch, sort):
    from portal.accounts.models import User
    from portal.beneficiaries import services
    from portal.extensions import db

    app, agent_id = world
    monkeypatch.setattr(services, "PER_PAGE", 7)
    monkeypatch.setattr(services, "NUMBERED_PAGES", 2)
    with app.app_context():
        agent = db.session.get(User, agent_id)
        params = services.ListQuery(sort=sort)
        everyone = [p.id for p in db.session.scalars(services.search(agent, params))]
        assert len(everyone) == 100  # two projects in three are the agent's

        statements = []

        def seen(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        page = services.list_page(agent, params)
        pages = [page]
        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            while pages[-1].next is not None:
                pages.append(services.list_page(agent, params, **pages[-1].next))
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        assert [p.id for page in pages for p in page.items] == everyone
        assert len(pages) == 15 and all(page.cursor for page in pages[2:])
        offsets = [s for s in statements if "OFFSET" in s]
        assert len(offsets) == 1  # page 2, the last numbered one; the 13 after it seek


def test_totals_over_the_limit_are_the_planner_s_estimate(world, monkeypatch):
    from portal.accounts.models import User
    from portal.beneficiaries import services
    from portal.extensions import db

    app, agent_id = world
    with app.app_context():
        agent = db.session.get(User, agent_id)
        exact = services.list_page(agent, services.ListQuery())
        assert (exact.total, exact.approximate) == (100, False)
        monkeypatch.setattr(services, "EXACT_COUNT_LIMIT", 20)
        about = services.list_page(agent, services.ListQuery())
        assert about.approximate and 50 <= about.total <= 200
        inactive = services.list_page(agent, services.ListQuery(status="inactive"))
        assert inactive.approximate or inactive.at_least
