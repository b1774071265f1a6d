"""The dates the portal accepts: one range per kind of date, and the message that names it.

A date field that takes any date a calendar can hold lets a slip of the keyboard (year 0001,
9999) through to schedules, ages and exports. Forms (through ``InRange``), services and imports
all ask the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from wtforms.validators import ValidationError


@dataclass(frozen=True)
class DateRule:
    """Dates from ``first(today)`` to ``last(today)``, both included."""

    first: Callable[[date], date]
    last: Callable[[date], date]
    too_early: str
    too_late: str

    def problem(self, value: date, today: date | None = None) -> str | None:
        """What is wrong with ``value``, or None when it is in range."""
        today = today or date.today()
        if value < self.first(today):
            return self.too_early
        if value > self.last(today):
            return self.too_late
        return None


PROJECT_FIRST, PROJECT_LAST = date(2000, 1, 1), date(2100, 12, 31)
BIRTH_FIRST = date(1900, 1, 1)

PROJECT = DateRule(
    first=lambda today: PROJECT_FIRST,
    last=lambda today: PROJECT_LAST,
    too_early="Use a date from 2000 to 2100 (this one is before 2000).",
    too_late="Use a date from 2000 to 2100 (this one is after 2100).",
)
BIRTH = DateRule(
    first=lambda today: BIRTH_FIRST,
    last=lambda today: today,
    too_early="A date of birth cannot be before 1900.",
    too_late="A date of birth cannot be in the future.",
)
RETENTION = DateRule(
    first=lambda today: today + timedelta(days=1),
    last=lambda today: PROJECT_LAST,
    too_early="The date to keep the data until must be in the future.",
    too_late="Keep the data at the latest until 2100-12-31.",
)


class InRange:
    """WTForms validator: the field's date (when given) must be within ``rule``."""

    def __init__(self, rule: DateRule):
        self.rule = rule

    def __call__(self, form, field) -> None:
        if field.data is not None and (message := self.rule.problem(field.data)):
            raise ValidationError(message)
