"""Counts the SQL statements a bench's Procfile processes send (``bench/_statements.py``).

Python imports this module at start-up when its folder is on ``PYTHONPATH`` and
``BENCH_STATEMENTS_DIR`` is set. It imports nothing heavy then (the web process patches the
standard library for gevent later, and refuses to start when the database driver came first):
a finder waits for ``sqlalchemy.orm`` to be imported by the app, then listens to every
engine's ``before_cursor_execute``. A thread of its own writes the counts by first keyword to
``<dir>/<pid>.json`` every 0.1 s, so the bench reads them at the moments it reads CPU time.
"""

import importlib.abc
import importlib.util
import json
import os
import sys
import threading
import time

_DIR = os.environ.get("BENCH_STATEMENTS_DIR")
_DETAIL = bool(os.environ.get("BENCH_STATEMENTS_DETAIL"))
_counts: dict[str, int] = {}
_texts: dict[str, int] = {}


def _count(conn, cursor, statement, *args):
    word = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else "?"
    _counts[word] = _counts.get(word, 0) + 1
    if _DETAIL:
        text = " ".join(statement.split())[:160]
        _texts[text] = _texts.get(text, 0) + 1


def _attach():
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", _count)
    # A real thread: it is created before gevent patches the module, and only writes a file.
    threading.Thread(target=_write_forever, name="bench-statements", daemon=True).start()


def _write_forever():
    path = os.path.join(_DIR, f"{os.getpid()}.json")
    while True:
        time.sleep(0.1)
        data = json.dumps({"argv": sys.argv, "counts": dict(_counts), "texts": dict(_texts)})
        with open(path + ".tmp", "w") as out:
            out.write(data)
        os.replace(path + ".tmp", path)


class _AfterOrm(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "sqlalchemy.orm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _attach()

        spec.loader.exec_module = exec_module
        return spec


if _DIR:
    sys.meta_path.insert(0, _AfterOrm())

if os.environ.get("BENCH_STACKS_DIR"):
    import stack_sampler

    stack_sampler.start()
