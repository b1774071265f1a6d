"""Limits on what can be asked of a person or a vendor, counted in the database."""
