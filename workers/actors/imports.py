"""Import jobs: the dry run and the commit of a batch, and the KoboToolbox pull."""

from __future__ import annotations
