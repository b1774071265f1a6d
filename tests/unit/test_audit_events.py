"""What the audit log hears: every domain signal, the chain and money steps, and every read of a
person's personal data (who, whose, when; never the data itself)."""

from __future__ import annotations

import json

import blinker
import pytest
from sqlalchemy import func, select

from portal import events
from portal.audit import listeners
from portal.audit import services as audit
from portal.audit.models import AuditEntry
from portal.beneficiaries import groups
from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.models import Beneficiary
from portal.cards import services as cards
from portal.extensions import db
from portal.projects.models import Project
from tests.support import chain


def _signals() -> dict[str, blinker.NamedSignal]:
    return {n: s for n, s in vars(events).items() if isinstance(s, blinker.NamedSignal)}


def _entries(action: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


def test_every_domain_signal_has_an_audit_listener(app):
    """A signal added to portal.events without an audit listener fails here."""
    signals = _signals()
    assert len(signals) >= 20, "the signals were not found"
    missing = [n for n, s in signals.items() if s not in listeners.LISTENERS]
    assert not missing, f"signals without an audit listener: {missing}"
    unconnected = [
        n for n, s in signals.items() if listeners.LISTENERS[s] not in s.receivers.values()
    ]
    assert not unconnected, f"audit listeners not connected: {unconnected}"


@pytest.mark.parametrize(
    "name",
    sorted(n for n, s in _signals().items() if listeners.LISTENERS.get(s) is listeners._record),
)
def test_each_signal_writes_a_chained_entry(app, name):
    # Called as the signal calls it (other features' listeners need real senders).
    listeners.LISTENERS[_signals()[name]](
        "thing", action=f"test.{name}", summary=f"Sent {name}", project_id=7, data={"n": 1}
    )
    (entry,) = _entries(f"test.{name}")
    assert entry.project_id == 7 and entry.summary == f"Sent {name}"
    assert audit.verify().ok


def test_deploy_fund_and_disburse_are_audited(app, worker, make_project, make_beneficiary):
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(3)]
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="2.50", beneficiary_ids=[p.id for p in people], batch=2)
    db.session.expire_all()

    actions = [e.action for e in _entries() if e.project_id == project.id]
    for step in (
        "chain.deploy_started",
        "chain.token_deployed",
        "chain.deployed",
        "chain.funding_started",
        "chain.funded",
        "disbursement.created",
        "disbursement.started",
    ):
        assert actions.count(step) == 1, (step, actions)
    # two deployments, one mint and two batches, each confirmed on chain
    assert actions.count("chain.tx_confirmed") == 5
    (funding,) = _entries("chain.funding_started")
    assert json.loads(funding.data)["amount"] == 10_000
    (created,) = _entries("disbursement.created")
    assert json.loads(created.data) | {"left_out": 0} == {
        "amount_each": 250,
        "beneficiaries": 3,
        "total": 750,
        "batch_size": 2,
        "left_out": 0,
    }
    (confirmed, *_) = _entries("chain.tx_confirmed")
    assert json.loads(confirmed.data)["tx_hash"].startswith("0x")
    assert audit.verify().ok


# --- reading personal data --------------------------------------------------------------------


@pytest.fixture
def staff(make_user):
    """A user of each role, all members of the person's project."""
    return {role: make_user(role) for role in ("programme manager", "viewer", "field agent")}


@pytest.fixture
def person(make_project, make_beneficiary, staff):
    project = make_project(members=list(staff.values()))
    person = make_beneficiary(
        project=project, name="Sita Gurung", phone="9841234567", national_id="12-34-56789"
    )
    db.session.commit()
    return person


def _pii_reads() -> list[dict]:
    return [
        {"actor": e.actor_id, "target": e.target_id, **json.loads(e.data)}
        for e in _entries("beneficiary.pii_read")
    ]


def _no_pii_in_the_log() -> None:
    for entry in _entries():
        text = f"{entry.summary} {entry.data}"
        for value in ("Sita", "Gurung", "9841234567", "12-34-56789"):
            assert value not in text, entry.action


def test_the_page_with_personal_data_is_audited(client, login, staff, person):
    user = staff["programme manager"]
    login(client, user)
    assert "Sita Gurung" in client.get(f"/beneficiaries/{person.id}").get_data(as_text=True)
    assert "Sita Gurung" in client.get(f"/beneficiaries/{person.id}/edit").get_data(as_text=True)
    assert "Sita Gurung" in client.get("/beneficiaries/").get_data(as_text=True)
    reads = _pii_reads()
    assert [r["via"] for r in reads] == ["page", "edit form", "list"]
    assert all(r["actor"] == user.id and r["ids"] == [person.id] for r in reads)
    assert reads[0]["target"] == str(person.id)
    _no_pii_in_the_log()
    assert audit.verify().ok


def test_masked_pages_are_not_recorded_as_reads(client, login, staff, person):
    login(client, staff["viewer"])
    assert "Sita Gurung" not in client.get(f"/beneficiaries/{person.id}").get_data(as_text=True)
    client.get("/beneficiaries/")
    assert _pii_reads() == []


def test_a_card_lookup_is_audited(client, login, staff, person):
    user = staff["field agent"]
    card, token = cards.issue(person)
    cards.revoke(card)
    db.session.commit()
    login(client, user)
    response = client.post("/cards/lookup", data={"token": token})
    assert response.status_code == 200
    (read,) = _pii_reads()
    assert read["actor"] == user.id and read["ids"] == [person.id]
    assert read["via"] == "card lookup, card revoked"
    assert token not in json.dumps([e.data for e in _entries()])
    _no_pii_in_the_log()


def test_an_unknown_card_is_not_recorded_as_a_read(client, login, staff, person):
    login(client, staff["field agent"])
    client.post("/cards/lookup", data={"token": "ABCD-EFGH-JKLM"})
    assert _pii_reads() == []


def test_every_page_that_shows_personal_data_is_audited(app, client, login, staff, person):
    """Walks every GET page with every id the data has: a page whose body shows the person's
    name or phone must have added an entry saying who read it (or an export/print entry)."""
    person = db.session.get(Beneficiary, person.id)
    (project_id,) = beneficiaries.project_ids_of(person)
    group = groups.create(db.session.get(Project, project_id), "Ward 4", "")
    groups.add_members(group, [person])
    cards.issue(person)
    db.session.commit()
    user = staff["programme manager"]
    login(client, user)
    audited = {"beneficiary.pii_read", "beneficiaries.exported", "cards.downloaded"}
    unaudited, shown = [], []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        needed = sorted(set(rule.arguments) - set(rule.defaults or {}))
        if len(needed) > 1 or any(
            type(rule._converters.get(a)).__name__ != "IntegerConverter" for a in needed
        ):
            continue
        values = [{}] if not needed else [{needed[0]: i} for i in range(1, 6)]
        for value in values:
            url = rule.build({**(rule.defaults or {}), **value}, append_unknown=False)[1]
            before = db.session.scalar(select(func.max(AuditEntry.seq))) or 0
            body = client.get(url).get_data(as_text=True)
            if "Sita Gurung" not in body and "9841234567" not in body:
                continue
            shown.append(url)
            new = db.session.scalars(select(AuditEntry.action).where(AuditEntry.seq > before))
            if not audited & set(new):
                unaudited.append(url)
    assert shown, "no page showed the person's data: the walk proves nothing"
    assert not unaudited, f"pages showing personal data without an audit entry: {unaudited}"
