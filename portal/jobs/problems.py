"""What a failed job's error means, in one sentence a programme manager understands.

The technical error (type, message, where) is still stored in ``error`` for those who may read
it; ``problem`` holds the sentence shown to everyone. The sentence is chosen here, once, from
the exception's class: the nearest class in its MRO that has a sentence wins. Exceptions whose
message is written for people (``DomainError``, ``PermanentJobError`` and their kin) speak for
themselves, as does any exception with ``for_people = True``; anything unknown gets a general
sentence with a reference to quote.
"""

from __future__ import annotations

from functools import cache

WORKER_GONE = (
    "The computer running this job stopped before it finished. The job runs again by itself."
)
UNREACHABLE = (
    "A service the portal depends on did not answer in time. The job is tried again by itself."
)
LIMIT = 300


def reference(job_id: int, attempt: int | None) -> str:
    """A short code that finds the job and the try in the portal and in the logs."""
    return f"J{job_id}-{attempt}" if attempt else f"J{job_id}"


def general(ref: str) -> str:
    return (
        f"Something went wrong while running this job (reference {ref}). Retry it; if it "
        "fails again, give the reference to your administrator."
    )


@cache
def _sentences() -> dict[type, str | None]:
    """Exception class → sentence; None: the exception's own message is the sentence."""
    import redis.exceptions
    import sqlalchemy.exc

    from portal.chain.caps import CapsError
    from portal.chain.client import ChainUnavailable
    from portal.chain.txmanager import Reverted
    from portal.comms.providers import ProviderConfigError, ProviderError
    from portal.errors import DomainError
    from portal.files.storage import FileCorrupt
    from portal.imports.parsing import FileRejected
    from portal.jobs.leases import LeaseLost
    from portal.jobs.lifecycle import PermanentJobError
    from portal.outbound import Failed, Refused
    from portal.payouts.momo import MomoError

    return {
        DomainError: None,
        PermanentJobError: None,
        FileRejected: None,
        LeaseLost: WORKER_GONE,
        ChainUnavailable: (
            "The payment network did not answer. The job is tried again by itself; if it keeps "
            "failing, ask your administrator to check the portal's connection to it."
        ),
        Reverted: (
            "The payment network refused this payment, so no money moved. Check the project's "
            "funds and spending limits, then retry."
        ),
        CapsError: (
            "This is more than the spending limit of the portal's payment account allows. Ask "
            "the treasury to raise the limit, then retry."
        ),
        MomoError: (
            "The mobile-money provider refused the payout or did not answer. Nothing was paid "
            "twice; the payout is tried again or can be retried."
        ),
        ProviderError: "The SMS or email provider did not accept the message.",
        ProviderConfigError: (
            "Sending messages is not set up correctly. Ask your administrator to check the "
            "message settings."
        ),
        Refused: "The portal refused to contact that address: check the settings it came from.",
        Failed: UNREACHABLE,
        FileCorrupt: "A stored file could not be read back intact. Upload it again.",
        sqlalchemy.exc.OperationalError: UNREACHABLE,
        redis.exceptions.ConnectionError: UNREACHABLE,
        ConnectionError: UNREACHABLE,
        TimeoutError: UNREACHABLE,
    }


def sentence(exc: BaseException, job_id: int, attempt: int | None) -> str:
    """The sentence for ``exc``, raised by try ``attempt`` of job ``job_id``."""
    table = _sentences()
    if getattr(exc, "for_people", False):  # a class outside the portal package says so itself
        return (str(exc).strip().split("\n")[0] or general(reference(job_id, attempt)))[:LIMIT]
    for cls in type(exc).__mro__:
        if cls in table:
            text = table[cls]
            if text is None:
                text = (getattr(exc, "message", None) or str(exc)).strip().split("\n")[0]
            if text:
                return text[:LIMIT]
            break
    return general(reference(job_id, attempt))


def shown(problem: str | None, error: str | None, job_id: int, attempt: int | None) -> str:
    """What a page shows for a failure: the stored sentence, or for a row failed before
    sentences were stored, the general one (the technical text is not a sentence)."""
    if problem:
        return problem
    if not error:
        return ""
    return general(reference(job_id, attempt))
