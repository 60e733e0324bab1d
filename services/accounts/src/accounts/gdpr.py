"""The GDPR rights over an account: export everything accounts holds on it, and close it.

Closing erases personal data: the people who belong to no other institution are deleted (with their
sessions and links); the others only leave. What French law requires on invoices stays on the institution
(name, identifier, addresses, VAT number), and AccountClosed tells other services to anonymise their copies."""

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import Actor, managed_institution, readable_institution
from accounts.credentials import check_current_password
from accounts.errors import Forbidden
from accounts.models import action_tokens, institutions, memberships, sessions, users
from contracts.events.accounts import AccountClosed
from servicekit.outbox import Outbox

EXPORT_FORMAT = 1


async def export_account(session: AsyncSession, who: Actor, account_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """Everything accounts holds on the account, for its managers. Secrets (password hashes, link digests)
    are described, not copied."""
    institution = await readable_institution(session, who, account_id)
    if not who.may_manage(account_id):
        raise Forbidden
    people = (
        await session.execute(
            select(users, memberships.c.role, memberships.c.created_at.label("joined_at"))
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.institution_id == account_id)
            .order_by(memberships.c.created_at, users.c.id)
        )
    ).all()
    links = await _by_user(session, action_tokens, account_id, ("purpose", "created_at", "expires_at", "used_at"))
    logins = await _by_user(session, sessions, account_id, ("source", "created_at", "expires_at", "ended_at"))
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now,
        "account": {column.name: getattr(institution, column.name) for column in institutions.columns},
        "people": [
            {
                "user_id": person.id,
                "name": person.name,
                "email": person.email,
                "pending_email": person.pending_email,
                "language": person.language,
                "role": person.role,
                "joined_at": person.joined_at,
                "created_at": person.created_at,
                "email_verified_at": person.email_verified_at,
                "has_password": person.password_hash is not None,
                "is_organiser": person.is_organiser,
                "emailed_links": links.get(person.id, []),
                "sessions": logins.get(person.id, []),
            }
            for person in people
        ],
    }


async def _by_user(
    session: AsyncSession, table: Table, account_id: uuid.UUID, columns: tuple[str, ...]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The `columns` of `table`'s rows of the account's people, grouped by user, oldest first."""
    rows = await session.execute(
        select(table.c.user_id, *(table.c[name] for name in columns))
        .join(memberships, memberships.c.user_id == table.c.user_id)
        .where(memberships.c.institution_id == account_id)
        .order_by(table.c.created_at)
    )
    grouped: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.user_id].append({name: getattr(row, name) for name in columns})
    return grouped


async def close_account(
    session: AsyncSession, outbox: Outbox, who: Actor, account_id: uuid.UUID, password: str, now: datetime
) -> None:
    """Close the account for good, once its manager has confirmed with their password."""
    await managed_institution(session, who, account_id)
    manager = await check_current_password(session, who.user_id, password)
    people = (
        await session.execute(
            select(users.c.id, users.c.email, users.c.is_organiser, memberships.c.role)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.institution_id == account_id)
        )
    ).all()
    belonging_elsewhere = set(
        await session.scalars(
            select(memberships.c.user_id).where(
                memberships.c.user_id.in_([person.id for person in people]), memberships.c.institution_id != account_id
            )
        )
    )
    erased = [person.id for person in people if person.id not in belonging_elsewhere and not person.is_organiser]
    await session.execute(delete(memberships).where(memberships.c.institution_id == account_id))
    await session.execute(delete(users).where(users.c.id.in_(erased)))  # cascades to links and sessions
    await session.execute(
        update(institutions).where(institutions.c.id == account_id).values(closed_at=now, contact_name=None, phone=None)
    )
    await outbox.add(
        session,
        AccountClosed(
            account_id=account_id,
            closed_at=now,
            notice_emails=sorted(person.email for person in people if person.role == "manager"),
            language=manager.language,
        ),
    )
