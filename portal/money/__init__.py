"""Money amounts: how they are typed, checked and shown, in one place (see ``amounts``)."""
