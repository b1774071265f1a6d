"""Paying vendors out what they redeemed: a settlement per vendor and project, approved by a
second person, burned on chain, paid by bank file or mobile money, then matched on a statement."""
