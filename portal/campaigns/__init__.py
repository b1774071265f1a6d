"""Campaigns: one text (per language) to many beneficiaries, sent through the comms queue."""
