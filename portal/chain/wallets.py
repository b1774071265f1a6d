"""Beneficiaries' own wallet addresses, where cash-transfer projects send the token.

A wallet address is given by the person; it is pseudonymous on chain but links their payments
together, so only staff who may manage beneficiaries see or change it, and changes are audited.
"""

from __future__ import annotations

from eth_utils import is_address, to_checksum_address
from flask_babel import gettext as _

from portal import events
from portal.chain.models import BeneficiaryWallet
from portal.errors import ValidationFailed
from portal.extensions import db

ZERO = "0x" + "0" * 40


def wallet_of(beneficiary_id: int) -> BeneficiaryWallet | None:
    return db.session.get(BeneficiaryWallet, beneficiary_id)


def set_wallet(person, address: str) -> BeneficiaryWallet | None:
    """Record (or with an empty ``address``, remove) the person's wallet; returns the row."""
    address = (address or "").strip()
    found = wallet_of(person.id)
    if not address:
        if found is not None:
            db.session.delete(found)
            _audit(person, "removed")
        return None
    if not is_address(address) or address.lower() == ZERO:
        raise ValidationFailed(
            {"address": _("Not a wallet address: 0x followed by 40 hex digits.")}
        )
    if address != address.lower() and address != to_checksum_address(address):
        # Mixed case carries a checksum (EIP-55): a typo in it is caught here, not on chain.
        raise ValidationFailed({"address": _("The address's checksum is wrong: check for a typo.")})
    checked = to_checksum_address(address)
    if found is None:
        found = BeneficiaryWallet(beneficiary_id=person.id, address=checked)
        db.session.add(found)
    else:
        found.address = checked
    db.session.flush()
    _audit(person, "set")
    return found


def _audit(person, what: str) -> None:
    # The address itself stays out of the audit log: it would link the person's payments.
    events.beneficiary_changed.send(
        person,
        action=f"beneficiary.wallet_{what}",
        summary=f"Wallet address of beneficiary {person.ref} {what}",
    )
