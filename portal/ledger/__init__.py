"""The one owner of money rows: entitlements (allocated, redeemed, revoked) and a project's funded
total. Every feature changes them through ``portal.ledger.entitlements`` and
``portal.ledger.funds``; a test (tests/unit/test_ledger_owner.py) fails if any other module
writes those columns. Reads for pages (a person's money, the redemptions list, vendor statements)
live beside them.
"""
