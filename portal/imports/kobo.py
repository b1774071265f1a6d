"""KoboToolbox: pulling a form's submissions (API v2) and taking them one by one from its webhook.

A pull becomes an ordinary import batch (a CSV of the new submissions, stored encrypted) that goes
through column matching, the dry run and the commit like an uploaded file. The webhook imports a
single submission at once. Both remember each submission's ``_uuid``, so nothing is imported
twice, whichever way it arrives first.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import inputs, outbound
from portal.errors import Conflict, DomainError
from portal.extensions import db
from portal.files import storage
from portal.imports import dedup, fields, validation
from portal.imports.models import KOBO, UPLOADED, ImportBatch, ImportSource, KoboSubmission
from portal.projects import services as projects
from portal.projects.models import Project
from portal.settings import services as settings
from portal.settings.services import default_country
from portal.timeutil import utcnow
from portal.transitions import insert_or_skip

UUID = "_uuid"
# Kobo's bookkeeping fields: kept out of the columns offered for matching, except the uuid.
_META_PREFIXES = ("_", "meta/", "formhub/")
PAGE_SIZE = 1000


class KoboError(DomainError):
    status = 502


def policy() -> outbound.Policy:
    """The servers the API token may go to: the allow-list setting, under the outbound rules."""
    return outbound.policy_from_config(
        "KoboToolbox", current_app.config, settings.get(settings.KOBO_ALLOWED_HOSTS)
    )


def check_server_url(url: str) -> None:
    """Refuse a server URL the token may not be sent to (saving a source; no DNS asked)."""
    try:
        outbound.check_url(url, policy())
    except outbound.Refused as exc:
        raise KoboError(str(exc)) from None


def _same_origin(a: str, b: str) -> bool:
    sa, sb = urlsplit(a), urlsplit(b)
    return (sa.scheme, sa.netloc) == (sb.scheme, sb.netloc)


def fetch_submissions(server_url: str, asset_uid: str, token: str) -> Iterator[dict]:
    """Every submission of the form, following ``next`` page by page."""
    base = server_url.rstrip("/")
    url: str | None = f"{base}/api/v2/assets/{asset_uid}/data/?format=json&limit={PAGE_SIZE}"
    rules = policy()
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    while url:
        # `next` comes from the server: follow it only on the configured host (no SSRF hop);
        # the guard checks every hop again (allow-list, resolved address).
        if not isinstance(url, str) or not _same_origin(url, base):
            raise KoboError("KoboToolbox answered with a next page on another server; stopped.")
        try:
            reply = outbound.request("GET", url, rules, headers=headers)
        except outbound.Refused as exc:
            raise KoboError(f"Not sent: {exc}") from None
        except outbound.TooLarge as exc:  # not worth another try
            raise KoboError(f"KoboToolbox's answer was refused: {exc}") from None
        except outbound.Failed as exc:
            raise KoboError(f"KoboToolbox could not be reached: {exc}") from None
        if reply.status in (401, 403):
            raise KoboError("KoboToolbox refused the API token.")
        if reply.status == 404:
            raise KoboError("KoboToolbox has no form with this asset uid.")
        if 300 <= reply.status < 400:
            raise KoboError(
                f"KoboToolbox answered with a redirect ({reply.status}); not followed. "
                "Check the server address."
            )
        if reply.status != 200:
            raise KoboError(f"KoboToolbox answered {reply.status}.")
        try:
            page = reply.json()
            results = page["results"]
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise KoboError("KoboToolbox's answer was not the expected JSON.") from None
        yield from results
        url = page.get("next")


def flatten(submission: dict) -> dict[str, str]:
    """Column name -> text; repeat groups and lists are joined, Kobo bookkeeping is dropped."""
    row: dict[str, str] = {}
    for key, value in submission.items():
        if key != UUID and key.startswith(_META_PREFIXES):
            continue
        if isinstance(value, list | dict):
            value = json.dumps(value, ensure_ascii=False)
        row[key] = "" if value is None else str(value)
    return row


def submission_uuid(submission: dict) -> str | None:
    """The submission's ``_uuid`` (or its instance ID); None unless it is plain text or a number."""
    value = submission.get(UUID)
    if not value:
        value = submission.get("meta/instanceID")
        value = value.removeprefix("uuid:") if isinstance(value, str) else value
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not inputs.is_plain_text(value):
        return None
    return value.strip()[:64] or None


def text_problem(row: dict[str, str]) -> str | None:
    """Why a flattened submission breaks the input rule (answers may span lines), or None."""
    for key, value in row.items():
        if not inputs.is_plain_text(key):
            return "A question name contains a control character."
        problem = inputs.text_problem(value, multiline=True)
        if problem:
            return f"The answer to “{key[:80]}” {problem}."
    return None


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Kobo names questions by their group path ("household/phone"): guess on the last part."""
    short = {h: h.rsplit("/", 1)[-1] for h in headers if h != UUID}
    guessed = fields.guess_mapping(list(short.values()))
    return {h: guessed[s] for h, s in short.items() if s in guessed}


def mapping_for(source: ImportSource, headers: list[str]) -> dict[str, str]:
    remembered = {h: f for h, f in source.mapping.items() if h in headers}
    return remembered or guess_mapping(headers)


def seen_uuids(source: ImportSource) -> set[str]:
    return set(
        db.session.scalars(select(KoboSubmission.uuid).where(KoboSubmission.source_id == source.id))
    )


def pull_to_batch(source: ImportSource, created_by_id: int | None) -> ImportBatch | None:
    """Fetch the form's submissions not seen before into a new batch; None when none are new."""
    if not (source.kobo_server_url and source.kobo_asset_uid and source.kobo_token):
        raise KoboError("Set the server, the form's asset uid and the API token first.")
    seen = seen_uuids(source)
    rows: list[dict[str, str]] = []
    columns: dict[str, None] = {UUID: None}
    for submission in fetch_submissions(
        source.kobo_server_url, source.kobo_asset_uid, source.kobo_token
    ):
        uuid = submission_uuid(submission)
        if not uuid or uuid in seen:
            continue
        seen.add(uuid)
        row = flatten(submission)
        row[UUID] = uuid
        columns.update(dict.fromkeys(row))
        rows.append(row)
    if not rows:
        return None
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    filename = f"kobo-{source.kobo_asset_uid}-{utcnow():%Y%m%d-%H%M}.csv"
    stored = storage.store(
        io.BytesIO(text.getvalue().encode()),
        kind="import",
        filename=filename,
        content_type="text/csv",
        created_by_id=created_by_id,
        project_id=source.project_id,
    )
    headers = list(columns)
    batch = ImportBatch(
        source_id=source.id,
        project_id=source.project_id,
        group_id=source.group_id,
        created_by_id=created_by_id,
        file_id=stored.id,
        filename=filename,
        kind=KOBO,
        status=UPLOADED,
        headers_json=json.dumps(headers),
        mapping_json=json.dumps(mapping_for(source, headers)),
        total_rows=len(rows),
    )
    db.session.add(batch)
    db.session.flush()
    return batch


# --------------------------------------------------------------------------- webhook


def new_webhook_secret(source: ImportSource) -> str:
    """Make (or replace) the shared secret; only its hash is kept, so show it now or never."""
    secret = secrets.token_urlsafe(32)
    source.webhook_secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    db.session.flush()
    return secret


def secret_matches(source: ImportSource, offered: str | None) -> bool:
    if not source.webhook_secret_hash or not offered:
        return False
    digest = hashlib.sha256(offered.encode()).hexdigest()
    return hmac.compare_digest(digest, source.webhook_secret_hash)


class SubmissionRejected(DomainError):
    status = 422


DUPLICATE = "This person is already enrolled."


def import_submission(source: ImportSource, submission: dict) -> tuple[KoboSubmission, bool]:
    """Import one webhook submission; returns (receipt, first time seen).

    The receipt is claimed first, by an INSERT that skips when the ``_uuid`` is there: of ten
    deliveries of one submission at once, one imports it and the others get its receipt (on
    PostgreSQL they wait for the first one's transaction to end, then read what it recorded).
    """
    uuid = submission_uuid(submission)
    if uuid is None:
        raise SubmissionRejected("The submission has no _uuid.")
    existing = _receipt(source, uuid)
    if existing is not None:
        return existing, False
    if not source.project_id:
        raise SubmissionRejected("This source has no project to import into.")
    projects.ensure_writable(db.session.get(Project, source.project_id))
    claimed = insert_or_skip(
        KoboSubmission,
        {"source_id": source.id, "uuid": uuid, "outcome": "pending", "received_at": utcnow()},
        returning=KoboSubmission.id,
    )
    if claimed is None:
        existing = _receipt(source, uuid)
        if existing is None:  # claimed, then given up by a delivery that failed: send again
            raise Conflict("This submission could not be recorded; send it again.")
        return existing, False
    receipt = db.session.get(KoboSubmission, claimed)
    receipt.outcome, receipt.message, receipt.beneficiary_id = _import_one(source, submission)
    db.session.flush()
    return receipt, True


def _receipt(source: ImportSource, uuid: str) -> KoboSubmission | None:
    return db.session.scalar(
        select(KoboSubmission)
        .where(KoboSubmission.source_id == source.id, KoboSubmission.uuid == uuid)
        .execution_options(populate_existing=True)
    )


def _import_one(source: ImportSource, submission: dict) -> tuple[str, str, int | None]:
    """Validate and insert one submission's person: outcome, message and the new id."""
    from portal.imports.pipeline import insert_rows

    row = flatten(submission)
    problem = text_problem(row)
    if problem:
        raise SubmissionRejected(problem)
    headers = list(row)
    mapping = mapping_for(source, headers)
    problems = fields.check_mapping(mapping, headers)
    if problems:
        return "invalid", "; ".join(problems)[:500], None
    validator = validation.RowValidator(mapping, headers, default_country())
    result = validator.validate(1, [row[h] for h in headers])
    if isinstance(result, list):
        message = "; ".join(f"{e.field}: {e.message}" for e in result)
        return "invalid", message[:500], None
    phones, ids = dedup.existing_in_db(
        db.session,
        {result.phone_index},
        {result.national_id_index} if result.national_id_index else set(),
    )
    if phones or ids:
        return "duplicate", DUPLICATE, None
    try:
        # Another submission (another uuid) may enrol the same phone or ID at this moment:
        # the unique indexes decide, and only this insert is undone.
        with db.session.begin_nested():
            (person_id,) = insert_rows(source.project_id, source.group_id, [result])
    except IntegrityError:
        return "duplicate", DUPLICATE, None
    return "imported", "", person_id
