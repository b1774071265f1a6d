"""The redemption's path to the chain: the transfer is signed in the unit of work that accepts
the code, and only the receipt follow-up is a job. Nothing is lost when the process dies right
after that commit; the transfer job takes over when the chain cannot be reached from the request.
Signed in the transfer job instead, the job's own thread follows the receipt right after its
commit, and hands over to a follow-up job when the chain takes longer.
"""

from __future__ import annotations

import re
import socket
import time

import pytest
from sqlalchemy import func, select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from portal import request_load
from portal.chain import client, signers, txmanager
from portal.chain.models import ChainTx
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs import services as jobs
from portal.jobs.models import Job
from portal.redemptions import services as redemptions
from portal.redemptions import transfer
from portal.redemptions.models import ACCEPTED, SETTLED, SUBMITTED, Redemption
from tests.support import chain
from tests.support.services import free_port

CODE = re.compile(r"\b(\d{6})\b")


def last_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


def jobs_of(kind: str) -> list[Job]:
    return list(db.session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))


def follow_ups_of(tx: ChainTx) -> list[Job]:
    return [j for j in jobs_of("chain.confirm") if j.payload.get("tx_id") == tx.id]


def redeem_txs() -> list[ChainTx]:
    return list(db.session.scalars(select(ChainTx).where(ChainTx.purpose == "redeem")))


@pytest.fixture
def funded(app, worker, make_project, make_beneficiary, make_vendor):
    # Forced on: "auto" signs in the request only where the native signer is installed.
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = True
    project = make_project(status="active")
    person = make_beneficiary(project=project)
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="20.00", beneficiary_ids=[person.id])
    from portal.chain import setup

    return project, setup.state(project.id), person, vendor


def charge(funded, amount=500) -> Redemption:
    project, pc, person, vendor = funded
    redemption = redemptions.start(vendor, project, pc, person, amount, "phone")
    db.session.commit()
    return redemption


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(True, True), (False, False), ("true", True), ("off", False), ("0", False)],
)
def test_the_setting_says_where_the_transfer_is_signed(app, setting, expected):
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = setting
    assert transfer.signs_in_request() is expected


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("embedded", [True, False])
def test_auto_signs_in_the_request_with_the_native_signer_on_a_node(
    app, monkeypatch, native, embedded
):
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = "auto"
    monkeypatch.setattr(signers, "native_signing", lambda: native)
    monkeypatch.setattr(client, "is_embedded", lambda app=None: embedded)
    assert transfer.signs_in_request() is (native and not embedded)


def test_the_native_signer_is_told_apart_from_pure_python():
    from eth_keys.backends import get_backend

    expected = type(get_backend()).__name__ == "CoinCurveECCBackend"
    assert signers.native_signing() is expected


def test_the_code_signs_the_transfer_and_only_the_follow_up_is_a_job(funded, worker):
    vendor = funded[3]
    redemption = charge(funded)
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()

    row = db.session.get(Redemption, redemption.id)
    (tx,) = redeem_txs()
    assert (row.status, row.chain_tx_id, row.job_id) == (SUBMITTED, tx.id, None)
    assert tx.nonce is not None and tx.broadcasts[-1].raw  # signed and stored
    assert jobs_of("redemptions.transfer") == []
    assert len(follow_ups_of(tx)) == 1
    # Asked for on the thread that signed, but that is a web request: its message went out.
    assert worker.queued("contracts") == 1
    # Broadcast once the request committed: the node has it before any job ran.
    assert client.web3().eth.get_transaction(tx.tx_hash) is not None

    worker.run("contracts")
    assert db.session.get(Redemption, redemption.id).status == SETTLED
    assert db.session.get(ChainTx, tx.id).status == "confirmed"


def test_a_process_dying_right_after_the_commit_loses_nothing(app, funded, worker, monkeypatch):
    vendor = funded[3]
    redemption = charge(funded)
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    # The process dies between the commit and its after-commit work: no broadcast, no message.
    with monkeypatch.context() as dying:
        dying.setattr(txmanager, "_send_raw", lambda raw: None)
        dying.setattr(dispatch, "send_now", lambda jobs, delay_ms=None: [])
        db.session.commit()

    (tx,) = redeem_txs()
    with pytest.raises(TransactionNotFound):
        client.web3().eth.get_transaction(tx.tx_hash)
    assert worker.queued("contracts") == 0
    (follow_up,) = follow_ups_of(tx)
    assert follow_up.sent_at is None

    # The sweeper sends what was committed but never sent; the follow-up sends the stored bytes.
    app.config["JOB_UNSENT_GRACE_SECONDS"] = 0
    assert jobs.sweep().resent >= 1
    worker.run("contracts")
    assert db.session.get(Redemption, redemption.id).status == SETTLED
    assert client.web3().eth.get_transaction(tx.tx_hash) is not None
    assert len(redeem_txs()) == 1
    held = redemptions.entitlement(redemption.project_id, redemption.beneficiary_id)
    assert held.redeemed == 500


def test_an_unreachable_chain_leaves_the_transfer_to_its_job(app, funded, worker):
    vendor = funded[3]
    redemption = charge(funded)
    # The request's chain client points at a port nobody listens on (a node that is down).
    reachable = app.extensions["portal_web3"]
    down = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}", request_kwargs={"timeout": 2}))
    app.extensions["portal_web3"] = down
    try:
        assert redemptions.confirm(vendor, redemption.id, last_code()).ok
        db.session.commit()
    finally:
        app.extensions["portal_web3"] = reachable

    row = db.session.get(Redemption, redemption.id)
    (job,) = jobs_of("redemptions.transfer")
    assert (row.status, row.chain_tx_id, row.job_id) == (ACCEPTED, None, job.id)
    assert redeem_txs() == []  # nothing signed, no nonce taken
    held = redemptions.entitlement(redemption.project_id, redemption.beneficiary_id)
    assert held.redeemed == 500  # the reservation stands until the job decides

    worker.run("contracts")
    assert db.session.get(Redemption, redemption.id).status == SETTLED
    assert len(redeem_txs()) == 1


def test_the_second_redeem_asks_the_node_nothing_but_the_broadcast(app, funded, worker):
    """Chain id, fees, gas balance and the gas estimate come from the client's cache, and the
    nonce from the database alone (the signer's row lock holds no RPC)."""
    app.config["CHAIN_FEE_QUOTE_SECONDS"] = 600  # its expiry: tests/unit/test_chain_cache.py
    vendor = funded[3]
    first = charge(funded)
    assert redemptions.confirm(vendor, first.id, last_code()).ok
    db.session.commit()
    worker.run("contracts")

    manager = client.web3().manager
    asked: list[str] = []
    real = manager._make_request

    def counting(method, params):
        asked.append(str(method))
        return real(method, params)

    manager._make_request = counting
    try:
        second = charge(funded)
        assert redemptions.confirm(vendor, second.id, last_code()).ok
        db.session.commit()
    finally:
        del manager._make_request
    # The broadcast after the commit, nothing else.
    assert asked == ["eth_sendRawTransaction"]
    worker.run("contracts")
    assert db.session.get(Redemption, second.id).status == SETTLED
    assert db.session.scalar(select(func.count()).select_from(ChainTx)) >= 2


def test_the_vendor_home_reads_the_chain_only_when_asked(app, funded, worker, client):
    vendor = funded[3]
    redemption = charge(funded, amount=1250)
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    worker.run("contracts")
    assert client.post("/vendor/sign-in", data={"phone": vendor.phone}).status_code == 302
    assert client.post("/vendor/sign-in/code", data={"code": last_code()}).status_code == 302

    manager = app.extensions["portal_web3"].manager
    asked: list[str] = []
    real = manager._make_request
    manager._make_request = lambda method, params: asked.append(str(method)) or real(method, params)
    try:
        home = client.get("/vendor/").get_data(as_text=True)
        assert asked == []  # the database's ledger only
        assert "NPR\u00a012.50" in home and "data-on-chain" not in home
        assert "Check the balance on the chain" in home
        checked = client.get("/vendor/?on_chain=1").get_data(as_text=True)
        assert "On chain: NPR\u00a012.50" in checked
        assert "eth_call" in asked
        once = len(asked)
        client.get("/vendor/?on_chain=1")  # asked again at once: the kept answer
        assert len(asked) == once
    finally:
        del manager._make_request


def _messages_sent(worker, monkeypatch) -> list[str]:
    """The actor names of the messages the broker is given from now on."""
    sent: list[str] = []
    real = worker.broker.enqueue

    def recording(message, *, delay=None):
        sent.append(message.actor_name)
        return real(message, delay=delay)

    monkeypatch.setattr(worker.broker, "enqueue", recording)
    return sent


def test_the_transfer_job_follows_its_receipt_on_its_own_thread(app, funded, worker, monkeypatch):
    """Signed in the job (the default): the job's thread broadcasts after its commit and runs
    the receipt follow-up itself, claimed like a message, without a trip through the broker."""
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = False
    vendor = funded[3]
    redemption = charge(funded)
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    (transfer_job,) = jobs_of("redemptions.transfer")
    sent = _messages_sent(worker, monkeypatch)

    worker.run("contracts")
    assert db.session.get(Redemption, redemption.id).status == SETTLED
    (tx,) = redeem_txs()
    assert tx.status == "confirmed" and tx.nonce is not None
    (follow_up,) = follow_ups_of(tx)
    assert (follow_up.status, follow_up.attempts) == ("succeeded", 1)
    assert follow_up.result["here"] is True and follow_up.result["next_check_s"] is None
    # Neither the follow-up nor any chain job went through the broker (the receipt SMS to the
    # person goes on the comms queue, as every message does).
    assert [kind for kind in sent if not kind.startswith("comms.")] == []
    assert db.session.get(Job, transfer_job.id).status == "succeeded"


def test_without_a_receipt_in_time_a_follow_up_job_takes_over(app, funded, worker, monkeypatch):
    """A chain with a block time: the thread waits CHAIN_RECEIPT_WAIT_HERE_SECONDS, then a
    follow-up job of its own (through the broker, at once) waits the full time."""
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = False
    real_follow_up = txmanager.follow_up
    waits: list[tuple[bool, float | None]] = []

    def not_mined_while_the_thread_waits(tx, wait_seconds=None):
        waits.append((dispatch.running_here(), wait_seconds))
        if dispatch.running_here():
            txmanager._mark_sent(tx, tx.broadcasts[-1])  # out on the chain, not yet mined
            return app.config["CHAIN_POLL_SECONDS"]
        return real_follow_up(tx, wait_seconds)

    monkeypatch.setattr(txmanager, "follow_up", not_mined_while_the_thread_waits)
    vendor = funded[3]
    redemption = charge(funded)
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    sent = _messages_sent(worker, monkeypatch)

    worker.run("contracts")
    assert db.session.get(Redemption, redemption.id).status == SETTLED
    (tx,) = redeem_txs()
    here, later = follow_ups_of(tx)
    assert here.result["here"] is True and here.result["next_check_s"] == 0
    assert later.result["here"] is False and later.status == "succeeded"
    assert waits == [(True, app.config["CHAIN_RECEIPT_WAIT_HERE_SECONDS"]), (False, None)]
    # The take-over, without delay (and the person's receipt SMS, on the comms queue).
    assert [kind for kind in sent if not kind.startswith("comms.")] == ["chain.confirm"]


@pytest.mark.parametrize(("serving", "in_request"), [(1, True), (4, True), (5, False), (60, False)])
def test_a_crowded_web_process_leaves_the_signing_to_the_job(
    app, funded, worker, monkeypatch, serving, in_request
):
    assert app.config["REDEMPTION_SIGN_IN_REQUEST_MAX_BUSY"] == 4
    monkeypatch.setattr(request_load, "in_flight", lambda: serving)
    redemption = charge(funded)
    assert redemptions.confirm(funded[3], redemption.id, last_code()).ok
    db.session.commit()
    row = db.session.get(Redemption, redemption.id)
    assert (row.chain_tx_id is not None) is in_request
    assert (row.job_id is None) is in_request
    worker.run("contracts")
    assert db.session.get(Redemption, redemption.id).status == SETTLED


def test_the_transfer_is_signed_in_the_request_by_default():
    from config import Config

    assert Config.REDEMPTION_SIGN_IN_REQUEST == "auto"


@pytest.fixture
def hung_node():
    """A node that takes connections and never answers (a stopped process, a stuck proxy)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def short_waits(app):
    app.config["CHAIN_REQUEST_TIMEOUT_MS"] = 300


def confirm_in_a_request(app, funded, redemption) -> float:
    """The vendor's code request, commit included; the seconds it took."""
    started = time.monotonic()
    with app.test_request_context("/vendor/payments/code", method="POST"):
        assert redemptions.confirm(funded[3], redemption.id, last_code()).ok
        db.session.commit()
    return time.monotonic() - started


def counting_rpcs(w3) -> list[str]:
    asked: list[str] = []
    real = w3.manager._make_request
    w3.manager._make_request = lambda method, params: (
        asked.append(str(method)) or real(method, params)
    )
    return asked


def test_a_hung_node_costs_one_short_wait_then_the_jobs_take_over(
    app, funded, worker, hung_node, short_waits
):
    app.config["CHAIN_FEE_QUOTE_SECONDS"] = 0  # every transfer asks the node for fees
    w3 = client.web3()
    reachable, w3.provider = w3.provider, client.connect(hung_node).provider
    try:
        first = charge(funded)
        # The fee read fails after the request's timeout (not the client's 30 s, nor web3's
        # five retries of it): the code is taken and the transfer left to its job.
        assert confirm_in_a_request(app, funded, first) < 3
        assert client.failed_lately(app.config["CHAIN_REQUEST_PAUSE_SECONDS"])
        asked = counting_rpcs(w3)
        second = charge(funded)
        assert confirm_in_a_request(app, funded, second) < 1
        assert asked == []  # paused: the next request does not try the node again
    finally:
        del w3.manager._make_request
        w3.provider = reachable
    for row in (first, second):
        row = db.session.get(Redemption, row.id)
        assert (row.status, row.chain_tx_id) == (ACCEPTED, None) and row.job_id is not None
    assert redeem_txs() == []

    worker.run("contracts")
    assert {db.session.get(Redemption, r.id).status for r in (first, second)} == {SETTLED}


def test_a_broadcast_the_node_does_not_answer_is_left_to_the_follow_up(
    app, funded, worker, hung_node, short_waits
):
    app.config["CHAIN_FEE_QUOTE_SECONDS"] = 600  # nothing but the broadcast asks the node
    warm = charge(funded)
    confirm_in_a_request(app, funded, warm)
    worker.run("contracts")
    w3 = client.web3()
    reachable, w3.provider = w3.provider, client.connect(hung_node).provider
    try:
        redemption = charge(funded)
        assert confirm_in_a_request(app, funded, redemption) < 3
        assert client.failed_lately(app.config["CHAIN_REQUEST_PAUSE_SECONDS"])
    finally:
        w3.provider = reachable
    tx = db.session.get(ChainTx, db.session.get(Redemption, redemption.id).chain_tx_id)
    assert tx.nonce is not None  # signed and stored in the request's commit
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(tx.tx_hash)  # never reached the node

    worker.run("contracts")  # the follow-up sends the stored transaction
    assert db.session.get(Redemption, redemption.id).status == SETTLED


def test_jobs_keep_the_clients_own_timeout(app, hung_node, short_waits):
    w3 = client.connect(hung_node)
    assert dict(w3.provider.get_request_kwargs())["timeout"] == 30
    assert w3.provider.exception_retry_configuration is not None
    with client.rpc_timeout(0.2):
        assert dict(w3.provider.get_request_kwargs())["timeout"] == 0.2
        assert w3.provider.exception_retry_configuration is None
        started = time.monotonic()
        with pytest.raises(client.UNREACHABLE):
            w3.eth.get_block_number()
        assert time.monotonic() - started < 1.5
