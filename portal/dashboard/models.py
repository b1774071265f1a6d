"""Running totals the dashboard reads instead of aggregating every redemption.

Database triggers keep them (``triggers``), so they stay right whatever code changes a
redemption or an entitlement: a service, a job, a chain rollback moving a settled payment back
to pending, raw SQL. ``recount`` rebuilds them from the rows and checks them.

Rows are spread so that vendors charging at once rarely wait for one another's row lock: totals
by vendor; chart minutes split into ``MINUTE_SHARDS`` rows by vendor and people figures into
``SHARDS`` rows by person. A reader sums at most a few hundred small rows, however many
redemptions there are.

No foreign keys: a trigger's write must not lock the project, vendor or person row, and these
rows are derived (``recount.repair`` rebuilds them).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table

from portal.extensions import db
from portal.redemptions.models import Redemption

SHARDS = 16
# Few: the chart reads every row of its 180 minutes on each snapshot.
MINUTE_SHARDS = 4


def _sum(name: str) -> Column:
    return Column(name, BigInteger, nullable=False, server_default="0")


# Every redemption counted once under its vendor and its current status.
vendor_totals = Table(
    "dashboard_vendor_totals",
    db.metadata,
    Column("project_id", Integer, primary_key=True),
    Column("vendor_id", Integer, primary_key=True),
    Column("status", String(16), primary_key=True),
    _sum("count"),
    _sum("amount"),
    # The latest code accepted ever: a rollback or a delete does not lower it.
    Column("last_at", DateTime),
    # Steps the triggers applied to this row: the staleness check of stored snapshots.
    _sum("changes"),
)

# Settled (chain-confirmed) redemptions by minute of settlement (epoch minutes, UTC).
minute_totals = Table(
    "dashboard_minute_totals",
    db.metadata,
    Column("project_id", Integer, primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("shard", Integer, primary_key=True),
    _sum("count"),
    _sum("amount"),
)

# How many settled redemptions each person has: "people served" moves when it leaves or reaches 0.
people_served = Table(
    "dashboard_people_served",
    db.metadata,
    Column("project_id", Integer, primary_key=True),
    Column("beneficiary_id", Integer, primary_key=True),
    _sum("settled"),
)

# Entitlement sums and people counts per project, split by person.
people_totals = Table(
    "dashboard_people_totals",
    db.metadata,
    Column("project_id", Integer, primary_key=True),
    Column("shard", Integer, primary_key=True),
    _sum("allocated"),
    _sum("redeemed"),
    _sum("revoked"),
    _sum("people"),  # entitlements with something allocated
    _sum("served"),  # people with at least one settled redemption
    _sum("changes"),  # as vendor_totals.changes
)

TABLES = (vendor_totals, minute_totals, people_served, people_totals)

# The feed's "latest redemptions of this project": read backwards, it stops after a screenful.
feed_index = Index(
    "ix_redemptions_project_confirmed",
    Redemption.__table__.c.project_id,
    Redemption.__table__.c.confirmed_at,
)
