"""Grievances: complaints and problems reported by beneficiaries (SMS), staff and vendors."""
