"""Errors that services raise and views turn into a message for the user."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain said no; the message is safe to show to the user."""

    status = 409


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class ProjectClosed(DomainError):
    def __init__(self, name: str = "This project"):
        super().__init__(f"{name} is closed and can no longer be changed.")


class InvalidTransition(DomainError):
    pass


class Conflict(DomainError):
    pass


class ValidationFailed(DomainError):
    """Input a form could not catch (it depends on the state); ``fields`` maps field → message."""

    status = 422

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(fields.values()))
        self.fields = fields
