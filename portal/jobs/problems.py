"""What a failed job's error means, in one sentence a programme manager understands.

The technical error (type, message, where) is still stored in ``error`` for those who may read
it; ``problem`` holds the sentence shown to everyone. The sentence is chosen here, once, from
the exception's class: the nearest class in its MRO that has a sentence wins. Exceptions whose
message is written for people (``DomainError``, ``PermanentJobError`` and their kin) speak for
themselves, as does any exception with ``for_people = True``; anything unknown gets a general
sentence with a reference to quote.

A worker has no reader, so a sentence of this table is stored as its code and values (JSON,
``{"code": ..., "values": {...}}``) and written at read time in the reader's language
(``shown``). Rows stored before that hold the English sentence itself: they are shown in the
reader's language when the sentence is one of the table's, else as written.
"""

from __future__ import annotations

import json
from functools import cache

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

LIMIT = 300

# code -> the sentence, with %(ref)s where it quotes a reference.
GENERAL = "general"
WORKER_GONE_CODE = "worker_gone"
UNREACHABLE_CODE = "unreachable"
SENTENCES = {
    GENERAL: _l(
        "Something went wrong while running this job (reference %(ref)s). Retry it; if it "
        "fails again, give the reference to your administrator."
    ),
    WORKER_GONE_CODE: _l(
        "The computer running this job stopped before it finished. The job runs again by itself."
    ),
    UNREACHABLE_CODE: _l(
        "A service the portal depends on did not answer in time. The job is tried again by itself."
    ),
    "chain_unavailable": _l(
        "The payment network did not answer. The job is tried again by itself; if it keeps "
        "failing, ask your administrator to check the portal's connection to it."
    ),
    "reverted": _l(
        "The payment network refused this payment, so no money moved. Check the project's "
        "funds and spending limits, then retry."
    ),
    "caps": _l(
        "This is more than the spending limit of the portal's payment account allows. Ask "
        "the treasury to raise the limit, then retry."
    ),
    "momo": _l(
        "The mobile-money provider refused the payout or did not answer. Nothing was paid "
        "twice; the payout is tried again or can be retried."
    ),
    "provider": _l("The SMS or email provider did not accept the message."),
    "provider_config": _l(
        "Sending messages is not set up correctly. Ask your administrator to check the "
        "message settings."
    ),
    "refused": _l("The portal refused to contact that address: check the settings it came from."),
    "file_corrupt": _l("A stored file could not be read back intact. Upload it again."),
}


def _msgid(code: str) -> str:
    """The sentence's catalog key: the English text the lazy string was made from."""
    return SENTENCES[code]._args[0]


def english(code: str, **values) -> str:
    """The sentence in English (logs, tests, a caller with no reader)."""
    return _msgid(code) % values if values else _msgid(code)


# The English sentences, as older rows stored them.
WORKER_GONE = english(WORKER_GONE_CODE)
UNREACHABLE = english(UNREACHABLE_CODE)


def coded(code: str, **values) -> str:
    """What ``problem`` stores for a sentence of the table."""
    return json.dumps({"code": code, "values": values}, separators=(",", ":"), sort_keys=True)


def decode(stored: str | None) -> tuple[str, dict] | None:
    """(code, values) of a stored coded sentence; None for plain text (or nothing)."""
    if not stored or not stored.startswith("{"):
        return None
    try:
        found = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(found, dict) or found.get("code") not in SENTENCES:
        return None
    values = found.get("values")
    return found["code"], values if isinstance(values, dict) else {}


def reference(job_id: int, attempt: int | None) -> str:
    """A short code that finds the job and the try in the portal and in the logs."""
    return f"J{job_id}-{attempt}" if attempt else f"J{job_id}"


def general(ref: str) -> str:
    """The general sentence in the current language."""
    return _(_msgid(GENERAL), ref=ref)


@cache
def _sentences() -> dict[type, str | None]:
    """Exception class → sentence code; None: the exception's own message is the sentence."""
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
        LeaseLost: WORKER_GONE_CODE,
        ChainUnavailable: "chain_unavailable",
        Reverted: "reverted",
        CapsError: "caps",
        MomoError: "momo",
        ProviderError: "provider",
        ProviderConfigError: "provider_config",
        Refused: "refused",
        Failed: UNREACHABLE_CODE,
        FileCorrupt: "file_corrupt",
        sqlalchemy.exc.OperationalError: UNREACHABLE_CODE,
        redis.exceptions.ConnectionError: UNREACHABLE_CODE,
        ConnectionError: UNREACHABLE_CODE,
        TimeoutError: UNREACHABLE_CODE,
    }


def sentence(exc: BaseException, job_id: int, attempt: int | None) -> str:
    """What ``problem`` stores for ``exc``, raised by try ``attempt`` of job ``job_id``: a
    table sentence as its code (``coded``), or the exception's own words."""
    table = _sentences()
    ref = reference(job_id, attempt)
    if getattr(exc, "for_people", False):  # a class outside the portal package says so itself
        text = str(exc).strip().split("\n")[0]
        return text[:LIMIT] if text else coded(GENERAL, ref=ref)
    for cls in type(exc).__mro__:
        if cls in table:
            code = table[cls]
            if code is not None:
                return coded(code)
            text = (getattr(exc, "message", None) or str(exc)).strip().split("\n")[0]
            if text:
                return text[:LIMIT]
            break
    return coded(GENERAL, ref=ref)


# An older row's English sentence -> its code, so it too is shown in the reader's language.
def _english_codes() -> dict[str, str]:
    return {english(code): code for code in SENTENCES if code != GENERAL}


def render(stored: str | None) -> str:
    """A stored problem in the current language."""
    found = decode(stored)
    if found is not None:
        code, values = found
        text = _msgid(code)
        if code == GENERAL:
            return _(text, ref=str(values.get("ref", "")))
        return _(text)
    if stored and stored in _english_codes():
        return _(_msgid(_english_codes()[stored]))
    return stored or ""


def shown(problem: str | None, error: str | None, job_id: int, attempt: int | None) -> str:
    """What a page shows for a failure, in the reader's language: the stored sentence, or for
    a row failed before sentences were stored, the general one (the technical text is not a
    sentence)."""
    if problem:
        return render(problem)
    if not error:
        return ""
    return general(reference(job_id, attempt))


def wire(problem: str | None, error: str | None, job_id: int, attempt: int | None) -> dict:
    """The code and values a page's script writes the sentence from in its own language
    (``PortalStrings``, keys ``job_problem_<code>``); empty for the exception's own words."""
    found = decode(problem)
    if found is not None:
        return {"problem_code": found[0], "problem_values": found[1]}
    if problem and problem in _english_codes():
        return {"problem_code": _english_codes()[problem], "problem_values": {}}
    if not problem and error:
        return {"problem_code": GENERAL, "problem_values": {"ref": reference(job_id, attempt)}}
    return {"problem_code": "", "problem_values": {}}
