"""An institution's staff members. Its managers add them (one, several, or a CSV file), correct a wrong
address, send them a reset link, change their role and remove them; organisers may list them too.

A new person gets an identity without a password and an invitation (MemberInvited, a single-use link valid
7 days) to set one; until then the member is "invited". Someone who already has an identity joins with it
(MemberAdded); if they never set a password, they are invited again."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import Actor, managed_institution, readable_institution
from accounts.credentials import JOINED, has_joined, set_password
from accounts.csv_import import MemberRow
from accounts.errors import EmailTaken, Forbidden, InvalidField, InvalidToken, LastManager, MemberActive, NotFound
from accounts.errors import MemberInvited as MemberNotActive
from accounts.models import action_tokens, memberships, users
from accounts.recovery import mail_reset_link
from accounts.service import consume_token, issue_token, new_token, void_tokens
from accounts.validators import ValidationFailure, normalise_email
from contracts.events.accounts import MemberAdded, MemberInvited, MemberRemoved
from servicekit.outbox import Outbox

INVITATION = "accept_invitation"  # purpose of action tokens
INVITATION_TTL = timedelta(days=7)
Role = Literal["manager", "member"]


@dataclass
class Added:
    invited: list[uuid.UUID] = field(default_factory=list)  # new identities, and known ones without a password
    joined: list[uuid.UUID] = field(default_factory=list)  # known identities, told by MemberAdded
    already_members: list[MemberRow] = field(default_factory=list)


async def add_members(
    session: AsyncSession, outbox: Outbox, who: Actor, account_id: uuid.UUID, people: Sequence[MemberRow], now: datetime
) -> Added:
    """Add checked people (see `csv_import.check_member`) to the account, in bulk: a few statements whatever
    their number, so that a 5,000-row file imports in one short transaction."""
    institution = await managed_institution(session, who, account_id)
    language = await session.scalar(select(users.c.language).where(users.c.id == who.user_id)) or "fr"
    known = {
        row.email.casefold(): row
        for row in await session.execute(
            select(users).where(func.lower(users.c.email).in_({person.email.casefold() for person in people}))
        )
    }
    already = set(
        await session.scalars(
            select(memberships.c.user_id).where(
                memberships.c.institution_id == account_id,
                memberships.c.user_id.in_([row.id for row in known.values()]),
            )
        )
    )
    added = Added()
    new_users: list[dict[str, Any]] = []
    events: list[MemberInvited | MemberAdded] = []
    tokens: list[dict[str, Any]] = []
    for person in people:
        user = known.get(person.email.casefold())
        if user is not None and user.id in already:
            added.already_members.append(person)
            continue
        if user is not None and has_joined(user):
            added.joined.append(user.id)
            events.append(
                MemberAdded(
                    account_id=account_id,
                    member_id=user.id,
                    institution_name=institution.name,
                    name=user.name,
                    email=user.email,
                    language=user.language,
                )
            )
            continue
        if user is None:
            user_id = uuid.uuid4()
            new_users.append({"id": user_id, "email": person.email, "name": person.name, "language": language})
            name, email, user_language = person.name, person.email, language
        else:
            user_id, name, email, user_language = user.id, user.name, user.email, user.language
        added.invited.append(user_id)
        token, digest = new_token()
        tokens.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "purpose": INVITATION,
                "token_hash": digest,
                "expires_at": now + INVITATION_TTL,
            }
        )
        events.append(_invitation(account_id, institution.name, user_id, name, email, user_language, token, now))
    if new_users:
        await session.execute(insert(users), new_users)
    joining = [*added.invited, *added.joined]
    if joining:
        await session.execute(
            insert(memberships), [{"institution_id": account_id, "user_id": id, "role": "member"} for id in joining]
        )
    if tokens:
        await session.execute(insert(action_tokens), tokens)
    await outbox.add_all(session, events)
    return added


def _invitation(
    account_id: uuid.UUID,
    institution_name: str,
    user_id: uuid.UUID,
    name: str,
    email: str,
    language: str,
    token: str,
    now: datetime,
) -> MemberInvited:
    return MemberInvited(
        account_id=account_id,
        member_id=user_id,
        institution_name=institution_name,
        name=name,
        email=email,
        language=language,
        invitation_token=token,
        expires_at=now + INVITATION_TTL,
    )


def _status(user: Any) -> str:
    return "active" if has_joined(user) else "invited"


async def list_members(
    session: AsyncSession, who: Actor, account_id: uuid.UUID, *, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """A page of the account's people by name, and their counts. Managers and organisers only."""
    await readable_institution(session, who, account_id)
    if not (who.is_organiser or who.may_manage(account_id)):
        raise Forbidden
    of_account = memberships.c.institution_id == account_id
    people = await session.execute(
        select(users, memberships.c.role, memberships.c.created_at.label("joined_at"))
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(of_account)
        .order_by(func.lower(users.c.name), users.c.id)
        .limit(limit)
        .offset(offset)
    )
    counts = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(JOINED),
                func.count().filter(memberships.c.role == "manager"),
            )
            .select_from(memberships.join(users, memberships.c.user_id == users.c.id))
            .where(of_account)
        )
    ).one()
    return {
        "counts": {"total": counts[0], "active": counts[1], "invited": counts[0] - counts[1], "managers": counts[2]},
        "members": [_member(row) for row in people],
        "limit": limit,
        "offset": offset,
    }


def _member(row: Any) -> dict[str, Any]:
    return {
        "member_id": row.id,
        "name": row.name,
        "email": row.email,
        "role": row.role,
        "status": _status(row),
        "joined_at": row.joined_at,
    }


async def _member_row(session: AsyncSession, account_id: uuid.UUID, member_id: uuid.UUID) -> Any:
    row = (
        await session.execute(
            select(users, memberships.c.role, memberships.c.created_at.label("joined_at"))
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.institution_id == account_id, users.c.id == member_id)
            .with_for_update(of=users)
        )
    ).first()
    if row is None:
        raise NotFound
    return row


async def read_member(session: AsyncSession, who: Actor, account_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    await managed_institution(session, who, account_id)
    return _member(await _member_row(session, account_id, member_id))


async def correct_email(
    session: AsyncSession,
    outbox: Outbox,
    who: Actor,
    account_id: uuid.UUID,
    member_id: uuid.UUID,
    new_email: str,
    now: datetime,
) -> dict[str, Any]:
    """Fix the address of a member who has not accepted the invitation yet, and invite them again there."""
    institution = await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if has_joined(member):
        raise MemberActive
    elsewhere = await session.scalar(
        select(func.count()).where(memberships.c.user_id == member_id, memberships.c.institution_id != account_id)
    )
    if elsewhere:  # another institution invited the same person at that address: theirs to keep
        raise MemberActive
    try:
        email = normalise_email(new_email)
    except ValidationFailure as exc:
        raise InvalidField("email", exc) from exc
    taken_by = await session.scalar(select(users.c.id).where(func.lower(users.c.email) == email.casefold()))
    if taken_by is not None and taken_by != member_id:
        raise EmailTaken
    await session.execute(update(users).where(users.c.id == member_id).values(email=email))
    await _invite_again(session, outbox, account_id, institution.name, member, email, now)
    return _member(await _member_row(session, account_id, member_id))


async def resend_invitation(
    session: AsyncSession, outbox: Outbox, who: Actor, account_id: uuid.UUID, member_id: uuid.UUID, now: datetime
) -> None:
    institution = await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if has_joined(member):
        raise MemberActive
    await _invite_again(session, outbox, account_id, institution.name, member, member.email, now)


async def _invite_again(
    session: AsyncSession,
    outbox: Outbox,
    account_id: uuid.UUID,
    institution_name: str,
    member: Any,
    email: str,
    now: datetime,
) -> None:
    await void_tokens(session, member.id, INVITATION, now)
    token = await issue_token(session, member.id, INVITATION, now + INVITATION_TTL)
    await outbox.add(
        session,
        _invitation(account_id, institution_name, member.id, member.name, email, member.language, token, now),
    )


async def send_password_reset(
    session: AsyncSession, outbox: Outbox, who: Actor, account_id: uuid.UUID, member_id: uuid.UUID, now: datetime
) -> None:
    """Mail the member a reset link, as if they had asked for it."""
    await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if not has_joined(member):
        raise MemberNotActive
    await mail_reset_link(session, outbox, member, now)


async def _managers(session: AsyncSession, account_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(memberships.c.institution_id == account_id, memberships.c.role == "manager")
        )
        or 0
    )


async def set_role(
    session: AsyncSession, who: Actor, account_id: uuid.UUID, member_id: uuid.UUID, role: Role
) -> dict[str, Any]:
    await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if member.role == "manager" and role != "manager" and await _managers(session, account_id) == 1:
        raise LastManager
    await session.execute(
        update(memberships)
        .where(memberships.c.institution_id == account_id, memberships.c.user_id == member_id)
        .values(role=role)
    )
    return _member(await _member_row(session, account_id, member_id))


async def remove_member(
    session: AsyncSession, outbox: Outbox, who: Actor, account_id: uuid.UUID, member_id: uuid.UUID, now: datetime
) -> None:
    """The person leaves the account at once (identities are re-read on every request). An identity left
    with no institution and no password is deleted; one with a password stays, for its other uses."""
    await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if member.role == "manager" and await _managers(session, account_id) == 1:
        raise LastManager
    await session.execute(
        delete(memberships).where(memberships.c.institution_id == account_id, memberships.c.user_id == member_id)
    )
    left_alone = not member.is_organiser and not await session.scalar(
        select(func.count()).where(memberships.c.user_id == member_id)
    )
    if left_alone and not has_joined(member):
        await session.execute(delete(users).where(users.c.id == member_id))
    await outbox.add(session, MemberRemoved(account_id=account_id, member_id=member_id, removed_at=now))


async def accept_invitation(session: AsyncSession, token: str, password: str, now: datetime) -> uuid.UUID:
    """Set the invited person's password with the invitation link; the link proves the address too."""
    user_id = await consume_token(session, token, INVITATION, now)
    user = (await session.execute(select(users).where(users.c.id == user_id).with_for_update())).one()
    if user.password_hash is not None:  # another invitation was accepted first; its password stands
        raise InvalidToken
    verified_at = func.coalesce(users.c.email_verified_at, now)
    await set_password(session, user, password, email_verified_at=verified_at)
    await void_tokens(session, user_id, INVITATION, now)
    return user_id
