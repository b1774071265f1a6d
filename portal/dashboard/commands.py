"""``flask --app wsgi dashboard check|repair``: the running totals against a recount."""

from __future__ import annotations

import sys

import click
from flask import Blueprint

from portal.dashboard import recount
from portal.extensions import db


def register(bp: Blueprint) -> None:
    @bp.cli.command("check")
    @click.option("--project", "project_id", type=int, default=None, help="One project only.")
    def check(project_id: int | None):
        """Compare the dashboard's running totals with a full recount (reads every row)."""
        with db.engine.connect() as conn:
            problems = recount.check(conn, project_id)
        for line in problems:
            click.echo(line)
        click.echo(f"{len(problems)} difference(s)")
        sys.exit(1 if problems else 0)

    @bp.cli.command("repair")
    @click.option("--project", "project_id", type=int, default=None, help="One project only.")
    def repair(project_id: int | None):
        """Rebuild the running totals from the rows. Run it while nothing charges."""
        with db.engine.begin() as conn:
            recount.repair(conn, project_id)
        click.echo("rebuilt")
