"""Entry point of the Dramatiq command: ``dramatiq workers.main --processes 2 --threads 8``.

Importing it creates the app once from the environment, installs the broker, declares the
actors, and starts the job sweeper in each worker process (a re-send is harmless, see
``portal.jobs.lifecycle``).
"""

from __future__ import annotations

import threading

from portal import create_app
from portal.chain.health import check_at_start
from workers.runtime import prepare, start_sweeper

# A separate process cannot share the embedded chain of `flask serve`: chain jobs fail with a
# clear message unless WEB3_PROVIDER_URI names a node.
app = create_app(role="worker", CHAIN_EMBEDDED_ALLOWED=False)
if app.config.get("WEB3_PROVIDER_URI"):
    check_at_start(app)
broker = prepare(app)
_stop = threading.Event()
sweeper = start_sweeper(app, _stop)
