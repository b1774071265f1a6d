#!/usr/bin/env python3
"""Allocate to 10,000 new beneficiaries through the portal, on anvil, and weigh the gas.

What runs: anvil (contracts/node_modules), a fresh PostgreSQL database (SQLite when there is no
PostgreSQL), the portal app with its real services and jobs. The beneficiaries are inserted, the
project's contracts deployed and funded, then one disbursement to all of them is created and
started; its batch jobs and their receipt follow-ups run in this process one after another (one
signer sends in nonce order, as the contracts queue does with concurrency 1).

Figures: gas per new beneficiary (all ``allocate`` transactions' gasUsed / people) beside the
floor (a fresh storage slot 22,100 + the Allocated event 1,381 + the address's calldata) and
beside a baseline measured in the same run on the same node: one plain ERC-20 ``transfer`` per
recipient; and the wall time from "start" to every batch confirmed. Ends with one JSON line.

    .venv/bin/python bench/disburse.py [--people 10000] [--batch 500] [--baseline 200]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import _common  # noqa: E402
import _data  # noqa: E402  (bench/ is this script's folder, first on sys.path)

from tests.support import services  # noqa: E402
from tests.support.anvil import DEV_KEY, Anvil  # noqa: E402

TARGET = 25_500
FRESH_SLOT = 22_100
ALLOCATED_LOG = 375 + 2 * 375 + 8 * 32


def calldata_gas(address: str) -> int:
    word = bytes(12) + bytes.fromhex(address[2:])
    return sum(4 if b == 0 else 16 for b in word)


def insert_people(project, group, count: int) -> None:
    """Beneficiaries with encrypted personal data, in the project and the group (Core inserts)."""
    from sqlalchemy import insert, select

    from portal import crypto
    from portal.beneficiaries.models import (
        Beneficiary,
        BeneficiaryPII,
        GroupMember,
        ProjectBeneficiary,
    )
    from portal.extensions import db
    from portal.timeutil import utcnow

    now = utcnow()
    for start in range(0, count, 1000):
        chunk = range(start, min(count, start + 1000))
        db.session.execute(
            insert(Beneficiary),
            [
                {"ref": f"BD{i:08d}", "status": "active", "created_at": now, "updated_at": now}
                for i in chunk
            ],
        )
        ids = dict(
            db.session.execute(
                select(Beneficiary.ref, Beneficiary.id).where(
                    Beneficiary.ref.in_([f"BD{i:08d}" for i in chunk])
                )
            ).all()
        )
        rows = [(i, ids[f"BD{i:08d}"]) for i in chunk]
        db.session.execute(
            insert(BeneficiaryPII),
            [
                {
                    "beneficiary_id": bid,
                    "name": f"Person {i}",
                    "phone": _data.phone_of(i),
                    "phone_index": crypto.blind_index(_data.phone_of(i)),
                }
                for i, bid in rows
            ],
        )
        db.session.execute(
            insert(ProjectBeneficiary),
            [{"project_id": project.id, "beneficiary_id": bid, "added_at": now} for _, bid in rows],
        )
        db.session.execute(
            insert(GroupMember),
            [{"group_id": group.id, "beneficiary_id": bid} for _, bid in rows],
        )
    db.session.commit()


def baseline_transfers(w3, token_address: str, sample: int) -> float:
    """Gas of one plain ERC-20 transfer to a fresh address, averaged over ``sample`` sends."""
    from eth_account import Account

    from portal.chain import artifacts

    me = Account.from_key(DEV_KEY)
    token = w3.eth.contract(
        abi=artifacts.abi("ProjectToken"), bytecode=artifacts.bytecode("ProjectToken")
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction(
            {
                "from": me.address,
                "data": token.constructor("Baseline", "BASE", 2, me.address).data_in_transaction,
            }
        )
    )
    token = w3.eth.contract(address=receipt.contractAddress, abi=artifacts.abi("ProjectToken"))
    w3.eth.wait_for_transaction_receipt(
        token.functions.mint(me.address, 10**12).transact({"from": me.address})
    )
    used = 0
    for _ in range(sample):
        to = Account.create().address
        tx = token.functions.transfer(to, 1000).transact({"from": me.address})
        used += w3.eth.wait_for_transaction_receipt(tx).gasUsed
    return used / sample


def run(args) -> dict:
    from sqlalchemy import func, select

    result: dict = {
        "bench": "disburse",
        "people": args.people,
        "batch": args.batch,
        "target": TARGET,
    }
    cleanup = []
    node = Anvil("--gas-limit", str(max(30_000_000, 40_000 * args.batch)))
    node.start()
    cleanup.append(node.stop)
    try:
        node.wait_ready()
        workdir = Path(tempfile.mkdtemp(prefix="portal-bench-disburse-"))
        cleanup.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
        try:
            pg = services.find_or_start_postgres()
            cleanup.append(pg.stop)
            name = pg.create_database("portal_bench_disburse")
            cleanup.append(lambda: pg.drop_database(name))
            url, result["database"] = pg.sqlalchemy_url(name), f"PostgreSQL ({pg.how})"
        except services.Unavailable:
            url, result["database"] = f"sqlite:///{workdir / 'bench.db'}", "SQLite"
        app = _data.make_app(
            url,
            workdir / "instance",
            WEB3_PROVIDER_URI=node.url,
            CHAIN_FAUCET_KEY=DEV_KEY,
            CHAIN_RECEIPT_WAIT_SECONDS=60,
        )
        from portal.chain import client, setup
        from portal.chain.demo import run_jobs_inline
        from portal.chain.models import ChainTx
        from portal.disbursements import services as disbursements
        from portal.disbursements.models import Disbursement, DisbursementItem
        from portal.extensions import db
        from portal.projects import services as projects

        with app.app_context():
            _, (project,), (group,) = _data.create_schema_and_staff()
            projects.change_status(project, "active")
            seeded = time.perf_counter()
            insert_people(project, group, args.people)
            result["seed_s"] = round(time.perf_counter() - seeded, 2)
            setup.start_deploy(project, "BENCH", 2, None)
            db.session.commit()
            run_jobs_inline()
            setup.start_funding(project, 1_000 * args.people, "bench", None)
            db.session.commit()
            run_jobs_inline()

            started = time.perf_counter()
            disbursement, _ = disbursements.create(
                project,
                title="Bench",
                amount=1_000,
                group_id=group.id,
                beneficiary_ids=None,
                batch_size=args.batch,
                user_id=None,
            )
            disbursements.start(disbursement, None)
            db.session.commit()
            prepared = time.perf_counter()
            run_jobs_inline(limit=10 * args.people)
            finished = time.perf_counter()

            d = db.session.get(Disbursement, disbursement.id)
            if d.status != "completed":
                raise RuntimeError(f"disbursement ended {d.status}")
            gas = db.session.scalar(
                select(func.sum(ChainTx.gas_used)).where(
                    ChainTx.purpose == "allocate", ChainTx.status == "confirmed"
                )
            )
            addresses = db.session.scalars(
                select(DisbursementItem.address).where(DisbursementItem.disbursement_id == d.id)
            ).all()
            pc = setup.state(project.id)
            from portal.chain import contracts

            outstanding = (
                contracts.at(pc.contract_kind, pc.contract_address).functions.outstanding().call()
            )
            if outstanding != d.total:
                raise RuntimeError(f"outstanding {outstanding} != {d.total}")
            baseline = baseline_transfers(client.web3(), pc.token_address, args.baseline)
            batches = len(d.batches)
            db.session.remove()

        per_person = int(gas) / args.people
        floor = FRESH_SLOT + ALLOCATED_LOG + sum(map(calldata_gas, addresses)) / len(addresses)
        result.update(
            batches=batches,
            gas_per_beneficiary=round(per_person, 1),
            floor=round(floor, 1),
            ratio_to_floor=round(per_person / floor, 4),
            baseline_transfer_gas=round(baseline, 1),
            ratio_to_baseline=round(per_person / baseline, 4),
            prepare_s=round(prepared - started, 2),
            allocate_wall_s=round(finished - prepared, 2),
            wall_s=round(finished - started, 2),
            met=per_person <= TARGET,
        )
        return result
    finally:
        _common.clean_up(cleanup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--baseline", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    # No Socket.IO server in a benchmark: the live updates the jobs send have nowhere to go.
    logging.getLogger("portal.realtime").setLevel(logging.ERROR)
    r = run(args)
    print(
        f"\nDisbursement to {r['people']:,} new beneficiaries through the portal on anvil "
        f"({r['database']}), batches of {r['batch']} ({r['batches']} transactions)"
    )
    print(
        f"  gas per beneficiary   {r['gas_per_beneficiary']:>10,.1f}   (target {TARGET:,}: "
        f"{'met' if r['met'] else 'NOT met'})"
    )
    print(f"  floor                 {r['floor']:>10,.1f}   ratio {r['ratio_to_floor']}")
    print(
        f"  ERC-20 transfer each  {r['baseline_transfer_gas']:>10,.1f}   ratio "
        f"{r['ratio_to_baseline']}"
    )
    print(
        f"  prepare (items, batches)  {r['prepare_s']} s; send and confirm all "
        f"{r['allocate_wall_s']} s; total {r['wall_s']} s"
    )
    _common.print_json_line(r)
    return 0 if r["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
