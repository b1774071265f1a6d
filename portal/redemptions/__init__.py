"""Redemptions: a beneficiary spends entitlement at a vendor, confirmed by a one-time SMS code."""
