"""An upload kept while the rest of the form is corrected.

A browser never fills a file field again, so a form re-rendered for another field's error
(the Source left empty, a group of another project) would lose the chosen file. The file is
stored encrypted as any upload (``portal.files.storage``), for a day, and the form carries a
signed token naming it; only the user who uploaded it may use it, and the next attempt takes it
over as the import's file (or a newly chosen file replaces it).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import FileStorage

from portal.extensions import db
from portal.files import storage
from portal.files.models import StoredFile
from portal.timeutil import utcnow

KIND = "import-held"
KEEP = timedelta(days=1)
SALT = "import-held-upload"


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def chosen(upload: FileStorage | None) -> bool:
    return upload is not None and bool(upload.filename)


def hold(upload: FileStorage, user) -> tuple[StoredFile, str] | None:
    """Keep ``upload`` for the next attempt: the stored file and its token (None when the file
    is too large to keep; the form says so on its own)."""
    upload.stream.seek(0)
    try:
        stored = storage.store(
            upload.stream,
            kind=KIND,
            filename=upload.filename or "file",
            content_type=upload.mimetype or "application/octet-stream",
            created_by_id=user.id,
            keep_days=1,
            max_bytes=current_app.config["IMPORT_MAX_BYTES"],
        )
    except ValueError:
        return None
    return stored, _signer().dumps(stored.id)


def find(token: str | None, user) -> StoredFile | None:
    """The held file ``token`` names, if it is this user's and still kept."""
    if not token:
        return None
    try:
        file_id = _signer().loads(token, max_age=int(KEEP.total_seconds()))
    except BadSignature:
        return None
    stored = db.session.get(StoredFile, file_id)
    if stored is None or stored.kind != KIND or stored.created_by_id != user.id:
        return None
    return stored


def adopt(stored: StoredFile, keep_days: int = 30) -> StoredFile:
    """Make a held file the import's own: kept as long as any import file."""
    stored.kind = "import"
    stored.expires_at = utcnow() + timedelta(days=keep_days)
    db.session.flush()
    return stored


def token_for(stored: StoredFile) -> str:
    return _signer().dumps(stored.id)
