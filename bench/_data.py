"""Shared by bench/import.py and bench/pages.py: synthetic people, CSV files, child processes.

People are a pure function of their number ``i`` (0, 1, 2, ...), so a benchmark can write a
million of them to disk without holding them in memory, and can later search for person ``i``'s
phone number or national ID without remembering anything:

- phone: a valid Nepali mobile number ``98XXXXXXXX`` (prefixes 980-982 and 984-986), unique for
  ``i`` below 60 million (an affine bijection scatters them over the whole range);
- national ID: a citizenship-style number ``DD-DD-DD-DDDD``, unique for ``i`` below 10^10;
- name, date of birth (ISO or day-first ``dd/mm/yyyy``, as field teams write them), location
  and gender drawn from small lists by a seeded generator.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

HEADERS = ["Full name", "Mobile", "Citizenship No", "Date of birth", "Location", "Gender"]
# What portal.imports.fields.guess_mapping makes of HEADERS (checked by the benchmarks).
MAPPING = {
    "Full name": "name",
    "Mobile": "phone",
    "Citizenship No": "national_id",
    "Date of birth": "date_of_birth",
    "Location": "location",
    "Gender": "gender",
}

_PHONE_PREFIXES = ("980", "981", "982", "984", "985", "986")
_PHONE_SPACE = len(_PHONE_PREFIXES) * 10**7
_PHONE_A, _PHONE_B = 7_368_787, 1_234_567  # A is coprime with 6 * 10^7
_NID_SPACE = 10**10
_NID_A, _NID_B = 3_571_428_571, 987_654_321  # A is coprime with 10^10

FIRST = (
    "Sita", "Gita", "Ram", "Hari", "Shyam", "Maya", "Kamala", "Bishnu", "Krishna", "Laxmi",
    "Sarita", "Sunita", "Anita", "Ramesh", "Suresh", "Dipak", "Nabin", "Pooja", "Asha", "Binod",
    "Prakash", "Radha", "Sabina", "Manju", "Bikash", "Santosh", "Rita", "Gopal", "Parbati",
    "Dil", "Man", "Tek", "Januka", "Sushila", "Indira", "Kiran", "Rajesh", "Mina", "Durga",
)  # fmt: skip
MIDDLE = ("", "", "", "Kumari", "Bahadur", "Prasad", "Devi", "Maya", "Raj")
LAST = (
    "Rai", "Thapa", "Lama", "Gurung", "Tamang", "Magar", "Shrestha", "Sharma", "Adhikari",
    "Khadka", "Karki", "Basnet", "Poudel", "Bhattarai", "Limbu", "Sherpa", "Tharu", "Yadav",
    "Chaudhary", "Bista", "Rana", "Maharjan", "Dahal", "Ghimire", "Koirala", "Pandey",
)  # fmt: skip
PLACES = (
    ("Bharatpur", "Chitwan"), ("Ratnanagar", "Chitwan"), ("Hetauda", "Makwanpur"),
    ("Gorkha", "Gorkha"), ("Bidur", "Nuwakot"), ("Melamchi", "Sindhupalchok"),
    ("Dhangadhi", "Kailali"), ("Tikapur", "Kailali"), ("Gulariya", "Bardiya"),
    ("Rajbiraj", "Saptari"), ("Janakpur", "Dhanusha"), ("Itahari", "Sunsari"),
)  # fmt: skip
GENDERS = ("female", "male", "F", "M", "female", "male", "other", "")
_DOB_START, _DOB_DAYS = date(1940, 1, 1), (date(2007, 12, 31) - date(1940, 1, 1)).days


def phone_of(i: int) -> str:
    """Person ``i``'s mobile number as written in the file (national format, 10 digits)."""
    x = (i * _PHONE_A + _PHONE_B) % _PHONE_SPACE
    return f"{_PHONE_PREFIXES[x // 10**7]}{x % 10**7:07d}"


def national_id_of(i: int) -> str:
    y = (i * _NID_A + _NID_B) % _NID_SPACE
    return f"{y // 10**8:02d}-{y // 10**6 % 100:02d}-{y // 10**4 % 100:02d}-{y % 10**4:04d}"


def rows(count: int, start: int = 0, seed: int = 1):
    """``count`` people from number ``start`` on, as CSV cells in HEADERS order (a generator)."""
    rng = random.Random(seed * 1_000_003 + start)
    for i in range(start, start + count):
        middle = rng.choice(MIDDLE)
        name = " ".join(p for p in (rng.choice(FIRST), middle, rng.choice(LAST)) if p)
        born = _DOB_START + timedelta(days=rng.randrange(_DOB_DAYS))
        dob = born.isoformat() if i % 3 else born.strftime("%d/%m/%Y")
        town, district = rng.choice(PLACES)
        location = f"Ward {rng.randint(1, 19)}, {town}, {district}"
        yield [name, phone_of(i), national_id_of(i), dob, location, rng.choice(GENDERS)]


def write_csv(path: Path, count: int, start: int = 0, seed: int = 1) -> int:
    """Write ``count`` people to ``path`` as a UTF-8 CSV, streaming; returns the file's size."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        batch = []
        for cells in rows(count, start, seed):
            batch.append(cells)
            if len(batch) == 5000:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)
    return path.stat().st_size


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), as in bench/realtime.py."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict:
    ms = [v * 1000 for v in seconds]

    def r(value):
        return None if value is None else round(value, 2)

    return {
        "n": len(ms),
        "p50_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "max_ms": r(max(ms) if ms else None),
        "mean_ms": r(sum(ms) / len(ms) if ms else None),
    }


# --------------------------------------------------------------------------- processes


def rss_mb() -> float:
    """This process's resident set size now, in MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def run_child(argv: list[str], *, env: dict | None = None, timeout: float = 3600) -> dict:
    """Run ``python argv...`` as a fresh process and return the JSON object it prints last.

    The child's peak RSS is read from the kernel's accounting of that one child (``wait4``), so
    nothing the parent or an earlier child did is counted; it is added as ``child_peak_rss_mb``.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(
            f"child {' '.join(argv[:3])} exited {proc.returncode}\n"
            f"--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-5000:]}"
        )
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"child printed no JSON\n{stdout[-2000:]}\n{stderr[-3000:]}")
    result = json.loads(lines[-1])
    result["child_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["child_wall_s"] = round(wall, 2)
    result["child_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


# --------------------------------------------------------------------------- the portal


def make_app(database_url: str, instance_dir: str | Path, *, role: str = "worker", **extra):
    """The portal app on ``database_url`` with a fresh PII key and the stub broker."""
    from config import Config
    from portal import create_app, crypto

    config_class = extra.pop("config_class", Config)

    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "BROKER": "stub",
        "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SECRET_KEY": "bench-" + os.urandom(16).hex(),
        "PII_KEY": crypto.generate_key(),
        "INSTANCE_DIR": str(instance_dir),
    }
    settings.update(extra)
    return create_app(config_class, role=role, **settings)


def create_schema_and_staff(
    project_names=("Bench project",), group_names=("Bench group",), password: str | None = None
):
    """Inside an app context: tables, seeded roles, an admin, projects and one group per project
    (``group_names[k]`` in project ``k``). Returns (admin, projects, groups); commits."""
    from portal.accounts.models import User
    from portal.accounts.services import create_user, role_by_name, seed_roles
    from portal.beneficiaries import groups as group_services
    from portal.extensions import db
    from portal.projects import services as projects

    db.create_all()
    seed_roles()
    email = f"bench-admin-{os.urandom(3).hex()}@example.org"
    if password is None:
        # No sign-in needed: skip scrypt, whose 32 MB work area would set the child's peak RSS.
        admin = User(email=email, name="Bench Admin", password_hash="!", role=role_by_name("admin"))  # noqa: S106
        db.session.add(admin)
        db.session.flush()
    else:
        admin = create_user(email, "Bench Admin", password, role_by_name("admin"))
    made = [projects.create({"name": name, "type": "cva"}, admin) for name in project_names]
    made_groups = [
        group_services.create(made[k], name, "benchmark cohort")
        for k, name in enumerate(group_names)
    ]
    db.session.commit()
    return admin, made, made_groups
