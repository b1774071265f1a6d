"""Operator commands: ``flask --app wsgi <command>``."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app

from portal.extensions import db


def init_app(app: Flask) -> None:
    for command in (
        create_user,
        invite,
        reset_password,
        seed_demo_command,
        audit_verify,
        serve,
        sweep_jobs,
        chain_check,
        chain_watch,
        health,
        name_index,
    ):
        app.cli.add_command(command)
    from portal.chain import cli as chain_cli
    from portal.twofactor import cli as twofactor_cli

    chain_cli.init_app(app)
    twofactor_cli.init_app(app)


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--name", default=None, help="Display name; defaults to the part before @.")
@click.option("--role", "role_name", default="admin", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(email: str, name: str | None, role_name: str, password_stdin: bool):
    """Create a staff user (the roles are seeded first if missing)."""
    from portal.accounts import services
    from portal.errors import DomainError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    services.seed_roles()
    try:
        user = services.create_user(
            email, name or email.split("@")[0], password, services.role_by_name(role_name)
        )
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"created user {user.id} <{user.email}> with role {user.role.name}")


@click.command("invite")
@click.option("--email", required=True)
@click.option("--role", "role_name", required=True, help="The role's name, as on the Roles page.")
@click.option("--project", "project_ids", type=int, multiple=True, help="A project id (repeat).")
def invite(email: str, role_name: str, project_ids: tuple[int, ...]):
    """Invite a staff member: emails them a link to choose their password, and prints it."""
    from portal.accounts import invitations, links, services
    from portal.errors import DomainError

    services.seed_roles()
    try:
        invitation, token = invitations.invite(
            email, services.role_by_name(role_name), set(project_ids), actor=None
        )
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"invitation {invitation.id} emailed to {invitation.email}; its link (single use):")
    click.echo(links.url(token))


@click.command("reset-password")
@click.option("--email", required=True)
def reset_password(email: str):
    """Print a single-use link to choose a new password (nothing is emailed)."""
    from sqlalchemy import select

    from portal.accounts import recovery
    from portal.accounts.models import User

    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException("No user has this email.")
    if not user.active:
        raise click.ClickException("This account is inactive: activate it first.")
    url = recovery.issue(user, send=False)
    db.session.commit()
    click.echo(
        f"password reset link for user {user.id} (single use, works "
        f"{current_app.config['PASSWORD_RESET_TTL_MINUTES']} minutes):"
    )
    click.echo(url)


@click.command("seed-demo")
def seed_demo_command():
    """Seed the demo admin, project, beneficiaries and vendors (once; later runs do nothing)."""
    from portal.demo import seed_demo

    accounts = seed_demo()
    if accounts is None:
        click.echo("demo data already present; nothing changed")
        return
    click.echo("=" * 64)
    click.echo("Demo admin and finance approver created. These passwords are shown once:")
    for email, password in accounts.items():
        click.echo(f"  email:    {email}")
        click.echo(f"  password: {password}")
    hours = current_app.config["TWO_FACTOR_GRACE_HOURS"]
    click.echo(
        "Both roles require two-factor sign-in. They may sign in without it for "
        f"{hours} hours from their first sign-in; then (or any time before) set it up at "
        "/account/two-factor with an authenticator app. Lost the phone: "
        "flask --app wsgi two-factor-reset --email EMAIL"
    )
    click.echo("=" * 64)


@click.command("audit-verify")
def audit_verify():
    """Check the audit log's hash chain; exit 1 if an entry was changed or removed."""
    from portal.audit.services import verify

    result = verify()
    if result.ok:
        click.echo(f"audit log intact: {result.checked} entries verified")
        return
    for problem in result.problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    click.echo(
        f"audit log BROKEN: {len(result.problems)} problem(s) in {result.checked} entries", err=True
    )
    sys.exit(1)


@click.command("sweep-jobs")
def sweep_jobs():
    """Re-send unsent or lost jobs and recover orphaned ones, once."""
    from portal.jobs.services import sweep
    from portal.vendor_portal.sweep import sweep as sweep_payments

    report = sweep()
    expired, _ = sweep_payments()
    click.echo(f"re-sent {report.resent}, recovered {report.orphaned}, expired {expired} codes")


@click.command("health")
@click.option(
    "--role",
    type=click.Choice(["web", "worker"]),
    default="worker",
    show_default=True,
    help="Whose view: a worker cannot use the embedded chain of `flask serve`.",
)
def health(role: str):
    """Check the database, Redis and the chain as this environment's processes see them.

    Prints the JSON of /health; exits 1 when something is not ok (for container health checks
    of worker machines, which serve no HTTP).
    """
    import json

    from portal.health import report

    healthy, body = report(current_app._get_current_object(), role=role)
    click.echo(json.dumps(body, sort_keys=True))
    db.session.remove()
    sys.exit(0 if healthy else 1)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-workers", is_flag=True, help="Serve pages only; run workers elsewhere.")
def serve(host: str, port: int, no_workers: bool):
    """The embedded mode: web, Socket.IO, worker threads and the sweeper in one process."""
    from portal import devserver

    devserver.run(current_app._get_current_object(), host, port, workers=not no_workers)


@click.command("chain-check")
def chain_check():
    """Compare every deployed project's contracts with the database; exit 1 if they differ."""
    from portal.chain import reconcile

    report = reconcile.check()
    for project in report.projects:
        click.echo(f"project {project.project_id}: chain {project.chain}, db {project.database}")
    for difference in report.differences:
        click.echo(f"DIFFERENCE: {difference}", err=True)
    if not report.ok:
        sys.exit(1)
    click.echo(f"chain equals database for {len(report.projects)} project(s)")


@click.command("chain-watch")
def chain_watch():
    """One pass of the chain watch: re-check, find deep rollbacks, repair nonce gaps."""
    from portal.chain import alerts, watch

    click.echo(f"chain watch: {watch.run()}")
    for alert in alerts.open_alerts():
        click.echo(f"OPEN ALERT {alert.id} ({alert.kind}): {alert.message}")


@click.command("name-index")
@click.option(
    "--if-stale",
    is_flag=True,
    help="Only when the index was built with other spelling rules or another key, or never.",
)
def name_index(if_stale: bool):
    """Build the name search index again from the encrypted names (after a key rotation)."""
    from portal.beneficiaries import name_search

    if if_stale and not name_search.is_stale():
        return  # quiet: it runs at every start

    def progress(done: int) -> None:
        if done % 10_000 == 0:
            click.echo(f"  {done:,} people indexed", err=True)

    people = name_search.rebuild(progress=progress)
    db.session.commit()
    if people or not if_stale:
        click.echo(f"Name search index built: {people:,} people.")
