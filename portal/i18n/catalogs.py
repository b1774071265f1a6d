"""The translation catalogs: ``translations/<locale>/LC_MESSAGES/messages.po`` is what people
edit and git keeps; the ``.mo`` beside it, which gettext reads, is built from it.

Every process builds what is missing or older than its ``.po`` when it starts (``make`` does
the same), so a checkout never serves a stale catalog and no compiled file is committed. The
file is written under a temporary name and renamed, so processes starting together never read
half a catalog.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)


def ensure_compiled(directory: str | Path) -> list[str]:
    """Compile each ``.po`` under ``directory`` whose ``.mo`` is missing or older; returns the
    locales compiled."""
    compiled = []
    for po in sorted(Path(directory).glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            _compile(po, mo)
        except OSError as exc:  # a read-only install: serve what is there, say why
            log.warning("could not compile the %s catalog: %s", po.parent.parent.name, exc)
            continue
        compiled.append(po.parent.parent.name)
    return compiled


def _compile(po: Path, mo: Path) -> None:
    locale = po.parent.parent.name
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale)
    handle, temporary = tempfile.mkstemp(dir=mo.parent, prefix=".messages-", suffix=".mo")
    try:
        with os.fdopen(handle, "wb") as target:
            # Fuzzy entries are a translator's guess, not yet a translation: left out.
            write_mo(target, catalog, use_fuzzy=False)
        os.replace(temporary, mo)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
