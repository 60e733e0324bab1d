"""Who may act on an institution's account. Its members read it, its managers manage it, organisers read
every account; anyone else is told "not found", so other institutions' existence never shows."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.errors import AccountClosed, Forbidden, LastOrganiser, NotFound, OrganisersOnly
from accounts.models import institutions, memberships, users
from servicekit.logs import security_event

# A membership counts (for access, roles, home account) once the person accepted it; until then it is only
# the institution's request (members.py).
ACCEPTED = memberships.c.accepted_at.is_not(None)


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
        select(memberships.c.institution_id, memberships.c.role).where(memberships.c.user_id == user_id, ACCEPTED)
    )
    return Actor(user_id, is_organiser, {institution: role for institution, role in rows})


async def readable_institution(session: AsyncSession, who: Actor, account_id: uuid.UUID) -> Any:
    """The institution's row, if `who` may read it."""
    if not who.may_read(account_id):
        raise NotFound
    row = (await session.execute(select(institutions).where(institutions.c.id == account_id))).first()
    if row is None:
        raise NotFound
    return row


async def managed_institution(session: AsyncSession, who: Actor, account_id: uuid.UUID) -> Any:
    """The open institution's row, locked until the transaction ends, if `who` manages it. The lock makes
    changes to one account's people serial (two managers cannot remove each other at the same time)."""
    if not who.may_read(account_id):
        raise NotFound
    if not who.may_manage(account_id):
        raise Forbidden
    row = (await session.execute(select(institutions).where(institutions.c.id == account_id).with_for_update())).first()
    if row is None:
        raise NotFound
    if row.closed_at is not None:
        raise AccountClosed
    return row


async def home_account(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID:
    """The institution a user's own events are keyed by: the oldest membership; a user with none (an
    organiser) is its own key."""
    institution = await session.scalar(
        select(memberships.c.institution_id)
        .where(memberships.c.user_id == user_id, ACCEPTED)
        .order_by(memberships.c.created_at)
        .limit(1)
    )
    return institution or user_id


async def list_organisers(session: AsyncSession, who: Actor) -> list[dict[str, Any]]:
    """The organisers, by name (organisers only: who runs Visiopass is not for the institutions to know)."""
    if not who.is_organiser:
        raise OrganisersOnly
    rows = await session.execute(
        select(users.c.id, users.c.name, users.c.email).where(users.c.is_organiser).order_by(users.c.name, users.c.id)
    )
    return [{"user_id": row.id, "name": row.name, "email": row.email} for row in rows]


async def grant_organiser_by_email(session: AsyncSession, who: Actor, email: str) -> uuid.UUID:
    """Grant the role to the identity using `email` (what an organiser knows of a colleague). The caller's role
    is checked before the address is looked up, so that nobody else learns which addresses have an identity."""
    if not who.is_organiser:
        raise OrganisersOnly
    user_id = await session.scalar(select(users.c.id).where(func.lower(users.c.email) == email.strip().lower()))
    if user_id is None:
        raise NotFound
    await set_organiser(session, who, user_id, True)
    return user_id


async def set_organiser(session: AsyncSession, who: Actor | None, user_id: uuid.UUID, organiser: bool) -> None:
    """Grant or revoke the organiser role; `who` None is the command line of whoever runs the service."""
    if who is not None and not who.is_organiser:
        raise OrganisersOnly
    user = (await session.execute(select(users).where(users.c.id == user_id).with_for_update())).first()
    if user is None:
        raise NotFound
    if not organiser and user.is_organiser:
        await session.execute(select(users.c.id).where(users.c.is_organiser).with_for_update())
        if await session.scalar(select(func.count()).where(users.c.is_organiser)) == 1:
            raise LastOrganiser
    await session.execute(update(users).where(users.c.id == user_id).values(is_organiser=organiser))
    security_event(
        "organiser_role_changed",
        outcome="granted" if organiser else "revoked",
        user_id=who.user_id if who else None,
        by="command_line" if who is None else None,
        target_user_id=user_id,
    )
