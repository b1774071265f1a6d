"""Chain commands for operators: ``flask --app wsgi ledger-verify | chain-migrate | chain-caps``."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask


def init_app(app: Flask) -> None:
    for command in (ledger_verify, chain_migrate, chain_caps):
        app.cli.add_command(command)


@click.command("ledger-verify")
@click.option("--project", "project_id", type=int, default=None, help="Only this project.")
def ledger_verify(project_id: int | None):
    """Compare every entitlement, vendor balance and settlement on chain with the database.

    Lists each mismatch, ends with one JSON line {"checked": N, "mismatches": N}; exits 1 on
    any mismatch.
    """
    from portal.chain import ledger_verify as verify

    result = verify.verify([project_id] if project_id is not None else None)
    for project in result.projects:
        for text in project.mismatches:
            click.echo(f"MISMATCH project {project.project_id}: {text}")
        if project.mismatch_count > len(project.mismatches):
            hidden = project.mismatch_count - len(project.mismatches)
            click.echo(f"MISMATCH project {project.project_id}: … and {hidden} more")
        click.echo(
            f"project {project.project_id}: {project.checked} checked from "
            f"{project.logs} event logs, {project.mismatch_count} mismatch(es)"
            + (
                f"; {project.owed_again} base units burned and owed again to vendors "
                "(payout failed, to be paid again)"
                if project.owed_again
                else ""
            )
        )
    click.echo(json.dumps({"checked": result.checked, "mismatches": result.mismatches}))
    if result.mismatches:
        sys.exit(1)


@click.command("chain-migrate")
@click.option("--project", "project_id", type=int, required=True)
@click.option(
    "--wait-signers",
    type=float,
    default=0.0,
    show_default=True,
    help="Multisig treasury: seconds to watch the chain for the signers' transactions.",
)
def chain_migrate(project_id: int, wait_signers: float):
    """Move a project deployed before settlement (version 1) to the version-2 contracts.

    Safe to run again after an interruption: every step records what it did and checks the
    chain before acting. Ends with one JSON line of where the migration stands.

    With a multisig treasury (CHAIN_TREASURY_ADDRESS, no key) the command prints, one JSON line
    each, the unsigned transactions the signers must send (the mint first, then the import
    batches once the mint is final), and exits 3 if they are not on chain when it stops
    waiting; run it again once they are sent, and it goes on from there.
    """
    from portal.chain import migrate
    from portal.extensions import db

    def show(calls):
        for call in calls:
            click.echo(json.dumps({"unsigned": call}))

    try:
        report = migrate.run(project_id, wait_signers=wait_signers, on_unsigned=show)
        db.session.commit()
    except migrate.MigrationError as exc:
        db.session.rollback()
        click.echo(f"chain-migrate: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps({k: v for k, v in report.items() if k != "unsigned"}))
    if report.get("status") == migrate.WAITING_FOR_SIGNERS:
        sys.exit(3)
    if report.get("status") != "done":
        sys.exit(2)


@click.command("chain-caps")
@click.option("--project", "project_id", type=int, required=True)
@click.option("--action", type=click.Choice(["allocate", "redeem", "settle"]), required=True)
@click.option("--per-tx", required=True, help="In the project's currency, e.g. 500.00")
@click.option("--per-day", required=True, help="In the project's currency")
def chain_caps(project_id: int, action: str, per_tx: str, per_day: str):
    """Change the operator's on-chain caps (signed by the treasury signer)."""
    from portal.chain import caps
    from portal.extensions import db
    from portal.money import amounts

    try:
        sent = caps.set_caps(project_id, action, per_tx, per_day)
        db.session.commit()
    except (caps.CapsError, amounts.AmountError) as exc:
        db.session.rollback()
        click.echo(f"chain-caps: {exc}", err=True)
        sys.exit(1)
    if isinstance(sent, dict):  # a multisig treasury: the signers send it
        click.echo(json.dumps({"unsigned": sent}))
    else:
        click.echo(json.dumps({"tx_id": sent.id, "tx_hash": sent.tx_hash}))
