"""Who a row refused as already enrolled duplicates, for the rows the import page lists: found
by the blind index the row shares with them, and only among the people the user may see."""

from __future__ import annotations

from sqlalchemy import or_

from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.models import Beneficiary, BeneficiaryPII
from portal.extensions import db

_COLUMNS = {"phone": BeneficiaryPII.phone_index, "national_id": BeneficiaryPII.national_id_index}


def people_of(user, entries: list[dict]) -> dict[str, Beneficiary]:
    """Each entry's ``match`` (a blind index) -> the visible person who has it."""
    wanted = {
        field: {e["match"] for e in entries if e.get("match") and e.get("field") == field}
        for field in _COLUMNS
    }
    conditions = [_COLUMNS[field].in_(values) for field, values in wanted.items() if values]
    if not conditions:
        return {}
    query = (
        beneficiaries.visible(user)
        .join(BeneficiaryPII, BeneficiaryPII.beneficiary_id == Beneficiary.id)
        .where(or_(*conditions))
        .add_columns(BeneficiaryPII.phone_index, BeneficiaryPII.national_id_index)
    )
    found: dict[str, Beneficiary] = {}
    for person, phone_index, nid_index in db.session.execute(query):
        for value in (phone_index, nid_index):
            if value in wanted["phone"] or value in wanted["national_id"]:
                found[value] = person
    return found
