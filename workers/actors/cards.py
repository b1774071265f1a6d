"""Card jobs: the printable PDF of a group's beneficiary cards."""

from __future__ import annotations
