#!/usr/bin/env python3
"""Bulk import throughput and memory: the portal's import pipeline beside a bare bulk insert.

What runs: ``bench/_data.py`` writes N synthetic people to a CSV file, streaming (valid Nepali
mobile numbers and citizenship numbers, all unique; names, dates of birth in ISO and day-first
form, locations, gender). Each measured phase then runs in a fresh child process on a fresh
database (a new PostgreSQL database on the server found by tests/support/services.py, dropped
afterwards; or a new SQLite file):

- portal: the import as the portal runs it, in-process instead of as Dramatiq jobs, in a
  worker-role app: ``services.create_batch`` (stores the upload encrypted, reads the headers),
  ``set_mapping``, ``pipeline.analyse`` (the dry run: parse, validate, blind indexes,
  de-duplicate in the file and against the database, error report, the accepted rows kept
  encrypted for the commit) and commit, then ``pipeline.commit`` in mode "all" (reads the kept
  rows back, checks them against the database again, encrypts five fields per person with
  AES-GCM, bulk inserts of beneficiaries, their personal data, project and group membership)
  and commit. All N rows go into one project and one group.
- baseline: a bare SQLAlchemy Core bulk insert of the same rows into the same four tables in
  one transaction, 1,000 rows per statement, beneficiaries with RETURNING ids: csv.reader,
  plaintext values, no validation, no de-duplication, no encryption.

Counted as "end to end" (the target): the dry run plus the commit, each including its database
commit. The upload (encrypting the file into storage and reading its headers) is shown apart,
and included in "with upload". Peak memory is each child's own peak RSS as the kernel accounts
it (``wait4``), the whole process: the interpreter, Flask and SQLAlchemy included (shown as
"at start"). The database server's memory is not counted.

Then (unless --quick or --no-million) 1,000,000 rows on PostgreSQL, both ways: the peak RSS at
a million rows is compared with the one at 100,000 (target: under 400 MB, and flat).

Prints a table, then one JSON line with every figure (the last line of output).

    python bench/import.py [--rows 100000] [--million-rows 1000000] [--quick] [--no-million]
                           [--db both|postgres|sqlite] [--skip-baseline] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import _data  # noqa: E402

from tests.support import services  # noqa: E402

TARGET_SECONDS_100K_PG = 10.0
TARGET_PEAK_MB_1M = 400.0
CHUNK = 1000


# --------------------------------------------------------------------------- child: the portal


def child_portal(args) -> dict:
    t_start = time.perf_counter()
    from sqlalchemy import func, select
    from werkzeug.datastructures import FileStorage

    from portal.beneficiaries.models import (
        Beneficiary,
        BeneficiaryPII,
        GroupMember,
        ProjectBeneficiary,
    )
    from portal.crypto import blind_index
    from portal.extensions import db
    from portal.imports import pipeline
    from portal.imports import services as imports
    from portal.imports.models import ALL_OR_NOTHING, COMMITTED, COMMITTING, READY

    instance = Path(args.workdir) / f"instance-{os.getpid()}"
    app = _data.make_app(args.db_url, instance, role="worker")
    out: dict = {}
    phases: dict[str, int] = {}

    def progress(phase: str, done: int, total: int) -> None:
        phases[phase] = phases.get(phase, 0) + 1

    with app.app_context():
        admin, (project,), (group,) = _data.create_schema_and_staff()
        out["rss_at_start_mb"] = round(_data.rss_mb(), 1)
        out["peak_rss_before_import_mb"] = round(_data.peak_rss_mb(), 1)
        out["startup_s"] = round(time.perf_counter() - t_start, 2)

        t0 = time.perf_counter()
        with open(args.csv, "rb") as handle:
            upload = FileStorage(stream=handle, filename="bench.csv", content_type="text/csv")
            batch = imports.create_batch(upload, project=project, user=admin, group=group)
        problems = imports.set_mapping(batch, dict(_data.MAPPING))
        if problems:
            raise SystemExit(f"mapping refused: {problems}")
        db.session.commit()
        t1 = time.perf_counter()

        tally = pipeline.analyse(batch, progress)
        db.session.commit()
        t2 = time.perf_counter()
        out["rss_after_dry_run_mb"] = round(_data.rss_mb(), 1)
        out["peak_rss_after_dry_run_mb"] = round(_data.peak_rss_mb(), 1)
        if batch.status != READY or tally.new != args.rows:
            raise SystemExit(
                f"dry run: status {batch.status}, {tally.new} new of {tally.total} "
                f"({tally.invalid} invalid, {tally.duplicates} duplicates): {tally.preview[:3]}"
            )

        batch.status = COMMITTING
        batch.mode = ALL_OR_NOTHING
        imported = pipeline.commit(batch, progress)
        db.session.commit()
        t3 = time.perf_counter()
        if batch.status != COMMITTED or imported != args.rows:
            raise SystemExit(f"commit: status {batch.status}, {imported} imported")

        counts = {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Beneficiary, BeneficiaryPII, ProjectBeneficiary, GroupMember)
        }
        # Person 0 is findable through the blind index and decrypts to what the file said.
        first = next(_data.rows(1))
        found = db.session.scalar(
            select(BeneficiaryPII).where(
                BeneficiaryPII.phone_index == blind_index("phone:+977" + _data.phone_of(0))
            )
        )
        out["check_person_0"] = bool(
            found is not None and found.name == first[0] and found.national_id is not None
        )
        db.session.remove()
        db.engine.dispose()

    out.update(
        rows=args.rows,
        upload_s=round(t1 - t0, 3),
        dry_run_s=round(t2 - t1, 3),
        commit_s=round(t3 - t2, 3),
        end_to_end_s=round(t3 - t1, 3),
        with_upload_s=round(t3 - t0, 3),
        rows_per_s=round(args.rows / (t3 - t1)),
        dry_run_rows_per_s=round(args.rows / (t2 - t1)),
        commit_rows_per_s=round(args.rows / (t3 - t2)),
        counts=counts,
        progress_reports=phases,
        peak_rss_self_mb=round(_data.peak_rss_mb(), 1),
    )
    if any(n != args.rows for n in counts.values()):
        raise SystemExit(f"row counts differ: {counts}")
    return out


# --------------------------------------------------------------------------- child: baseline


def child_baseline(args) -> dict:
    """A bare SQLAlchemy Core bulk insert of the file's rows, plaintext, one transaction."""
    t_start = time.perf_counter()
    import csv

    from sqlalchemy import column, create_engine, func, insert, select, table

    from portal import models
    from portal.beneficiaries.models import (
        Beneficiary,
        BeneficiaryGroup,
        GroupMember,
        ProjectBeneficiary,
    )
    from portal.extensions import db
    from portal.projects.models import Project
    from portal.timeutil import utcnow

    models.import_all()
    engine = create_engine(args.db_url)
    db.metadata.create_all(engine)
    with engine.begin() as conn:
        project_id = conn.execute(
            insert(Project.__table__).values(name="Bench project", type="cva")
        ).inserted_primary_key[0]
        group_id = conn.execute(
            insert(BeneficiaryGroup.__table__).values(
                project_id=project_id, name="Bench group", purpose="benchmark cohort"
            )
        ).inserted_primary_key[0]
    # Untyped columns: the values go to the driver as they are (the mapped columns would encrypt).
    pii = table(
        "beneficiary_pii",
        *(
            column(name)
            for name in (
                "beneficiary_id",
                "name",
                "phone",
                "national_id",
                "date_of_birth",
                "location",
                "phone_index",
                "national_id_index",
            )
        ),
    )
    people = Beneficiary.__table__
    links = ProjectBeneficiary.__table__
    members = GroupMember.__table__
    out: dict = {
        "rss_at_start_mb": round(_data.rss_mb(), 1),
        "peak_rss_before_import_mb": round(_data.peak_rss_mb(), 1),
        "startup_s": round(time.perf_counter() - t_start, 2),
    }

    def flush(conn, chunk: list[list[str]], serial: int) -> None:
        now = utcnow()
        ids = conn.scalars(
            insert(people).returning(people.c.id, sort_by_parameter_order=True),
            [
                {
                    "ref": f"B{serial + k:011d}",
                    "status": "active",
                    "gender": cells[5],
                    "language": "en",
                    "created_at": now,
                    "updated_at": now,
                }
                for k, cells in enumerate(chunk)
            ],
        ).all()
        conn.execute(
            insert(pii),
            [
                {
                    "beneficiary_id": pk,
                    "name": cells[0],
                    "phone": cells[1],
                    "national_id": cells[2],
                    "date_of_birth": cells[3],
                    "location": cells[4],
                    "phone_index": cells[1],
                    "national_id_index": cells[2],
                }
                for pk, cells in zip(ids, chunk, strict=True)
            ],
        )
        conn.execute(
            insert(links),
            [{"project_id": project_id, "beneficiary_id": pk, "added_at": now} for pk in ids],
        )
        conn.execute(insert(members), [{"group_id": group_id, "beneficiary_id": pk} for pk in ids])

    t0 = time.perf_counter()
    total = 0
    with engine.begin() as conn, open(args.csv, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        chunk: list[list[str]] = []
        for cells in reader:
            chunk.append(cells)
            if len(chunk) == CHUNK:
                flush(conn, chunk, total)
                total += len(chunk)
                chunk = []
        if chunk:
            flush(conn, chunk, total)
            total += len(chunk)
    t1 = time.perf_counter()
    with engine.connect() as conn:
        counts = {
            t.name: conn.scalar(select(func.count()).select_from(t))
            for t in (people, pii, links, members)
        }
    engine.dispose()
    if total != args.rows or any(n != args.rows for n in counts.values()):
        raise SystemExit(f"baseline inserted {total}, counts {counts}")
    out.update(
        rows=total,
        insert_s=round(t1 - t0, 3),
        rows_per_s=round(total / (t1 - t0)),
        counts=counts,
        peak_rss_self_mb=round(_data.peak_rss_mb(), 1),
    )
    return out


# --------------------------------------------------------------------------- the parent


class Databases:
    """Fresh databases, one per measured child, dropped (or deleted) right after it."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.pg: services.PostgresService | None = None
        self.pg_problem: str | None = None

    def postgres(self) -> services.PostgresService:
        if self.pg is None and self.pg_problem is None:
            try:
                self.pg = services.find_or_start_postgres()
            except services.Unavailable as exc:
                self.pg_problem = str(exc)
        if self.pg is None:
            raise services.Unavailable(self.pg_problem)
        return self.pg

    def run(self, kind: str, child: str, csv_path: Path, rows: int) -> dict:
        if kind == "postgres":
            pg = self.postgres()
            name = pg.create_database("portal_bench_import")
            url, cleanup = pg.sqlalchemy_url(name), lambda: pg.drop_database(name)
        else:
            path = self.workdir / f"bench-{os.urandom(4).hex()}.db"
            url = f"sqlite:///{path}"

            def cleanup():
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(str(path) + suffix).unlink(missing_ok=True)

        try:
            argv = [
                __file__,
                "--child",
                child,
                "--db-url",
                url,
                "--csv",
                str(csv_path),
                "--workdir",
                str(self.workdir),
                "--rows",
                str(rows),
            ]
            return _data.run_child(argv, env=_child_env())
        finally:
            cleanup()

    def stop(self) -> None:
        if self.pg is not None:
            self.pg.stop()


def _child_env() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "PORTAL_ENV", "SECRET_KEY", "PII_KEY")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def make_csv(workdir: Path, rows: int) -> tuple[Path, dict]:
    path = workdir / f"people-{rows}.csv"
    t0 = time.perf_counter()
    size = _data.write_csv(path, rows)
    return path, {
        "rows": rows,
        "mb": round(size / 1e6, 1),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-import-"))
    dbs = Databases(workdir)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    result: dict = {
        "rows": args.rows,
        "chunk": CHUNK,
        "targets": {
            "end_to_end_100k_postgres_s": TARGET_SECONDS_100K_PG,
            "peak_rss_1m_postgres_mb": TARGET_PEAK_MB_1M,
        },
        "counted": "end_to_end = dry run (parse, validate, dedup, error report, rows kept) + "
        "commit (kept rows read back, dedup against the database, encrypt, insert), each with "
        "its transaction commit; upload (encrypted store + header read) shown apart",
        "cpus": os.cpu_count(),
        "runs": {},
    }
    try:
        csv_path, info = make_csv(workdir, args.rows)
        result["csv"] = {str(args.rows): info}
        for kind in kinds:
            try:
                label = "PostgreSQL" if kind == "postgres" else "SQLite file"
                if kind == "postgres":
                    label += f" ({dbs.postgres().how})"
            except services.Unavailable as exc:
                print(f"PostgreSQL unavailable ({exc}); skipped", file=sys.stderr)
                result["runs"][kind] = {"skipped": str(exc)}
                continue
            print(f"{label}: {args.rows:,} rows ...", file=sys.stderr, flush=True)
            entry = {"database": label}
            if not args.skip_baseline:
                entry["baseline"] = dbs.run(kind, "baseline", csv_path, args.rows)
            entry["portal"] = dbs.run(kind, "portal", csv_path, args.rows)
            _ratio(entry)
            result["runs"][f"{kind}_{args.rows}"] = entry
        csv_path.unlink(missing_ok=True)

        if args.million and "postgres" in kinds and dbs.pg is not None:
            n = args.million_rows
            print(f"PostgreSQL: {n:,} rows ...", file=sys.stderr, flush=True)
            csv_path, info = make_csv(workdir, n)
            result["csv"][str(n)] = info
            entry = {"database": f"PostgreSQL ({dbs.pg.how})"}
            if not args.skip_baseline:
                entry["baseline"] = dbs.run("postgres", "baseline", csv_path, n)
            entry["portal"] = dbs.run("postgres", "portal", csv_path, n)
            _ratio(entry)
            result["runs"][f"postgres_{n}"] = entry
            csv_path.unlink(missing_ok=True)
        _verdicts(result, args)
        return result
    finally:
        dbs.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _ratio(entry: dict) -> None:
    base = entry.get("baseline")
    if base:
        entry["ratio_time_portal_to_baseline"] = round(
            entry["portal"]["end_to_end_s"] / base["insert_s"], 2
        )


def _verdicts(result: dict, args) -> None:
    runs = result["runs"]
    small = runs.get(f"postgres_{args.rows}", {}).get("portal")
    big = runs.get(f"postgres_{args.million_rows}", {}).get("portal")
    verdicts = {}
    if small and args.rows == 100_000:
        verdicts["end_to_end_100k_postgres_met"] = small["end_to_end_s"] < TARGET_SECONDS_100K_PG
    if big:
        verdicts["peak_rss_1m_postgres_met"] = big["child_peak_rss_mb"] < TARGET_PEAK_MB_1M
        if small:
            verdicts["peak_rss_growth_100k_to_1m_mb"] = round(
                big["child_peak_rss_mb"] - small["child_peak_rss_mb"], 1
            )
    result["verdicts"] = verdicts


def print_table(result: dict) -> None:
    print()
    print(f"Bulk import, {result['cpus']} CPUs; {result['counted']}")
    head = (
        f"  {'run':<22} {'what':<9} {'rows':>9} {'seconds':>9} {'rows/s':>9} "
        f"{'dry run':>8} {'commit':>8} {'upload':>7} {'peak MB':>8} {'at start':>8}"
    )
    print(head)
    for key, entry in result["runs"].items():
        if "skipped" in entry:
            print(f"  {key:<22} skipped: {entry['skipped']}")
            continue
        base, portal = entry.get("baseline"), entry["portal"]
        print(
            f"  {key:<22} {'portal':<9} {portal['rows']:>9,} {portal['end_to_end_s']:>9.2f} "
            f"{portal['rows_per_s']:>9,} {portal['dry_run_s']:>8.2f} {portal['commit_s']:>8.2f} "
            f"{portal['upload_s']:>7.2f} {portal['child_peak_rss_mb']:>8.1f} "
            f"{portal['rss_at_start_mb']:>8.1f}"
        )
        if base:
            print(
                f"  {'':<22} {'baseline':<9} {base['rows']:>9,} {base['insert_s']:>9.2f} "
                f"{base['rows_per_s']:>9,} {'':>8} {'':>8} {'':>7} "
                f"{base['child_peak_rss_mb']:>8.1f} {base['rss_at_start_mb']:>8.1f}"
            )
            print(
                f"  {'':<22} ratio of times, portal / baseline: "
                f"{entry['ratio_time_portal_to_baseline']}"
            )
    v = result["verdicts"]
    if "end_to_end_100k_postgres_met" in v:
        verdict = "met" if v["end_to_end_100k_postgres_met"] else "MISSED"
        target = f"{TARGET_SECONDS_100K_PG:.0f} s"
        print(f"  target 100,000 rows end to end on PostgreSQL < {target}: {verdict}")
    if "peak_rss_1m_postgres_met" in v:
        verdict = "met" if v["peak_rss_1m_postgres_met"] else "MISSED"
        print(
            f"  target peak RSS at 1,000,000 rows < {TARGET_PEAK_MB_1M:.0f} MB: {verdict} "
            f"(growth from 100,000 rows: {v.get('peak_rss_growth_100k_to_1m_mb')} MB)"
        )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--million-rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="skip the million-row run")
    parser.add_argument(
        "--million", action=argparse.BooleanOptionalAction, default=None,
        help="run the million-row run on PostgreSQL (default: yes, unless --quick)",
    )  # fmt: skip
    parser.add_argument("--db", choices=("both", "postgres", "sqlite"), default="both")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", choices=("portal", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = child_portal(args) if args.child == "portal" else child_baseline(args)
        print(json.dumps(out, sort_keys=True), flush=True)
        return 0
    if args.million is None:
        args.million = not args.quick

    result = run(args)
    print_table(result)
    print(json.dumps(result, sort_keys=True), flush=True)
    if args.strict and not all(v for k, v in result["verdicts"].items() if k.endswith("_met")):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
