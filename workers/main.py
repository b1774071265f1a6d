"""Entry point of the Dramatiq command: ``dramatiq workers.main --processes 2 --threads 8``.

Importing it creates the app once from the environment, installs the broker, declares the
actors, and starts the job sweeper in each worker process (a re-send is harmless, see
``portal.jobs.lifecycle``).
"""

from __future__ import annotations

import threading

from portal import create_app
from workers.runtime import prepare, start_sweeper

app = create_app(role="worker")
broker = prepare(app)
_stop = threading.Event()
sweeper = start_sweeper(app, _stop)
