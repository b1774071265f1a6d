"""The vendor's pages on the phone: sign-in by SMS code, balance, charging a beneficiary."""
