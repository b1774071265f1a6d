"""Signers, transactions (with every signed version broadcast) and each project's contracts.

Amounts are integers in the token's base units. Projects choose at most six decimals, so a
64-bit integer holds any realistic aid budget and sums stay exact on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

# ChainTx.status
PENDING = "pending"  # nonce allocated and signed, not yet accepted by the node
SENT = "sent"  # accepted by the node, waiting for a receipt
# Included in a block (effects of a success applied at once, so a vendor sees it quickly);
# ``final_at`` is set once CHAIN_CONFIRMATIONS blocks hold it. Until then it is re-checked, and a
# receipt that vanishes or moves to another block puts it back to PENDING, effects undone.
CONFIRMED = "confirmed"
REVERTED = "reverted"  # included but failed; its failure takes effect only once final
FAILED = "failed"  # could not be broadcast and will not be tried again
TX_STATUSES = (PENDING, SENT, CONFIRMED, REVERTED, FAILED)
OPEN_STATUSES = (PENDING, SENT)
INCLUDED_STATUSES = (CONFIRMED, REVERTED)
NOOP_PURPOSE = "nonce.fill"  # a 0-value self transfer that fills a nonce nothing else will use

# ProjectChain.status
NOT_DEPLOYED, DEPLOYING, DEPLOYED = "not_deployed", "deploying", "deployed"


class ChainSigner(db.Model):
    """An account the portal signs with. The key is encrypted at rest and never logged."""

    __tablename__ = "chain_signers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    private_key: Mapped[str] = mapped_column(Encrypted)
    # The next nonce to hand out; allocated under a row lock so two workers never share one.
    next_nonce: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChainTx(db.Model):
    """One intended transaction: a nonce of a signer, whatever fee it finally went out with."""

    __tablename__ = "chain_txs"
    # One live transaction per nonce. A failed one (never mined, or given up) leaves its nonce
    # free for a no-op filler when a rollback makes the chain ask for that nonce again.
    __table_args__ = (
        Index(
            "uq_chain_tx_signer_live_nonce",
            "signer_id",
            "nonce",
            unique=True,
            postgresql_where=text("status <> 'failed'"),
            sqlite_where=text("status <> 'failed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("chain_signers.id"))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    # None: refused before signing (the call would revert), so no nonce was spent.
    nonce: Mapped[int | None] = mapped_column(Integer)
    # What it does, for people ("allocate", "redeem", "deploy.token") and for code (ref).
    purpose: Mapped[str] = mapped_column(String(40), index=True)
    ref_type: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[int | None] = mapped_column(Integer)
    to_address: Mapped[str | None] = mapped_column(String(42))
    data: Mapped[str] = mapped_column(Text, default="0x")
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), index=True)  # the live version
    contract_address: Mapped[str | None] = mapped_column(String(42))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    # The block that held the receipt: a later answer with another hash means a reorg.
    block_hash: Mapped[str | None] = mapped_column(String(66))
    final_at: Mapped[datetime | None] = mapped_column(index=True)
    # Set when a fee bump would pass CHAIN_MAX_FEE_PER_GAS_GWEI: the fee stays, staff are told.
    fee_capped_at: Mapped[datetime | None]
    rollbacks: Mapped[int] = mapped_column(Integer, default=0)  # receipts lost to reorgs
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    effective_gas_price: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    broadcasts: Mapped[list[ChainTxBroadcast]] = relationship(
        back_populates="tx", order_by="ChainTxBroadcast.id", cascade="all, delete-orphan"
    )
    signer: Mapped[ChainSigner] = relationship()


class ChainTxBroadcast(db.Model):
    """A signed version of a ChainTx, stored before it is sent; a fee bump adds another."""

    __tablename__ = "chain_tx_broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    tx_id: Mapped[int] = mapped_column(ForeignKey("chain_txs.id", ondelete="CASCADE"), index=True)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw: Mapped[str] = mapped_column(Text)
    max_fee_per_gas: Mapped[int] = mapped_column(BigInteger)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    send_error: Mapped[str | None] = mapped_column(Text)

    tx: Mapped[ChainTx] = relationship(back_populates="broadcasts")


class ProjectChain(db.Model):
    """A project's token and its entitlements (or cash-transfer) contract on the chain."""

    __tablename__ = "project_chains"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(11))
    decimals: Mapped[int] = mapped_column(Integer, default=2)
    # "Entitlements" (spent at vendors) or "CashTransfer" (sent to beneficiaries' wallets).
    contract_kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(15), default=NOT_DEPLOYED)
    token_address: Mapped[str | None] = mapped_column(String(42))
    contract_address: Mapped[str | None] = mapped_column(String(42))
    token_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    contract_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    # Base units minted into the project contract, as confirmed on chain.
    funded: Mapped[int] = mapped_column(BigInteger, default=0)
    # 1: ProjectToken + Entitlements (redeemed tokens go to keyless vendor addresses);
    # 2: ProjectTokenV2 + EntitlementsV2 (vendor balances kept in the contract, settled by
    # burning, the treasury signer as admin). Projects deployed before stay on 1 until migrated.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The address holding DEFAULT_ADMIN and MINTER (version 2): the treasury signer's.
    admin_address: Mapped[str | None] = mapped_column(String(42))
    # Set while a guardian has paused the project's value moves (portal/chain/guardian.py);
    # who did it is in the audit log.
    paused_at: Mapped[datetime | None]
    pause_reason: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Funding(db.Model):
    """A mint of project tokens into the project contract."""

    __tablename__ = "chain_fundings"
    __table_args__ = (UniqueConstraint("mint_tx_hash", name="uq_chain_fundings_mint_tx_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    # Multisig treasury: the mint is signed elsewhere; its hash is recorded once seen on chain.
    mint_tx_hash: Mapped[str | None] = mapped_column(String(66))
    note: Mapped[str] = mapped_column(String(255), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BeneficiaryWallet(db.Model):
    """A beneficiary's own wallet address, for cash-transfer projects (given by the person)."""

    __tablename__ = "beneficiary_wallets"

    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(42))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChainEffect(db.Model):
    """A money effect of the chain applied to the database, at most once per (kind, ref_id).

    Applying inserts the row (``INSERT ... ON CONFLICT DO NOTHING``): of two jobs applying the
    same effect at once, the second waits for the first's commit and then skips. Undoing (the
    transaction was rolled back by the chain) deletes it: only the deleter reverses the effect.
    """

    __tablename__ = "chain_effects"
    __table_args__ = (UniqueConstraint("kind", "ref_id", name="uq_chain_effect_kind_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref_id: Mapped[int] = mapped_column(Integer)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id", ondelete="SET NULL"))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChainAlert(db.Model):
    """Something about the chain staff must know: a rollback deeper than finality, a nonce gap,
    a fee ceiling reached, a chain that disagrees with the database. Open until resolved."""

    __tablename__ = "chain_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)
    message: Mapped[str] = mapped_column(Text)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    resolved_at: Mapped[datetime | None]


# ChainVendor.status and ChainSettlement.status
REGISTERING, REGISTERED = "registering", "registered"
SETTLING, SETTLED = "settling", "settled"


class ChainVendor(db.Model):
    """A vendor on a version-2 project contract's allow-list (``registerVendor``)."""

    __tablename__ = "chain_vendors"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(42))
    status: Mapped[str] = mapped_column(String(12), default=REGISTERING)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    # Registration tries refused in a row (reverted, failed, or refused before signing); at
    # vendors.MAX_TRIES the registration is given up until a person retries.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChainSettlement(db.Model):
    """One ``settle`` call: burns ``amount`` of a vendor's balance once per ``key``.

    ``key`` is the settlement flow's own reference (its record id, as a string); the bytes32
    id sent to the contract is derived from it (``addresses.settlement_key``).
    """

    __tablename__ = "chain_settlements"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(80), unique=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default=SETTLING)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChainMigration(db.Model):
    """A version-1 project moving to the version-2 contracts (``flask chain-migrate``).

    Every step is a transaction found again by its ref (``chain_migration``, project id) and
    purpose, or a fact read from the chain, so an interrupted migration resumes where it stood.
    """

    __tablename__ = "chain_migrations"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(12), default="started")
    old_token_address: Mapped[str] = mapped_column(String(42))
    old_contract_address: Mapped[str] = mapped_column(String(42))
    old_contract_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    new_token_address: Mapped[str | None] = mapped_column(String(42))
    new_contract_address: Mapped[str | None] = mapped_column(String(42))
    # What was carried over, in base units, once the old contracts are frozen.
    entitlements_total: Mapped[int | None] = mapped_column(BigInteger)
    vendors_total: Mapped[int | None] = mapped_column(BigInteger)
    unallocated: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
