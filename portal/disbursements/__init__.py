"""Allocating a project's tokens to beneficiaries, in batches, one chain transaction each."""
