"""How the machine and the stack's processes fared: memory of each role, load, database
connections, sampled in a thread every couple of seconds.

A role is a process tree started from the Procfile (``sh -c`` -> gunicorn master -> worker, or
the Dramatiq parent and its worker processes): its RSS is the sum over the tree.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import psutil


def tree(pid: int) -> list[psutil.Process]:
    try:
        top = psutil.Process(pid)
        return [top, *top.children(recursive=True)]
    except psutil.Error:
        return []


def rss_mb(pid: int) -> tuple[float, int]:
    """(MB resident over the process tree, how many processes)."""
    total, count = 0, 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
            count += 1
    return total / 2**20, count


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


class Sampler:
    """``roles``: name -> root PID. ``pg``: (admin libpq URL, database name) to count the
    connections the stack holds on its database (the server's limit is shared)."""

    def __init__(self, roles: dict[str, int], pg: tuple[str, str] | None, every: float = 2.0):
        self.roles, self.pg, self.every = roles, pg, every
        self.rss: dict[str, list[float]] = {name: [] for name in roles}
        self.processes: dict[str, int] = {}
        self.load1: list[float] = []
        self.cpu_busy: list[float] = []
        self.pg_connections: list[int] = []
        self.pg_server_connections: list[int] = []
        self.cpu_start = {name: cpu_seconds(pid) for name, pid in roles.items()}
        self.cpu_end: dict[str, float] = {}
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        psutil.cpu_percent(None)  # the first call only sets the starting point

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _pg_counts(self, conn) -> None:
        row = conn.execute(
            "select count(*) filter (where datname = %s), count(*) from pg_stat_activity "
            "where backend_type = 'client backend'",
            (self.pg[1],),
        ).fetchone()
        self.pg_connections.append(int(row[0]))
        self.pg_server_connections.append(int(row[1]))

    def _run(self) -> None:
        conn = None
        if self.pg:
            import psycopg

            with contextlib.suppress(Exception):
                conn = psycopg.connect(self.pg[0], autocommit=True, connect_timeout=5)
        try:
            while not self._stop.wait(self.every):
                for name, pid in self.roles.items():
                    mb, count = rss_mb(pid)
                    if count:
                        self.rss[name].append(mb)
                        self.processes[name] = count
                self.load1.append(os.getloadavg()[0])
                self.cpu_busy.append(psutil.cpu_percent(None))
                if conn is not None:
                    with contextlib.suppress(Exception):
                        self._pg_counts(conn)
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> dict:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        elapsed = time.monotonic() - self.started
        report: dict = {"roles": {}}
        for name, pid in self.roles.items():
            values = self.rss[name]
            used = cpu_seconds(pid) - self.cpu_start[name]
            report["roles"][name] = {
                "rss_mb_peak": round(max(values), 1) if values else None,
                "rss_mb_last": round(values[-1], 1) if values else None,
                "processes": self.processes.get(name),
                "cpu_cores_mean": round(max(used, 0.0) / elapsed, 2) if elapsed else None,
            }
        report["load1_max"] = round(max(self.load1), 2) if self.load1 else None
        report["cpu_busy_pct_mean"] = (
            round(sum(self.cpu_busy) / len(self.cpu_busy), 1) if self.cpu_busy else None
        )
        report["pg_connections_peak"] = max(self.pg_connections, default=None)
        report["pg_server_connections_peak"] = max(self.pg_server_connections, default=None)
        return report
