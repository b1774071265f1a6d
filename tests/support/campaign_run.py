"""Driving a campaign against real processes: people in bulk, a campaign sent, its progress
read from the database. Shared by the chaos test and ``bench/campaign.py``."""

from __future__ import annotations

import time

import sqlalchemy as sa


def seed_people(project_id: int, count: int, start: int = 0) -> list[str]:
    """``count`` active people in the project, every other one in Nepali; their numbers.
    Inside an app context; commits in batches (written directly: enrolment's checks and audit
    are not what is measured)."""
    from portal.beneficiaries.models import Beneficiary, BeneficiaryPII, ProjectBeneficiary
    from portal.beneficiaries.services import new_ref
    from portal.crypto import blind_index
    from portal.extensions import db

    numbers = []
    for i in range(start, start + count):
        phone = f"+977984{i:07d}"
        numbers.append(phone)
        person = Beneficiary(ref=new_ref(), language="ne" if i % 2 else "en")
        person.pii = BeneficiaryPII(
            name=f"Person {i}", phone=phone, phone_index=blind_index("phone:" + phone)
        )
        db.session.add(person)
        if len(numbers) % 500 == 0:
            db.session.flush()
    db.session.flush()
    ids = db.session.scalars(
        sa.select(Beneficiary.id).where(
            ~Beneficiary.id.in_(sa.select(ProjectBeneficiary.beneficiary_id))
        )
    ).all()
    db.session.add_all(ProjectBeneficiary(project_id=project_id, beneficiary_id=i) for i in ids)
    db.session.commit()
    return numbers


def launch(project_id: int, user_id: int | None, name: str = "Distribution notice") -> int:
    """Compose and send a campaign to the whole project now; its id (commits, so the start
    job's message goes to the broker)."""
    from portal.campaigns import services
    from portal.extensions import db
    from portal.projects.models import Project

    project = db.session.get(Project, project_id)
    campaign = services.create(
        project,
        {"name": name, "channel": "sms", "audience": "project"},
        {
            "en": "Food distribution on Friday at the school, from 9.",
            "ne": "शुक्रबार बिहान ९ बजेदेखि विद्यालयमा खाद्यान्न वितरण।",
        },
        user_id,
    )
    services.send(campaign, None, user_id)
    db.session.commit()
    return campaign.id


def counts(engine, campaign_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select status, count(*) from outbox_messages where campaign_id = :c "
                "group by status"
            ),
            {"c": campaign_id},
        ).all()
    return {status: n for status, n in rows}


def wait_counts(engine, campaign_id: int, until, timeout: float, what: str, logs=lambda: ""):
    """Poll the campaign's counts until ``until(counts)``; the counts."""
    deadline = time.monotonic() + timeout
    found: dict[str, int] = {}
    while time.monotonic() < deadline:
        found = counts(engine, campaign_id)
        if until(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {found}){logs()}")
