"""Paying vendors out: their payout methods, payouts and the providers that carry them."""
