"""Where the time of one redemption goes, from the timestamps the portal already stores.

The bench process notes, per measured charge, the wall-clock time the code POST left, the time
its answer came back and the time the vendor's socket said "confirmed". The portal's own rows say
the rest: the redemption (code accepted, handed to the chain), its ``redemptions.transfer`` job
(queued, claimed, finished), its chain transaction (row written, receipt recorded) and the
``chain.confirm`` follow-up job that recorded the receipt. All processes run on this machine and
write naive UTC from one clock, so differences between them are meaningful to about a
millisecond.

Stages, in the order a redemption passes them (a stage a configuration skips is left out):

- ``code_post``: the code request, as the phone measured it;
- ``transfer_queue``: the answer back at the phone → the transfer job claimed by a worker;
- ``transfer_job``: claimed → finished (the checks, the gas/fee reads, signing, its commit);
- ``tx_to_job_end``: the chain transaction's row written → the transfer job finished. With the
  nonce taken mid-job this is how long the signer's nonce row was held; with the nonce taken at
  the commit (the default now) the row is held only during the commit itself;
- ``confirm_queue``: the transaction's job finished → the ``chain.confirm`` follow-up claimed
  (the second job hop: its message through Redis, or the same thread running it next);
- ``receipt``: follow-up claimed → receipt recorded (broadcast, mining, receipt poll);
- ``confirm_commit``: receipt recorded → follow-up finished (effects applied);
- ``emit``: follow-up finished → the "confirmed" event on the phone's socket;
- ``total``: code POST sent → "confirmed" received (the figure the target is about).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

STAGES = (
    "code_post",
    "transfer_queue",
    "transfer_job",
    "tx_to_job_end",
    "confirm_queue",
    "receipt",
    "confirm_commit",
    "emit",
    "total",
)


@dataclass(frozen=True)
class Sample:
    """One measured charge, as the phone saw it (wall-clock seconds since the epoch)."""

    redemption_id: int
    posted: float
    answered: float
    confirmed: float


def _wall(value: datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=UTC).timestamp()


def _gap(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


def _first_follow_up(tx_id: int | None):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.jobs.models import Job

    if tx_id is None:
        return None
    payload = json.dumps({"tx_id": tx_id}, separators=(",", ":"), sort_keys=True)
    return db.session.scalar(
        select(Job)
        .where(Job.kind == "chain.confirm", Job.payload_json == payload)
        .order_by(Job.id)
        .limit(1)
    )


def stages_of(sample: Sample) -> dict[str, float | None]:
    """Seconds per stage of one redemption (None where the row or the stage is missing)."""
    from portal.chain.models import ChainTx
    from portal.extensions import db
    from portal.jobs.models import Job
    from portal.redemptions.models import Redemption

    redemption = db.session.get(Redemption, sample.redemption_id)
    transfer = db.session.get(Job, redemption.job_id) if redemption.job_id else None
    tx = db.session.get(ChainTx, redemption.chain_tx_id) if redemption.chain_tx_id else None
    follow = _first_follow_up(tx.id if tx else None)
    t_started = _wall(transfer.started_at) if transfer else None
    t_finished = _wall(transfer.finished_at) if transfer else None
    # Without a transfer job (signed in the code request) the transaction's commit is the
    # code request's: the answer's arrival stands for it.
    made = t_finished if transfer else sample.answered
    c_started = _wall(follow.started_at) if follow else None
    c_finished = _wall(follow.finished_at) if follow else None
    included = _wall(tx.confirmed_at) if tx else None
    return {
        "code_post": sample.answered - sample.posted,
        "transfer_queue": _gap(t_started, sample.answered),
        "transfer_job": _gap(t_finished, t_started),
        "tx_to_job_end": _gap(t_finished, _wall(tx.created_at) if tx else None),
        "confirm_queue": _gap(c_started, made),
        "receipt": _gap(included, c_started),
        "confirm_commit": _gap(c_finished, included),
        "emit": _gap(sample.confirmed, c_finished),
        "total": sample.confirmed - sample.posted,
    }


def breakdown(samples: list[Sample], summary_ms) -> dict[str, dict]:
    """Per stage, ``summary_ms`` of the redemptions that went through it."""
    from portal.extensions import db

    db.session.rollback()  # a fresh snapshot: the rows were written by other processes
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for sample in samples:
        for stage, seconds in stages_of(sample).items():
            if seconds is not None:
                per_stage[stage].append(seconds)
    db.session.rollback()
    return {stage: summary_ms(values) for stage, values in per_stage.items() if values}


def print_table(stages: dict[str, dict]) -> None:
    print("  where the time goes (ms)        p50       p95       p99     n")
    for stage in STAGES:
        row = stages.get(stage)
        if row is None:
            continue
        print(
            f"    {stage:<26}{row['p50_ms']:>9}{row['p95_ms']:>10}{row['p99_ms']:>10}{row['n']:>6}"
        )


def cpu_seconds(pids: dict[str, int | None], database: str) -> dict[str, float]:
    """CPU time (user + system) used so far by each named process and all its children (the
    web's gunicorn worker, the worker's dramatiq processes), and by the PostgreSQL backends
    serving ``database`` (the pools keep theirs open through the run). On a machine shared with
    other work, CPU per redemption moves far less than wall time does."""
    import psutil

    used: dict[str, float] = {}
    for name, pid in pids.items():
        if pid is None:
            continue
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        used[name] = sum(_cpu(proc) for proc in tree)
    # A backend's title: "postgres: [CLUSTER:] USER DATABASE HOST(PORT) STATE".
    used["postgres"] = sum(
        _cpu(proc)
        for proc in psutil.process_iter(["cmdline"])
        if database in " ".join(proc.info["cmdline"] or ()).split()
    )
    return used


def _cpu(proc) -> float:
    import psutil

    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def cpu_per_redemption(before: dict, after: dict, redemptions: int) -> dict[str, float]:
    """Milliseconds of CPU per redemption, per process, between two ``cpu_seconds``."""
    if not redemptions:
        return {}
    return {
        name: round((after[name] - before.get(name, 0.0)) * 1000 / redemptions, 1) for name in after
    }


def jobs_by_kind(since: datetime, until: datetime, summary_ms) -> dict[str, dict]:
    """The worker's jobs created in the measured window, by kind: how many, attempts, the wait
    for a worker thread (created → the last attempt's start: a job retried later counts its
    delay too) and the run (last start → finished). A job that holds a thread while it waits
    (an SMS for its provider's send slot) shows here beside the transfers queued behind it."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.jobs.models import Job

    db.session.rollback()
    rows = db.session.execute(
        select(Job.kind, Job.created_at, Job.started_at, Job.finished_at, Job.attempts).where(
            Job.created_at >= since, Job.created_at <= until
        )
    ).all()
    db.session.rollback()
    kinds: dict[str, dict] = {}
    for kind, created, started, finished, attempts in rows:
        row = kinds.setdefault(kind, {"n": 0, "attempts": 0, "wait": [], "run": []})
        row["n"] += 1
        row["attempts"] += attempts or 0
        if started is not None:
            row["wait"].append(_wall(started) - _wall(created))
            if finished is not None:
                row["run"].append(_wall(finished) - _wall(started))
    return {
        kind: {
            "n": row["n"],
            "attempts": row["attempts"],
            "wait_ms": summary_ms(row["wait"]) if row["wait"] else None,
            "run_ms": summary_ms(row["run"]) if row["run"] else None,
        }
        for kind, row in sorted(kinds.items())
    }


def print_jobs(kinds: dict[str, dict]) -> None:
    print("  worker jobs in the window     n  tries  wait p50/p95 (ms)    run p50/p95 (ms)")
    for kind, row in kinds.items():
        wait, run = row["wait_ms"] or {}, row["run_ms"] or {}
        print(
            f"    {kind:<26}{row['n']:>4}{row['attempts']:>6}"
            f"  {wait.get('p50_ms', '-'):>8} / {wait.get('p95_ms', '-'):<8}"
            f"  {run.get('p50_ms', '-'):>8} / {run.get('p95_ms', '-')}"
        )
