"""An institution's profile: its members and organisers read it, its managers edit it (see `access`)."""

import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import Actor, managed_institution, readable_institution
from accounts.errors import InvalidField, valid_name
from accounts.members import member_counts
from accounts.models import institutions
from accounts.validators import ValidationFailure, normalise_phone, validate_vat_number

EDITABLE = ("name", "city", "postal_address", "contact_name", "phone", "billing_address", "vat_number")


async def read_profile(session: AsyncSession, who: Actor, account_id: uuid.UUID) -> dict[str, Any]:
    """The institution as its people see it, with its number of people; its managers and organisers also get
    `member_counts` (active, invited, managers: what the members' list shows them), so that "Mon compte" needs
    one call for both."""
    row = await readable_institution(session, who, account_id)
    counts = await member_counts(session, account_id)
    profile = {
        "account_id": row.id,
        "kind": row.kind,
        "identifier": row.identifier,
        "closed_at": row.closed_at,
        "member_count": counts["total"],
    } | {name: getattr(row, name) for name in EDITABLE}
    if who.is_organiser or who.may_manage(account_id):
        profile["member_counts"] = counts
    return profile


async def edit_profile(
    session: AsyncSession, who: Actor, account_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    await managed_institution(session, who, account_id)
    values = {name: value for name, value in changes.items() if name in EDITABLE}
    if "name" in values:  # required: null is a missing name
        values["name"] = valid_name("name", values["name"])
    if values.get("contact_name") is not None:  # optional: null clears it
        values["contact_name"] = valid_name("contact_name", values["contact_name"])
    try:
        if values.get("phone"):
            values["phone"] = normalise_phone(values["phone"])
        if values.get("vat_number"):
            values["vat_number"] = validate_vat_number(values["vat_number"])
    except ValidationFailure as exc:
        raise InvalidField("phone" if exc.code.startswith("phone") else "vat_number", exc) from exc
    if values:
        await session.execute(update(institutions).where(institutions.c.id == account_id).values(**values))
    return await read_profile(session, who, account_id)
