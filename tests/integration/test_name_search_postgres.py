"""Name search on PostgreSQL, on a migrated database: enrolment, import (COPY and INSERT),
edit, erasure (rows gone with the person), the rebuild command, and a plan that reads the
index rather than decrypting anyone."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select, text

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(app_factory, database_factory):
    app = app_factory(database_factory("portal_names"))
    from portal.accounts import services as accounts
    from portal.extensions import db
    from portal.projects import services as projects

    with app.app_context():
        roles = accounts.seed_roles()
        admin = accounts.create_user(
            f"ns-{secrets.token_hex(4)}@example.org", "Admin", "a-long-password-1", roles["admin"]
        )
        agent = accounts.create_user(
            f"ns-{secrets.token_hex(4)}@example.org", "Agent", "a-long-password-1",
            roles["field agent"],
        )  # fmt: skip
        mine = projects.create({"name": "Mine", "type": "cva"}, admin)
        other = projects.create({"name": "Other", "type": "cva"}, admin)
        projects.set_members(mine, {admin.id, agent.id})
        db.session.commit()
        yield app, admin.id, agent.id, mine.id, other.id


def _search(user_id: int, q: str) -> list[int]:
    from portal.accounts.models import User
    from portal.beneficiaries import services
    from portal.extensions import db

    user = db.session.get(User, user_id)
    return list(db.session.scalars(services.search(user, services.ListQuery(q=q))))


def _ids(people) -> list[int]:
    return sorted(p.id for p in people)


def test_enrolled_imported_and_copied_people_are_found_by_name(world):
    from portal.beneficiaries import services
    from portal.extensions import db
    from portal.imports import bulk, pipeline, validation
    from portal.projects.models import Project
    from portal.timeutil import utcnow

    app, admin_id, agent_id, mine_id, other_id = world
    with app.app_context():
        mine, other = db.session.get(Project, mine_id), db.session.get(Project, other_id)
        enrolled = services.create(
            {"name": "Gita Magar", "phone": "9841100001", "location": "Bharatpur ward 4"},
            project=mine,
        )
        validator = validation.RowValidator(
            {"N": "name", "P": "phone", "L": "location"}, ["N", "P", "L"], "NP"
        )
        inserted = pipeline.insert_rows(
            mine.id,
            None,
            [
                validator.validate(2, ["गीता थापा", "9841100002", "Gorkha"]),
                validator.validate(3, ["Sita Rai", "9841100003", "Bharatpur"]),
            ],
        )
        writer = bulk.CopyWriter(other.id, None, utcnow())
        connection = db.session.connection()
        prepared = writer.prepare(
            connection, [validator.validate(4, ["Gītā Shrestha", "9841100004", "Hetauda"])]
        )
        copied = writer.write(connection, prepared)
        db.session.commit()

        gita_thapa, sita = inserted
        (gita_shrestha,) = copied
        assert _ids(_search(admin_id, "gita")) == sorted([enrolled.id, gita_thapa, gita_shrestha])
        assert [p.id for p in _search(admin_id, "गीता मगर")] == [enrolled.id]
        assert [p.id for p in _search(admin_id, "thapa")] == [gita_thapa]
        assert _ids(_search(admin_id, "bharat")) == sorted([enrolled.id, sita])
        assert [p.id for p in _search(admin_id, "sita bharatpur")] == [sita]
        # The field agent sees the project "Mine" only.
        assert _ids(_search(agent_id, "gita")) == sorted([enrolled.id, gita_thapa])
        # Exact search by phone still answers alone.
        assert [p.id for p in _search(admin_id, "984-1100003")] == [sita]
        db.session.remove()


def test_edit_and_erasure_keep_the_index(world):
    from portal.beneficiaries import name_search, services
    from portal.beneficiaries.models import Beneficiary, BeneficiaryNameIndex
    from portal.extensions import db
    from portal.projects.models import Project

    app, admin_id, _, mine_id, _ = world
    with app.app_context():
        person = services.create(
            {"name": "Januka Tamang", "phone": "9841100010"},
            project=db.session.get(Project, mine_id),
        )
        db.session.commit()
        services.update(person, {"name": "Januka Gurung", "phone": person.pii.phone})
        db.session.commit()
        assert _search(admin_id, "tamang") == []
        assert [p.id for p in _search(admin_id, "januka gurung")] == [person.id]

        rows = select(BeneficiaryNameIndex).where(BeneficiaryNameIndex.beneficiary_id == person.id)
        assert db.session.scalars(rows).all()
        name_search.forget(person.id)  # what an erasure that keeps the record does
        db.session.commit()
        assert _search(admin_id, "januka") == []
        name_search.index_person(person.id, "Januka Gurung", None)
        db.session.commit()
        db.session.delete(db.session.get(Beneficiary, person.id))  # and one that deletes it
        db.session.commit()
        assert db.session.scalars(rows).all() == []
        db.session.remove()


def test_rebuild_command_and_the_plan(world):
    from portal.beneficiaries import name_search, services
    from portal.extensions import db

    app, admin_id, *_ = world
    with app.app_context():
        before = db.session.execute(
            text("select beneficiary_id, terms from beneficiary_name_index")
        )
        before = {pk: sorted(terms) for pk, terms in before.all()}
        db.session.remove()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["name-index", "--if-stale"])
    assert result.exit_code == 0, result.output
    assert "people" in result.output
    assert runner.invoke(args=["name-index", "--if-stale"]).output == ""
    with app.app_context():
        after = db.session.execute(text("select beneficiary_id, terms from beneficiary_name_index"))
        # The rebuild gives what the writes kept.
        assert {pk: sorted(terms) for pk, terms in after.all()} == before
        assert not name_search.is_stale()

        from portal.accounts.models import User

        user = db.session.get(User, admin_id)
        query = services.search(user, services.ListQuery(q="gita magar"))
        compiled = query.compile(
            dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        # A handful of rows is read whole; with scans ruled out, the index must serve.
        connection = db.session.connection()
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = connection.exec_driver_sql("EXPLAIN " + compiled.string, compiled.params)
        plan = "\n".join(r[0] for r in plan)
        assert "Bitmap Index Scan on ix_beneficiary_name_index_terms" in plan, plan
        # Nobody's name is decrypted to answer: the personal data table is not scanned.
        assert "Seq Scan on beneficiary_pii" not in plan, plan
        db.session.remove()
