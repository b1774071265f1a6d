"""The payout provider interface, and the two kinds behind it.

A provider ``send``s a payout (or says how it will go out), tells its ``status`` as far as it
knows it, and reads a ``callback`` into the reference it names and the status it claims. What a
callback claims is never acted on: the status query decides (``portal.payouts.sending``).
"""

from __future__ import annotations

import json
from typing import Protocol

from portal.payouts.models import BANK, MOMO, Payout


class Provider(Protocol):
    kind: str

    def send(self, payout: Payout) -> str: ...

    def status(self, payout: Payout) -> str: ...

    def parse_callback(self, reference: str, body: bytes) -> tuple[str, str]: ...


class BankFileProvider:
    """Bank payouts leave in a batch file that finance takes to the bank; only the bank's
    statement says they arrived."""

    kind = BANK

    def send(self, payout: Payout) -> str:
        return "waits for the next batch file" if payout.batch_id is None else "in a batch file"

    def status(self, payout: Payout) -> str:
        return payout.status

    def parse_callback(self, reference: str, body: bytes) -> tuple[str, str]:
        raise ValueError("Bank transfers have no callback.")


class MobileMoneyProvider:
    kind = MOMO

    def send(self, payout: Payout) -> str:
        from portal.payouts import sending

        return sending.send(payout.id)

    def status(self, payout: Payout) -> str:
        from portal.payouts.momo import MomoClient

        found = MomoClient().status(payout.reference)
        return "UNKNOWN" if found is None else found.status

    def parse_callback(self, reference: str, body: bytes) -> tuple[str, str]:
        """The reference (from the callback URL) and the status the body claims, if any."""
        claimed = ""
        try:
            data = json.loads(body or b"{}")
            if isinstance(data, dict) and isinstance(data.get("status"), str):
                claimed = data["status"].upper()[:20]
        except ValueError:
            pass
        return reference, claimed


PROVIDERS: dict[str, Provider] = {BANK: BankFileProvider(), MOMO: MobileMoneyProvider()}


def for_kind(kind: str) -> Provider:
    return PROVIDERS[kind]
