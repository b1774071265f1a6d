"""Operator commands for two-factor sign-in."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from portal.extensions import db


def init_app(app: Flask) -> None:
    app.cli.add_command(two_factor_reset)


@click.command("two-factor-reset")
@click.option("--email", required=True)
def two_factor_reset(email: str):
    """Remove a user's two-factor set-up (a lost phone, the last administrator): audited; they
    set it up again at their next sign-in."""
    from portal.accounts.models import User
    from portal.errors import DomainError
    from portal.twofactor import services

    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException("No user has this email.")
    try:
        services.reset(user, actor=None)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"two-factor sign-in of user {user.id} reset; they set it up at their next sign-in")
