"""Reconciliation, statement side: provider statements matched against payouts."""
