#!/usr/bin/env python3
"""Beneficiary list, search and filter pages with 100,000 beneficiaries on PostgreSQL.

What runs: a fresh PostgreSQL database (on the server tests/support/services.py finds or
starts; dropped at the end) is seeded through the portal's own bulk path: the people of
``bench/_data.py`` are validated by the import's ``RowValidator`` and inserted by
``pipeline.insert_rows`` (encrypted personal data, blind indexes, project and group
membership), 1,000 at a time, exactly the rows an import writes. The people are spread over two
projects and four groups, one in ten is made inactive, then ``ANALYZE`` runs (autovacuum would
do the same shortly after a big import).

Measured: with Flask's test client (the whole request in-process: routing, the session and
permission checks, the SQL, template rendering; no network, no WSGI server), signed in through
the sign-in form as (a) an admin, who sees every project, and (b) a field agent who is a member
of one project, ``--requests`` requests (after a few unmeasured ones) of each:

- the list: first page and a middle page, under each sort (newest, oldest, ref, status);
- exact search by phone number (a different person each time; through the blind index), by
  national ID, and by reference;
- search by name (through the keyed index of name words, ``portal.beneficiaries.name_search``):
  a first and last name, a last name alone, the first three letters of both, and a name typed
  in Devanagari (enrolled in Latin letters); each must find somebody (with 100,000 people, a
  full first page: the rows seen are in the JSON line);
- filters by project, by group (first and middle page), and by status.

A middle page is requested as the list's own "Next" link leads to it: by the sort values of
the last row of the page before (``after=...``, keyset pagination; pages past the tenth have no
number). The baseline, measured in the same run right after it: the same page by its number
(``page=N``, OFFSET), as the list paged before; the ratio of the p95s is shown.

For each: p50/p95/p99 of the response time, and the share of it spent in SQL (timed around
each cursor execution). Target: every p95 under 100 ms (the baselines are not held to it). With
``--explain``, EXPLAIN ANALYZE of the SQL of one request of every scenario goes to stderr.

Prints a table, then one JSON line with every figure (the last line of output).

    python bench/pages.py [--people 100000] [--requests 60] [--explain] [--strict]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import _common  # noqa: E402
import _data  # noqa: E402

from tests.support import services  # noqa: E402

TARGET_P95_MS = 100.0
PER_PAGE = 25
WARMUP = 3
PASSWORD = "bench pages password 1"  # noqa: S105


# --------------------------------------------------------------------------- seeding


def seed(people: int) -> dict:
    """Write the people in the current app context; returns who is where (ids, numbers)."""
    from sqlalchemy import insert, select, text, update

    from portal.accounts.services import create_user, role_by_name
    from portal.beneficiaries.models import (
        INACTIVE,
        Beneficiary,
        GroupMember,
        ProjectBeneficiary,
    )
    from portal.extensions import db
    from portal.imports import pipeline, validation
    from portal.projects import services as projects
    from portal.settings.services import default_country

    admin, (relief_a, relief_b), groups = _data.create_schema_and_staff(
        project_names=("Relief A", "Relief B"),
        group_names=("A cohort 1", "B cohort 1"),
        password=PASSWORD,
    )
    from portal.beneficiaries import groups as group_services

    a_cohort_2 = group_services.create(relief_a, "A cohort 2", "second distribution")
    b_cohort_2 = group_services.create(relief_b, "B cohort 2", "second distribution")
    agent = create_user(
        f"bench-agent-{os.urandom(3).hex()}@example.org",
        "Bench Agent",
        PASSWORD,
        role_by_name("field agent"),
    )
    projects.set_members(relief_a, {admin.id, agent.id})
    db.session.commit()

    # Who goes where: people [0, 60%) in Relief A, [60%, 100%) in Relief B, and [50%, 60%) in
    # both. Groups: A cohort 1 = [0, 20%), A cohort 2 = [20%, 25%), B cohort 1 = [60%, 80%),
    # B cohort 2 = [90%, 100%).
    split, overlap = people * 6 // 10, people // 2
    validator = validation.RowValidator(dict(_data.MAPPING), list(_data.HEADERS), default_country())
    a1, a2, b1, b2 = groups[0], a_cohort_2, groups[1], b_cohort_2
    t0 = time.perf_counter()
    ids_by_number: dict[int, int] = {}
    chunk: list = []
    start = 0

    def flush(chunk_rows, first_number):
        number = first_number
        project = relief_a if number < split else relief_b
        if number < people // 5:
            group_id = a1.id
        elif number >= split and number < people * 8 // 10:
            group_id = b1.id
        else:
            group_id = None
        ids = pipeline.insert_rows(project.id, group_id, chunk_rows)
        for k, pk in enumerate(ids):
            ids_by_number[number + k] = pk

    for i, cells in enumerate(_data.rows(people)):
        row = validator.validate(i + 2, cells)
        if isinstance(row, list):
            raise SystemExit(f"person {i} is invalid: {row}")
        if chunk and (i % 1000 == 0 or i in (split, people // 5, people * 8 // 10)):
            flush(chunk, start)
            chunk, start = [], i
        chunk.append(row)
    flush(chunk, start)
    seconds_insert = time.perf_counter() - t0

    def link(model, values):
        for k in range(0, len(values), 5000):
            db.session.execute(insert(model), values[k : k + 5000])

    link(
        ProjectBeneficiary,
        [
            {"project_id": relief_b.id, "beneficiary_id": ids_by_number[n]}
            for n in range(overlap, split)
        ],
    )
    link(
        GroupMember,
        [
            {"group_id": a2.id, "beneficiary_id": ids_by_number[n]}
            for n in range(people // 5, people // 4)
        ]
        + [
            {"group_id": b2.id, "beneficiary_id": ids_by_number[n]}
            for n in range(people * 9 // 10, people)
        ],
    )
    db.session.execute(update(Beneficiary).where(Beneficiary.id % 10 == 0).values(status=INACTIVE))
    db.session.commit()
    seconds_total = time.perf_counter() - t0
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    sample = [ids_by_number[n] for n in range(0, people, max(1, people // 200))]
    refs = dict(
        db.session.execute(
            select(Beneficiary.id, Beneficiary.ref).where(Beneficiary.id.in_(sample))
        ).all()
    )
    in_a = {ids_by_number[n] for n in range(0, split, max(1, people // 200))}
    return {
        "admin_email": admin.email,
        "agent_email": agent.email,
        "projects": {"a": relief_a.id, "b": relief_b.id},
        "groups": {"a1": a1.id, "a2": a2.id, "b1": b1.id, "b2": b2.id},
        "people": people,
        "split": split,
        "overlap": overlap,
        "refs_a": [ref for pk, ref in refs.items() if pk in in_a],
        "refs_all": list(refs.values()),
        "seed_insert_s": round(seconds_insert, 1),
        "seed_total_s": round(seconds_total, 1),
    }


# --------------------------------------------------------------------------- measuring


class SqlTimer:
    """Time spent in cursor executions, and the statements of the last request."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.total = 0.0
        self.count = 0
        self.statements: list[tuple[str, object]] = []
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._started.append(time.perf_counter())
        self.statements.append((statement, parameters))

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.total += time.perf_counter() - self._started.pop()
        self.count += 1

    def reset(self):
        self.total, self.count, self.statements = 0.0, 0, []


def sign_in(app, email: str):
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"sign-in of {email} failed: {response.status_code}")
    return client


def scenarios(world: dict, who: str, visible: int, rng: random.Random) -> list[tuple[str, object]]:
    """(name, params or a function giving params for request k) for one user. Params with a
    "page" past the numbered ones are middle pages (see ``deep``)."""
    people, split = world["people"], world["split"]
    middle = max(1, math.ceil(visible / PER_PAGE) // 2)
    numbers = range(split) if who == "agent" else range(people)
    refs = world["refs_a"] if who == "agent" else world["refs_all"]
    project = world["projects"]["a"] if who == "agent" else world["projects"]["b"]
    group = world["groups"]["a1"]
    group_middle = max(1, (people // 5) // PER_PAGE // 2)
    out: list[tuple[str, object]] = [("list, first page", {})]
    out.append((f"list, middle page ({middle})", {"page": middle}))
    for sort in ("newest", "oldest", "ref", "status"):
        out.append((f"sort {sort}, first page", {"sort": sort}))
        out.append((f"sort {sort}, page {middle}", {"sort": sort, "page": middle}))
    out.append(("search phone", lambda k: {"q": _data.phone_of(rng.choice(numbers))}))
    out.append(("search national ID", lambda k: {"q": _data.national_id_of(rng.choice(numbers))}))
    out.append(("search reference", lambda k: {"q": rng.choice(refs)}))
    # Name search (through the keyed word index): a first and a last name (about 100 people
    # of 100,000 each), a last name alone (about 3,800), the first letters of both, and names
    # typed in Devanagari that were enrolled in Latin letters.
    out.append(("name search, first and last", lambda k: {"q": _full_name(rng)}))
    out.append(("name search, last name", lambda k: {"q": rng.choice(_data.LAST)}))
    out.append(("name search, prefixes", lambda k: {"q": _full_name(rng, letters=3)}))
    out.append(("name search, Devanagari", lambda k: {"q": _devanagari_name(rng)}))
    out.append(("filter project", {"project": project}))
    out.append(("filter project, middle page", {"project": project, "page": middle // 2 or 1}))
    out.append(("filter group", {"group": group}))
    out.append((f"filter group, page {group_middle}", {"group": group, "page": group_middle}))
    out.append(("filter status inactive", {"status": "inactive"}))
    out.append(("filter status, middle page", {"status": "active", "page": middle}))
    return out


# Some of the names of bench/_data.py as a field team would type them in Devanagari.
DEVANAGARI_FIRST = ("गीता", "सीता", "राम", "हरि", "श्याम", "माया", "कमला", "लक्ष्मी", "राधा")
DEVANAGARI_LAST = ("थापा", "गुरुङ", "तामाङ", "मगर", "शर्मा", "राई", "लामा", "अधिकारी", "पौडेल")


def _full_name(rng: random.Random, letters: int | None = None) -> str:
    first, last = rng.choice(_data.FIRST), rng.choice(_data.LAST)
    if letters:
        first, last = first[:letters], last[:letters]
    return f"{first} {last}"


def _devanagari_name(rng: random.Random) -> str:
    return f"{rng.choice(DEVANAGARI_FIRST)} {rng.choice(DEVANAGARI_LAST)}"


def deep(app, email: str, params: dict) -> dict | None:
    """For a page past the numbered ones, the arguments of the "Next" link that leads to it:
    the sort values of the last row of the page before, in the user's view. None otherwise."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.beneficiaries import services
    from portal.extensions import db

    page = params.get("page", 1)
    if page <= services.NUMBERED_PAGES:
        return None
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        query = services.ListQuery(
            project_id=params.get("project"),
            group_id=params.get("group"),
            status=params.get("status", ""),
            sort=params.get("sort", "newest"),
        )
        last = db.session.scalars(
            services.search(user, query).offset((page - 1) * PER_PAGE - 1).limit(1)
        ).one()
        cursor = services.cursor_of(last, query.sort)
        db.session.remove()
    return {**{k: v for k, v in params.items() if k != "page"}, "after": cursor}


def measure(app, client, timer: SqlTimer, name: str, params, requests: int, explain: bool) -> dict:
    from urllib.parse import urlencode

    times, sql_times, sql_counts = [], [], []
    rows_seen = set()
    for k in range(WARMUP + requests):
        query = params(k) if callable(params) else params
        url = "/beneficiaries/" + ("?" + urlencode(query) if query else "")
        timer.reset()
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{name}: GET {url} answered {response.status_code}")
        body = response.get_data(as_text=True)
        rows = len(re.findall(r'<a href="/beneficiaries/\d+" class="mono">', body))
        rows_seen.add(rows)
        if name.startswith("search") and rows != 1:
            raise SystemExit(f"{name}: GET {url} found {rows} rows, expected 1")
        if name.startswith("name search") and rows < 1:
            raise SystemExit(f"{name}: GET {url} found nobody")
        if not name.startswith(("search", "name search")) and rows != PER_PAGE:
            raise SystemExit(f"{name}: GET {url} shows {rows} rows, expected {PER_PAGE}")
        if k >= WARMUP:
            times.append(elapsed)
            sql_times.append(timer.total)
            sql_counts.append(timer.count)
        if explain and k == WARMUP:
            explain_last(app, timer, name)
    result = _data.summary_ms(times)
    result["sql_p50_ms"] = round(_data.percentile([t * 1000 for t in sql_times], 50), 2)
    result["sql_p95_ms"] = round(_data.percentile([t * 1000 for t in sql_times], 95), 2)
    result["queries"] = max(sql_counts)
    if name.startswith("name search"):
        result["rows_seen"] = sorted(rows_seen)
    return result


def explain_last(app, timer: SqlTimer, name: str) -> None:
    """EXPLAIN ANALYZE the slowest-looking statements of the last request (to stderr)."""
    from portal.extensions import db

    statements = [(s, p) for s, p in timer.statements if "beneficiar" in s]
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for statement, parameters in statements:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = "\n".join(r[0] for r in cursor.fetchall())
                print(f"\n=== {name}\n{statement}\n{parameters}\n{plan}", file=sys.stderr)
            raw.rollback()
        finally:
            raw.close()


def run(args) -> dict:
    from config import Config

    result: dict = {
        "people": args.people,
        "requests": args.requests,
        "target_p95_ms": TARGET_P95_MS,
    }
    cleanup = []
    try:
        pg = services.find_or_start_postgres()
        cleanup.append(pg.stop)
        name = pg.create_database("portal_bench_pages")
        cleanup.append(lambda: pg.drop_database(name))
        result["database"] = f"PostgreSQL ({pg.how})"
        workdir = Path(tempfile.mkdtemp(prefix="portal-bench-pages-"))
        cleanup.append(lambda: shutil.rmtree(workdir, ignore_errors=True))

        app = _data.make_app(
            pg.sqlalchemy_url(name),
            workdir / "instance",
            role="web",
            config_class=Config,
            WTF_CSRF_ENABLED=False,  # the sign-in form is the only POST here
            LOGIN_RATE_LIMIT="10000 per minute",
        )
        from portal.extensions import db

        with app.app_context():
            print(f"seeding {args.people:,} beneficiaries ...", file=sys.stderr, flush=True)
            world = seed(args.people)
            engine = db.engine
            db.session.remove()
        result["seed"] = {k: world[k] for k in ("seed_insert_s", "seed_total_s")}
        timer = SqlTimer(engine)
        rng = random.Random(7)
        visible = {"admin": args.people, "agent": world["split"]}
        result["visible"] = visible
        result["pages"] = {}
        result["baselines"] = {}  # the same middle pages by number (OFFSET)
        for who, email in (("admin", world["admin_email"]), ("agent", world["agent_email"])):
            client = sign_in(app, email)
            for label, params in scenarios(world, who, visible[who], rng):
                if args.only and not re.search(args.only, label):
                    continue
                print(f"{who}: {label}", file=sys.stderr, flush=True)
                seek = deep(app, email, params) if isinstance(params, dict) else None
                result["pages"][f"{who} | {label}"] = measure(
                    app, client, timer, label, seek or params, args.requests, args.explain
                )
                if seek is not None:
                    baseline = measure(
                        app, client, timer, label, params, args.requests, args.explain
                    )
                    result["pages"][f"{who} | {label}"]["args"] = seek
                    result["baselines"][f"{who} | {label}"] = baseline
        engine.dispose()
        p95s = [s["p95_ms"] for s in result["pages"].values()]
        result["worst_p95_ms"] = max(p95s)
        result["misses"] = sorted(
            k for k, s in result["pages"].items() if s["p95_ms"] >= TARGET_P95_MS
        )
        result["met"] = len(result["pages"]) - len(result["misses"])
        result["target_met"] = not result["misses"]
        result["ratio_p95_keyset_to_offset"] = {
            k: round(result["pages"][k]["p95_ms"] / b["p95_ms"], 2)
            for k, b in result["baselines"].items()
        }
        return result
    finally:
        _common.clean_up(cleanup)


def print_table(result: dict) -> None:
    print()
    print(
        f"Beneficiary pages, {result['people']:,} beneficiaries ({result['database']}); "
        f"{result['requests']} requests each, Flask test client; seeded in "
        f"{result['seed']['seed_total_s']} s"
    )
    print(
        f"  {'user | page':<44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'SQL p50':>8} {'SQL p95':>8} {'queries':>7}"
    )
    for key, s in result["pages"].items():
        flag = "" if s["p95_ms"] < TARGET_P95_MS else "  <-- over target"
        print(
            f"  {key:<44} {s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f} {s['p99_ms']:>8.1f} "
            f"{s['max_ms']:>8.1f} {s['sql_p50_ms']:>8.1f} {s['sql_p95_ms']:>8.1f} "
            f"{s['queries']:>7}{flag}"
        )
        base = result["baselines"].get(key)
        if base:
            print(
                f"  {'   baseline: the same page by OFFSET':<44} {base['p50_ms']:>8.1f} "
                f"{base['p95_ms']:>8.1f} {base['p99_ms']:>8.1f} {base['max_ms']:>8.1f} "
                f"{base['sql_p50_ms']:>8.1f} {base['sql_p95_ms']:>8.1f} {base['queries']:>7}"
                f"   (p95 ratio {result['ratio_p95_keyset_to_offset'][key]})"
            )
    verdict = "met" if result["target_met"] else f"MISSED ({len(result['misses'])} pages)"
    worst = result["worst_p95_ms"]
    print(
        f"  target p95 < {TARGET_P95_MS:.0f} ms on every page: {verdict}; "
        f"{result['met']} of {len(result['pages'])} under it; worst p95 {worst} ms"
    )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60, help="measured requests per page")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE to stderr")
    parser.add_argument("--only", help="only the pages whose label matches this regex")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    result = run(args)
    return _common.finish(result, print_table, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
