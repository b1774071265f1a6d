"""Imports every model module so that SQLAlchemy (and Alembic) see all tables."""

from __future__ import annotations


def import_all() -> None:
    from portal.accounts import links as _account_links  # noqa: F401
    from portal.accounts import models as _accounts  # noqa: F401
    from portal.approvals import models as _approvals  # noqa: F401
    from portal.audit import models as _audit  # noqa: F401
    from portal.beneficiaries import models as _beneficiaries  # noqa: F401
    from portal.campaigns import models as _campaigns  # noqa: F401
    from portal.cards import models as _cards  # noqa: F401
    from portal.chain import models as _chain  # noqa: F401
    from portal.comms import inbound_models as _inbound  # noqa: F401
    from portal.comms import models as _comms  # noqa: F401
    from portal.dashboard import models as _dashboard  # noqa: F401
    from portal.dashboard import triggers as _dashboard_triggers  # noqa: F401
    from portal.disbursements import models as _disbursements  # noqa: F401
    from portal.files import models as _files  # noqa: F401
    from portal.grievances import models as _grievances  # noqa: F401
    from portal.imports import models as _imports  # noqa: F401
    from portal.jobs import models as _jobs  # noqa: F401
    from portal.messages import models as _messages  # noqa: F401
    from portal.payouts import models as _payouts  # noqa: F401
    from portal.projects import models as _projects  # noqa: F401
    from portal.quotas import models as _quotas  # noqa: F401
    from portal.reconciliation import models as _reconciliation  # noqa: F401
    from portal.redemptions import models as _redemptions  # noqa: F401
    from portal.settings import models as _settings  # noqa: F401
    from portal.settlements import models as _settlements  # noqa: F401
    from portal.twofactor import models as _twofactor  # noqa: F401
    from portal.vendor_portal import models as _vendor_portal  # noqa: F401
    from portal.vendors import models as _vendors  # noqa: F401
