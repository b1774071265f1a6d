"""The money pages through HTTP: deploy, fund, prepare and start a disbursement, retry a batch."""

from __future__ import annotations

from sqlalchemy import select

from portal.beneficiaries import groups
from portal.chain import contracts, setup, signers
from portal.chain.models import ChainEffect, ChainTx
from portal.disbursements.models import Disbursement, DisbursementBatch, Entitlement
from portal.extensions import db
from tests.support import chain


def _deployed_project(make_project, make_beneficiary, worker, people=4, members=()):
    project = make_project(status="active", members=members)
    persons = [make_beneficiary(project=project) for _ in range(people)]
    group = groups.create(project, "November", "food basket")
    groups.add_members(group, persons)
    db.session.commit()
    chain.deploy(worker, project)
    return project, group, persons


def test_deploy_and_fund_from_the_page(
    app, client, login, make_user, make_project, worker, second_approver
):
    user = make_user("finance")
    project = make_project(status="active", members=[user])
    login(client, user)
    page = client.get(f"/projects/{project.id}/chain")
    assert page.status_code == 200 and b"Set up payments for this project" in page.data

    bad = client.post(f"/projects/{project.id}/chain/deploy", data={"symbol": "x", "decimals": 9})
    assert bad.status_code == 422
    assert b"2 to 11 letters or digits" in bad.data and b"Between 0 and 6" in bad.data
    assert setup.state(project.id) is None

    ok = client.post(f"/projects/{project.id}/chain/deploy", data={"symbol": "food", "decimals": 2})
    assert ok.status_code == 302
    worker.run("contracts")
    pc = setup.state(project.id)
    assert (pc.status, pc.symbol) == ("deployed", "FOOD")

    too_fine = client.post(f"/projects/{project.id}/chain/fund", data={"amount": "1.001"})
    assert too_fine.status_code == 422 and b"At most 2 digits" in too_fine.data
    client.post(
        f"/projects/{project.id}/chain/fund",
        data={"amount": "2,500.50", "note": "grant", "confirmed": "yes"},
    )
    worker.run("contracts")
    assert setup.state(project.id).funded == 0  # asked, not yet approved: nothing minted
    assert b"Waiting for approval by" in client.get(f"/projects/{project.id}/chain").data
    second_approver.approve("funding")
    worker.run("contracts")
    assert setup.state(project.id).funded == 250_050
    assert b"2,500.50" in client.get(f"/projects/{project.id}/chain").data


def test_viewer_cannot_deploy_or_disburse(app, client, login, make_user, make_project):
    user = make_user("viewer")
    project = make_project(status="active", members=[user])
    login(client, user)
    assert client.get(f"/projects/{project.id}/chain").status_code == 403
    assert (
        client.post(f"/projects/{project.id}/chain/deploy", data={"symbol": "AB"}).status_code
        == 403
    )
    assert client.get(f"/projects/{project.id}/disbursements/new").status_code == 403


def test_disbursement_by_group_and_by_selection(
    app, client, login, make_user, make_project, make_beneficiary, worker, second_approver
):
    user = make_user("finance")
    project, group, persons = _deployed_project(
        make_project, make_beneficiary, worker, members=[user]
    )
    chain.fund(worker, project, "100")
    login(client, user)

    over = client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": "Too much", "amount": "30", "group_id": group.id, "batch_size": 3},
    )
    assert over.status_code == 302  # a draft may promise more than is funded...
    draft = db.session.scalar(select(Disbursement).order_by(Disbursement.id.desc()))
    page = client.get(f"/disbursements/{draft.id}").get_data(as_text=True)
    assert "Needs NPR\u00a020.00 more" in page  # 4 people x 30 - 100 funded, shown before Start
    refused = client.post(f"/disbursements/{draft.id}/start", follow_redirects=True)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 409  # ...not start, and the page says why and what to do
    assert "needs NPR\u00a020.00 more: fund the project or reduce the amount" in text
    assert f"/disbursements/{draft.id}/edit" in text and f"/projects/{project.id}/chain" in text
    api = client.post(f"/disbursements/{draft.id}/start", headers={"Accept": "application/json"})
    assert api.status_code == 409 and api.is_json and "reduce the amount" in api.json["detail"]

    unknown = client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": "Pick", "amount": "5", "group_id": 0, "refs": "NOPE1", "batch_size": 3},
    )
    assert unknown.status_code == 422 and b"unknown reference" in unknown.data

    refs = "\n".join(p.ref for p in persons[:2])
    made = client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": "Pick", "amount": "5", "group_id": 0, "refs": refs, "batch_size": 1},
    )
    d = db.session.get(Disbursement, int(made.headers["Location"].rsplit("/", 1)[1]))
    assert (d.beneficiaries, d.total, len(d.batches)) == (2, 1000, 2)
    client.post(f"/disbursements/{d.id}/start")
    second_approver.approve("disbursement_start")
    worker.run("contracts")
    page = client.get(f"/disbursements/{d.id}")
    assert b"completed" in page.data and b"2 of 2 people" in page.data
    allocated = dict(
        db.session.execute(select(Entitlement.beneficiary_id, Entitlement.allocated)).all()
    )
    assert allocated == {persons[0].id: 500, persons[1].id: 500}


def test_failed_batch_shows_its_reason_and_retry_never_allocates_twice(
    app, client, login, make_user, make_project, make_beneficiary, worker, second_approver
):
    user = make_user("finance")
    project, group, persons = _deployed_project(
        make_project, make_beneficiary, worker, members=[user]
    )
    chain.fund(worker, project, "40")
    login(client, user)
    client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": "Nov", "amount": "10", "group_id": group.id, "batch_size": 2},
    )
    d = db.session.scalar(select(Disbursement))
    client.post(f"/disbursements/{d.id}/start")
    second_approver.approve("disbursement_start")

    # The funds leave the contract behind the portal's back: the batches cannot be covered.
    # (Withdrawing is the admin's, the treasury signer's on a version-2 contract.)
    pc = setup.state(project.id)
    operator = signers.account(signers.treasury())
    contract = contracts.at(pc.contract_kind, pc.contract_address)
    w3 = contracts.client.web3()
    tx = contract.functions.withdrawUnallocated(operator.address, 4000).build_transaction(
        {"from": operator.address, "nonce": w3.eth.get_transaction_count(operator.address)}
    )
    w3.eth.send_raw_transaction(operator.sign_transaction(tx).raw_transaction)
    db.session.commit()

    worker.run("contracts")
    d = db.session.get(Disbursement, d.id)
    assert d.status == "failed"
    failed = [b for b in d.batches if b.status == "failed"]
    assert failed and "InsufficientFunding" in failed[0].error
    page = client.get(f"/disbursements/{d.id}")
    assert b"InsufficientFunding" in page.data and b"Retry" in page.data

    chain.fund(worker, project, "40")
    for batch in failed:
        assert client.post(f"/disbursements/{d.id}/batches/{batch.id}/retry").status_code == 302
    worker.run("contracts")
    d = db.session.get(Disbursement, d.id)
    assert d.status == "completed"
    for person in persons:
        assert (
            contract.functions.entitlementOf(
                contracts.client.web3().to_checksum_address(
                    db.session.scalar(
                        select(Entitlement.address).where(Entitlement.beneficiary_id == person.id)
                    )
                )
            ).call()
            == 1000
        )


def test_a_batch_found_done_on_chain_is_not_sent_again(app, make_project, make_beneficiary, worker):
    from portal.disbursements import services

    project, group, _ = _deployed_project(make_project, make_beneficiary, worker, people=3)
    chain.fund(worker, project, "100")
    d = chain.allocate(worker, project, amount="10", group_id=group.id, batch=3)
    batch = db.session.scalar(
        select(DisbursementBatch).where(DisbursementBatch.disbursement_id == d.id)
    )
    sent_before = db.session.scalar(select(db.func.count()).select_from(ChainTx))

    # As if the worker died after the chain accepted the batch but before the database knew.
    batch.status = "pending"
    db.session.execute(db.update(ChainTx).where(ChainTx.ref_id == batch.id).values(ref_id=None))
    db.session.execute(db.delete(Entitlement))
    db.session.execute(db.delete(ChainEffect))  # the effect committed with the batch's status
    db.session.commit()

    assert services.run_batch(batch.id) == "found done on chain"
    db.session.commit()
    assert db.session.scalar(select(db.func.count()).select_from(ChainTx)) == sent_before
    assert sorted(db.session.scalars(select(Entitlement.allocated))) == [1000, 1000, 1000]
    pc = setup.state(project.id)
    contract = contracts.at(pc.contract_kind, pc.contract_address)
    assert contract.functions.outstanding().call() == 3000


def _running_draft(project, group, title: str) -> Disbursement:
    from portal.disbursements import services

    d, _ = services.create(
        project,
        title=title,
        amount=500,
        group_id=group.id,
        beneficiary_ids=None,
        batch_size=2,
        user_id=None,
    )
    d.status = "running"
    db.session.commit()
    return d


def test_a_worker_dying_after_commit_before_the_broadcast_loses_nothing(
    app, make_project, make_beneficiary, worker, monkeypatch
):
    from portal.chain import client, txmanager
    from portal.disbursements import services

    project, group, _ = _deployed_project(make_project, make_beneficiary, worker, people=2)
    chain.fund(worker, project, "100")
    d = _running_draft(project, group, "Crash after commit")
    batch = d.batches[0]

    # The batch job's unit of work commits (signed transaction and its follow-up job), then
    # the process dies before its after-commit broadcast.
    monkeypatch.setattr(txmanager, "_send_raw", lambda raw: None)
    services.run_batch(batch.id)
    db.session.commit()
    monkeypatch.undo()
    tx = db.session.scalar(select(ChainTx).where(ChainTx.purpose == "allocate"))
    assert tx.status == "pending" and tx.broadcasts
    assert not txmanager._known_to_node(client.web3(), tx.broadcasts[0])

    # The follow-up, committed with it, sends the stored bytes and confirms them.
    worker.run("contracts")
    assert db.session.get(Disbursement, d.id).status == "completed"
    assert sorted(db.session.scalars(select(Entitlement.allocated))) == [500, 500]


def test_a_batch_job_that_rolls_back_after_signing_sends_nothing_and_keeps_no_nonce(
    app, make_project, make_beneficiary, worker, monkeypatch
):
    from portal.chain import client
    from portal.disbursements import services

    project, group, _ = _deployed_project(make_project, make_beneficiary, worker, people=2)
    chain.fund(worker, project, "100")
    d = _running_draft(project, group, "Rolled back")
    batch = d.batches[0]
    operator = signers.operator()
    nonce_before = client.web3().eth.get_transaction_count(operator.address, "pending")
    next_before = operator.next_nonce

    services.run_batch(batch.id)  # signed in this unit of work...
    db.session.rollback()  # ...which then fails: nothing of it reaches the chain
    assert db.session.scalar(select(ChainTx).where(ChainTx.purpose == "allocate")) is None
    assert client.web3().eth.get_transaction_count(operator.address, "pending") == nonce_before
    assert db.session.get(type(operator), operator.id).next_nonce == next_before

    services.run_batch(batch.id)  # the retry takes the same nonce: no gap for later ones
    db.session.commit()
    worker.run("contracts")
    tx = db.session.scalar(select(ChainTx).where(ChainTx.purpose == "allocate"))
    assert tx.status == "confirmed" and tx.nonce == nonce_before
    assert db.session.get(Disbursement, d.id).status == "completed"


def test_cash_project_pays_the_wallets_people_gave(
    app, client, login, make_user, make_project, make_beneficiary, worker, second_approver
):
    user = make_user("admin")
    project = make_project(type="cash", status="active", members=[user])
    people = [make_beneficiary(project=project) for _ in range(3)]
    group = groups.create(project, "Cash", "first round")
    groups.add_members(group, people)
    db.session.commit()
    pc = chain.deploy(worker, project)
    assert pc.contract_kind == "CashTransfer"
    chain.fund(worker, project, "100")
    login(client, user)

    bad = client.post(
        f"/beneficiaries/{people[0].id}/wallet",
        data={"address": "0x1234"},
        follow_redirects=True,
    )
    assert b"Not a wallet address" in bad.data
    typo = "0x52908400098527886E0F7030069857D2E4169EE7".replace("E7", "e7")
    assert (
        b"checksum is wrong"
        in client.post(
            f"/beneficiaries/{people[0].id}/wallet", data={"address": typo}, follow_redirects=True
        ).data
    )
    wallets = ["0x" + "ab" * 20, "0x" + "cd" * 20]
    for person, address in zip(people[:2], wallets, strict=True):
        client.post(f"/beneficiaries/{person.id}/wallet", data={"address": address})

    made = client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": "Cash", "amount": "7", "group_id": group.id, "batch_size": 5},
        follow_redirects=True,
    )
    assert b"1 person was left out" in made.data  # no wallet, not silently dropped
    d = db.session.scalar(select(Disbursement))
    assert d.beneficiaries == 2
    client.post(f"/disbursements/{d.id}/start")
    second_approver.approve("disbursement_start")
    worker.run("contracts")
    assert db.session.get(Disbursement, d.id).status == "completed"
    token = contracts.at(contracts.PROJECT_TOKEN, pc.token_address)
    w3 = contracts.client.web3()
    assert [token.functions.balanceOf(w3.to_checksum_address(a)).call() for a in wallets] == [
        700,
        700,
    ]
    assert db.session.scalar(select(db.func.count()).select_from(Entitlement)) == 0
