"""A new password also ends the browsers remembered for two-factor: whoever changed it (or reset
it) starts from a clean slate, and a browser that someone else had remembered asks for a code."""

from __future__ import annotations

from portal import events
from portal.twofactor import devices

PASSWORD_ACTIONS = frozenset({"user.password_changed", "user.password_reset"})


def _user_changed(user, *, action: str = "", **_) -> None:
    if action in PASSWORD_ACTIONS:
        devices.forget_all(user.id)


def connect() -> None:
    events.user_changed.connect(_user_changed, weak=False)
