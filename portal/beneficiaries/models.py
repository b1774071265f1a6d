"""Beneficiaries: the programme record, and apart from it the encrypted personal data.

Nothing here holds a name or phone number in clear: ``BeneficiaryPII`` encrypts each field and
keeps only keyed hashes (blind indexes) for exact search and de-duplication.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

ACTIVE, INACTIVE = "active", "inactive"
STATUSES = (ACTIVE, INACTIVE)
STATUS_LABELS = {ACTIVE: _l("Active"), INACTIVE: _l("Inactive")}
GENDERS = {"": "Not given", "female": "Female", "male": "Male", "other": "Other"}
# As the pages name them, in the page's language.
GENDER_LABELS = {
    "": _l("Not given"),
    "female": _l("Female"),
    "male": _l("Male"),
    "other": _l("Other"),
}


class Beneficiary(db.Model):
    __tablename__ = "beneficiaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A public reference that is not personal data, for lists, support calls and audit.
    ref: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE)
    gender: Mapped[str] = mapped_column(String(10), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    consent_at: Mapped[datetime | None]
    retention_until: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    pii: Mapped[BeneficiaryPII] = relationship(
        back_populates="beneficiary", cascade="all, delete-orphan", uselist=False
    )


# The list sorted by status (then newest first), and filtered by status: ix_beneficiaries_status_id.
Index("ix_beneficiaries_status_id", Beneficiary.status, Beneficiary.id.desc())


class BeneficiaryPII(db.Model):
    __tablename__ = "beneficiary_pii"

    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(Encrypted)
    phone: Mapped[str] = mapped_column(Encrypted)
    national_id: Mapped[str | None] = mapped_column(Encrypted)
    date_of_birth: Mapped[str | None] = mapped_column(Encrypted)
    location: Mapped[str | None] = mapped_column(Encrypted)
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    national_id_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    beneficiary: Mapped[Beneficiary] = relationship(back_populates="pii")


class ProjectBeneficiary(db.Model):
    __tablename__ = "project_beneficiaries"
    __table_args__ = (
        UniqueConstraint("project_id", "beneficiary_id", name="uq_project_beneficiary"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class BeneficiaryGroup(db.Model):
    __tablename__ = "beneficiary_groups"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_group_project_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    purpose: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    project = relationship("Project")


class GroupMember(db.Model):
    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "beneficiary_id", name="uq_group_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("beneficiary_groups.id", ondelete="CASCADE"))
    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), index=True
    )


class TermList(TypeDecorator):
    """A person's name-search hashes: ``bigint[]`` on PostgreSQL (searched through a GIN index,
    whose compressed lists of people per hash keep it several times smaller than a row per
    hash); elsewhere (the unit tests' SQLite) the numbers as text between spaces."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(BigInteger))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name == "postgresql":
            return value
        return " " + " ".join(str(v) for v in value) + " "

    def process_result_value(self, value, dialect):
        if value is None or dialect.name == "postgresql":
            return value
        return [int(v) for v in value.split()]


class BeneficiaryNameIndex(db.Model):
    """The keyed hashes of the words (and word prefixes) of one person's name and location:
    the blind index that name search looks up (see ``portal.beneficiaries.name_search``)."""

    __tablename__ = "beneficiary_name_index"

    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), primary_key=True
    )
    terms: Mapped[list[int]] = mapped_column(TermList)


Index(
    "ix_beneficiary_name_index_terms",
    BeneficiaryNameIndex.terms,
    postgresql_using="gin",
)


class NameIndexState(db.Model):
    """Which spelling rules and key the name index was last built with (one row)."""

    __tablename__ = "name_index_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime] = mapped_column(default=utcnow)
    people: Mapped[int] = mapped_column(default=0)
