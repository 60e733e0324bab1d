"""An institution's profile. Who may do what: members read their institution's profile, managers edit it,
organisers read every profile; anyone else gets "not found", so other institutions' existence never shows."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import institutions, memberships, users
from accounts.service import InvalidField
from accounts.validators import ValidationFailure, normalise_phone, validate_vat_number

EDITABLE = ("name", "city", "postal_address", "contact_name", "phone", "billing_address", "vat_number")


class NotFound(Exception):
    code = "not_found"


class Forbidden(Exception):
    code = "forbidden"


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    is_organiser: bool
    roles: dict[uuid.UUID, str]  # institution -> manager | member

    def may_read(self, account_id: uuid.UUID) -> bool:
        return self.is_organiser or account_id in self.roles

    def may_manage(self, account_id: uuid.UUID) -> bool:
        return self.roles.get(account_id) == "manager"


async def actor(session: AsyncSession, user_id: uuid.UUID) -> Actor:
    is_organiser = await session.scalar(select(users.c.is_organiser).where(users.c.id == user_id))
    if is_organiser is None:
        raise NotFound
    rows = await session.execute(
        select(memberships.c.institution_id, memberships.c.role).where(memberships.c.user_id == user_id)
    )
    return Actor(user_id, is_organiser, {institution: role for institution, role in rows})


async def read_profile(session: AsyncSession, who: Actor, account_id: uuid.UUID) -> dict[str, Any]:
    if not who.may_read(account_id):
        raise NotFound
    row = (await session.execute(select(institutions).where(institutions.c.id == account_id))).first()
    if row is None:
        raise NotFound
    return {"account_id": row.id, "kind": row.kind, "identifier": row.identifier} | {
        name: getattr(row, name) for name in EDITABLE
    }


async def edit_profile(
    session: AsyncSession, who: Actor, account_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    if not who.may_read(account_id):
        raise NotFound
    if not who.may_manage(account_id):
        raise Forbidden
    values = {name: value for name, value in changes.items() if name in EDITABLE}
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
