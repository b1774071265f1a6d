"""Encrypted file storage under ``instance/files``.

Uploads hold personal data, so nothing is written to disk in clear. A file is a header and a
sequence of chunks, each sealed with AES-256-GCM under a key derived from ``PII_KEY``; the
associated data binds each chunk to its file, its position and whether it is the last one, so
chunks cannot be reordered, swapped between files or cut off unnoticed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from flask import current_app
from sqlalchemy import select

from portal.crypto import cipher
from portal.extensions import db
from portal.files.models import StoredFile
from portal.timeutil import utcnow

MAGIC = b"PFE1"
CHUNK = 256 * 1024


class FileCorrupt(RuntimeError):
    """The stored file was changed, cut short, or sealed with another key."""


def _root() -> Path:
    root = Path(current_app.config["INSTANCE_DIR"]) / "files"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def path_of(stored: StoredFile) -> Path:
    return _root() / f"{stored.id}.bin"


def _aad(file_id: str, index: int, last: bool) -> bytes:
    return file_id.encode() + struct.pack(">Q?", index, last)


def store(
    source: BinaryIO,
    *,
    kind: str,
    filename: str,
    content_type: str = "application/octet-stream",
    created_by_id: int | None = None,
    project_id: int | None = None,
    keep_days: int | None = 30,
    max_bytes: int | None = None,
) -> StoredFile:
    """Encrypt ``source`` to disk as it is read; raise ValueError past ``max_bytes``."""
    stored = StoredFile(
        id=secrets.token_hex(16),
        kind=kind,
        filename=os.path.basename(filename)[:255] or "file",
        content_type=content_type,
        created_by_id=created_by_id,
        project_id=project_id,
        expires_at=utcnow() + timedelta(days=keep_days) if keep_days else None,
    )
    target = path_of(stored)
    aead = cipher("files")
    size = 0
    try:
        with open(target, "wb") as out:
            os.chmod(target, 0o600)
            prefix = secrets.token_bytes(4)
            out.write(MAGIC + prefix)
            index = 0
            chunk = source.read(CHUNK)
            while True:
                following = source.read(CHUNK) if chunk else b""
                last = not following
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ValueError(f"the file is larger than {max_bytes // (1024 * 1024)} MB")
                nonce = prefix + struct.pack(">Q", index)
                sealed = aead.encrypt(nonce, chunk, _aad(stored.id, index, last))
                out.write(struct.pack(">I", len(sealed)) + sealed)
                if last:
                    break
                chunk, index = following, index + 1
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    stored.size = size
    db.session.add(stored)
    db.session.flush()
    return stored


def iter_plain(stored: StoredFile) -> Iterator[bytes]:
    """The file's bytes, decrypted chunk by chunk (for downloads and streaming parsers).

    The file is opened now, not at the first chunk: a download's body is read after the view
    has returned and its app context is gone.
    """
    return _decrypt(open(path_of(stored), "rb"), stored.id, cipher("files"))


def _decrypt(handle: BinaryIO, file_id: str, aead) -> Iterator[bytes]:
    with handle:
        header = handle.read(len(MAGIC) + 4)
        if header[: len(MAGIC)] != MAGIC:
            raise FileCorrupt("not a portal file")
        prefix = header[len(MAGIC) :]
        index = 0
        while True:
            size_bytes = handle.read(4)
            if len(size_bytes) < 4:
                raise FileCorrupt("the file was cut short")
            sealed = handle.read(struct.unpack(">I", size_bytes)[0])
            last = handle.peek(1) == b""
            nonce = prefix + struct.pack(">Q", index)
            try:
                plain = aead.decrypt(nonce, sealed, _aad(file_id, index, last))
            except InvalidTag:
                raise FileCorrupt("the file was changed or sealed with another key") from None
            yield plain
            if last:
                return
            index += 1


@contextmanager
def plain_copy(stored: StoredFile) -> Iterator[Path]:
    """A decrypted copy in a private temporary folder, removed on exit (for XLSX readers)."""
    folder = tempfile.mkdtemp(prefix="portal-")
    os.chmod(folder, 0o700)
    target = Path(folder) / ("plain" + Path(stored.filename).suffix.lower())
    try:
        with open(target, "wb") as out:
            for chunk in iter_plain(stored):
                out.write(chunk)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def delete(stored: StoredFile) -> None:
    path_of(stored).unlink(missing_ok=True)
    db.session.delete(stored)
    db.session.flush()


def purge_expired(limit: int = 500) -> int:
    """Delete files past their keeping time (uploads, reports, card sheets hold personal data)."""
    expired = db.session.scalars(
        select(StoredFile)
        .where(StoredFile.expires_at.is_not(None), StoredFile.expires_at < utcnow())
        .limit(limit)
    ).all()
    for stored in expired:
        delete(stored)
    db.session.commit()
    return len(expired)
