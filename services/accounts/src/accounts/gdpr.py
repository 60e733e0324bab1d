"""The GDPR rights over an account: export what accounts holds that belongs to it, and close it.

Closing erases personal data: the people who belong to no other institution are deleted (with their
sessions and links); the others only leave, and so do people who had an identity before and never accepted
to join. What French law requires on invoices stays on the institution (name, identifier, addresses, VAT
number), and AccountClosed tells other services to anonymise their copies."""

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import Actor, managed_institution, readable_institution
from accounts.credentials import check_current_password, has_joined
from accounts.errors import Forbidden
from accounts.members import INVITATION, JOIN, MEMBERSHIP_COLUMNS, member_status, shown
from accounts.models import action_tokens, institutions, memberships, users
from contracts.events.accounts import AccountClosed
from servicekit.logs import security_event
from servicekit.outbox import Outbox

SENT_BY_ACCOUNT = (INVITATION, JOIN)
EXPORT_FORMAT = 2  # 2: only what belongs to the account (no sessions; pending people as typed)


async def export_account(session: AsyncSession, who: Actor, account_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """What accounts holds that belongs to the account, for its managers (docs/accounts.md, "GDPR"):
    the institution's record; each of its memberships (role, status, dates) with the person's name, address
    and language once they accepted, and only the name and address the manager typed while pending; and
    the links the account mailed them (invitations, join requests). Nothing from the person's other
    contexts: no sessions, no links they asked for themself, no other institution's links, no identity
    data beyond that. Secrets are never copied."""
    institution = await readable_institution(session, who, account_id)
    if not who.may_manage(account_id):
        raise Forbidden
    people = (
        await session.execute(
            select(users, *MEMBERSHIP_COLUMNS)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.institution_id == account_id)
            .order_by(memberships.c.created_at, users.c.id)
        )
    ).all()
    links: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for link in await session.execute(
        select(action_tokens.c.user_id, *(action_tokens.c[name] for name in _LINK_COLUMNS))
        .where(action_tokens.c.detail == str(account_id), action_tokens.c.purpose.in_(SENT_BY_ACCOUNT))
        .order_by(action_tokens.c.created_at)
    ):
        links[link.user_id].append({name: getattr(link, name) for name in _LINK_COLUMNS})
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now,
        "account": {column.name: getattr(institution, column.name) for column in institutions.columns},
        "people": [_person(person, links.get(person.id, [])) for person in people],
    }


_LINK_COLUMNS = ("purpose", "created_at", "expires_at", "used_at")


def _person(row: Any, links: list[dict[str, Any]]) -> dict[str, Any]:
    name, email = shown(row)
    person = {
        "user_id": row.id,
        "name": name,
        "email": email,
        "role": row.role,
        "status": member_status(row),
        "invited_at": row.joined_at,
        "accepted_at": row.accepted_at,
        "emailed_links": links,
    }
    if row.accepted_at is not None:
        person["language"] = row.language
    return person


async def close_account(
    session: AsyncSession, outbox: Outbox, who: Actor, account_id: uuid.UUID, password: str, now: datetime
) -> None:
    """Close the account for good, once its manager has confirmed with their password."""
    await managed_institution(session, who, account_id)
    manager = await check_current_password(session, who.user_id, password, now, action="account_closure")
    people = (
        await session.execute(
            select(users, memberships.c.role, memberships.c.accepted_at)
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
    # Erased: the account's own people, who belong nowhere else; never someone who had an identity before
    # and has not accepted to join (the account holds nothing of theirs but a request).
    erased = [
        person.id
        for person in people
        if person.id not in belonging_elsewhere
        and not person.is_organiser
        and (person.accepted_at is not None or not has_joined(person))
    ]
    await session.execute(delete(memberships).where(memberships.c.institution_id == account_id))
    await session.execute(delete(users).where(users.c.id.in_(erased)))  # cascades to links and sessions
    await session.execute(
        update(institutions).where(institutions.c.id == account_id).values(closed_at=now, contact_name=None, phone=None)
    )
    security_event("account_closed", outcome="closed", user_id=who.user_id, account_id=account_id, erased=len(erased))
    await outbox.add(
        session,
        AccountClosed(
            account_id=account_id,
            closed_at=now,
            notice_emails=sorted(
                person.email for person in people if person.role == "manager" and person.accepted_at is not None
            ),
            language=manager.language,
        ),
    )
