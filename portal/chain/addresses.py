"""Pseudonymous on-chain addresses for beneficiaries.

An address is the last 20 bytes of an HMAC of the beneficiary's row id under a key derived from
PII_KEY. Nobody holds a private key for it (value leaves it only through the contract's
operator), it carries no personal data and it is not a hash of a phone number or an ID number;
without the key, addresses cannot be linked back to rows.
"""

from __future__ import annotations

import hashlib
import hmac

from eth_utils import to_checksum_address

from portal import crypto


def pseudonym(beneficiary_id: int) -> str:
    digest = hmac.new(
        crypto.derived_key("chain"), f"beneficiary:{beneficiary_id}".encode(), hashlib.sha256
    ).digest()
    return to_checksum_address(digest[-20:])


def batch_key(disbursement_id: int, number: int) -> str:
    """The bytes32 id of a batch, unique per portal deployment (keyed, so not guessable)."""
    digest = hmac.new(
        crypto.derived_key("chain"), f"batch:{disbursement_id}:{number}".encode(), hashlib.sha256
    ).hexdigest()
    return "0x" + digest


def redemption_key(redemption_id: int) -> str:
    digest = hmac.new(
        crypto.derived_key("chain"), f"redemption:{redemption_id}".encode(), hashlib.sha256
    ).hexdigest()
    return "0x" + digest


def vendor_address(vendor_id: int) -> str:
    """Where a vendor's redeemed tokens collect until the vendor cashes out (same scheme)."""
    digest = hmac.new(
        crypto.derived_key("chain"), f"vendor:{vendor_id}".encode(), hashlib.sha256
    ).digest()
    return to_checksum_address(digest[-20:])


def settlement_key(key: str) -> str:
    """The bytes32 id of a settlement, from the settlement flow's own reference (keyed)."""
    digest = hmac.new(
        crypto.derived_key("chain"), f"settlement:{key}".encode(), hashlib.sha256
    ).hexdigest()
    return "0x" + digest
