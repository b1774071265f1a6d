"""Account jobs: a "forgot password" request, looked up away from the request that made it."""

from __future__ import annotations

from portal.accounts import recovery
from portal.jobs.kinds import ACCOUNTS_PASSWORD_RESET
from workers.actors import handles


@handles(ACCOUNTS_PASSWORD_RESET.name)
def password_reset(job) -> None:
    # No result: whether an email went out would tell job readers which addresses have accounts.
    recovery.handle_request(job.payload["email"])
