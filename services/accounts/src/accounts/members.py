"""An institution's staff members. Its managers add them (one, several, or a CSV file), correct a wrong
address, send them a reset link, change their role and remove them; organisers may list them too.

Nobody joins an institution without accepting. A new person gets an identity without a password and an
invitation (MemberInvited, a single-use link valid 7 days) to set one; someone who already has an identity
gets a join request (MemberAdded, a link valid 7 days; or from their account: `pending_invitations`); one
who never set a password is invited again. Until they accept, the membership is pending ("invited") and the
institution sees only the name and address its manager typed, never the identity's own; its answers are the
same whether or not the address had an identity.

Against mail abuse (docs/accounts.md, "Limits"): only a manager whose own address is verified invites; an
account sends at most `Limits.per_day` invitation and join-request mails a day (a request that would go over is
refused whole); a member gets at most `Limits.per_member` invitations sent again, corrected-address
invitations and manager-triggered reset links an hour. All count in the one throttle (`credentials.spend`)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import api_tokens
from accounts.access import Actor, managed_institution, readable_institution
from accounts.credentials import JOINED, ThrottlePolicy, has_joined, set_password, spend
from accounts.csv_import import MemberRow
from accounts.errors import (
    EmailNotVerified,
    EmailTaken,
    Forbidden,
    InvalidField,
    InvalidToken,
    InvitationLimit,
    LastManager,
    MemberActive,
    MemberMailLimit,
    NotFound,
)
from accounts.errors import MemberInvited as MemberNotActive
from accounts.models import action_tokens, institutions, memberships, users
from accounts.recovery import mail_reset_link
from accounts.sealing import sealed
from accounts.service import consume_token_with_detail, issue_token, new_token, void_tokens
from accounts.validators import ValidationFailure, normalise_email
from contracts.events.accounts import MemberAdded, MemberInvited, MemberRemoved
from servicekit.logs import security_event
from servicekit.outbox import Outbox

INVITATION = "accept_invitation"  # purpose of action tokens
INVITATION_TTL = timedelta(days=7)
JOIN = "join_institution"  # a known identity's acceptance of a join request; detail: the account id
JOIN_TTL = timedelta(days=7)
Role = Literal["manager", "member"]


@dataclass(frozen=True)
class Limits:
    """How many mails managers may have sent (settings `invitations_per_day`, `mails_per_member_per_hour`)."""

    per_day: int = 200  # invitation and join-request mails per account and rolling day
    per_member: int = 3  # mails a manager has sent one member per hour

    def daily(self) -> ThrottlePolicy:
        return ThrottlePolicy(max_failures=self.per_day, window=timedelta(days=1), lockout=timedelta(days=1))

    def member(self) -> ThrottlePolicy:
        return ThrottlePolicy(max_failures=self.per_member, window=timedelta(hours=1), lockout=timedelta(hours=1))


LIMITS = Limits()


async def _require_verified(session: AsyncSession, who: Actor) -> None:
    """Only people who proved their own address send invitations (an unverified account could be anyone's)."""
    if await session.scalar(select(users.c.email_verified_at).where(users.c.id == who.user_id)) is None:
        raise EmailNotVerified


async def _spend_daily(session: AsyncSession, account_id: uuid.UUID, n: int, limits: Limits, now: datetime) -> None:
    """Count `n` mails against the account's day, or refuse them all (InvitationLimit)."""
    if n and (exhausted := await spend(session, {f"invitations:{account_id}": limits.daily()}, now, n)):
        raise InvitationLimit(exhausted.retry_after, limit=limits.per_day, remaining=exhausted.remaining, requested=n)


async def _spend_member(session: AsyncSession, member_id: uuid.UUID, limits: Limits, now: datetime) -> None:
    """Count one mail a manager sends this member, or refuse it (MemberMailLimit)."""
    if exhausted := await spend(session, {f"member-mails:{member_id}": limits.member()}, now):
        raise MemberMailLimit(exhausted.retry_after)


@dataclass
class Added:
    """What adding people did. Known and unknown addresses are reported alike (both `invited`): whether an
    address has an identity is the person's business, not the institution's."""

    invited: list[uuid.UUID] = field(default_factory=list)  # asked to join: by invitation or join request
    already_members: list[MemberRow] = field(default_factory=list)  # already members or asked before


async def add_members(
    session: AsyncSession,
    outbox: Outbox,
    who: Actor,
    account_id: uuid.UUID,
    people: Sequence[MemberRow],
    now: datetime,
    *,
    limits: Limits = LIMITS,
) -> Added:
    """Add checked people (see `csv_import.check_member`) to the account, in bulk: a few statements whatever
    their number, so that a 5,000-row file imports in one short transaction. The mails it sends count against
    the account's day: if they would go over, nobody is added (InvitationLimit).

    Every membership it makes is pending, with the name and address the manager typed: a new person accepts
    by setting a password with the invitation (MemberInvited); someone who already has an identity accepts
    the join request (MemberAdded) with its link or from their account. Until then the account sees only
    what it typed, and the answer is the same whichever the case."""
    institution = await managed_institution(session, who, account_id)
    await _require_verified(session, who)
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
    asked: list[dict[str, Any]] = []
    events: list[MemberInvited | MemberAdded] = []
    tokens: list[dict[str, Any]] = []
    for person in people:
        user = known.get(person.email.casefold())
        if user is not None and user.id in already:
            added.already_members.append(person)
            continue
        user_id = user.id if user is not None else uuid.uuid4()
        added.invited.append(user_id)
        asked.append(_pending(account_id, user_id, person))
        token, digest = new_token()
        joins = user is not None and has_joined(user)
        tokens.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "purpose": JOIN if joins else INVITATION,
                "token_hash": digest,
                "expires_at": now + (JOIN_TTL if joins else INVITATION_TTL),
                "detail": str(account_id),
            }
        )
        if user is not None and joins:
            events.append(_join_request(account_id, institution.name, user, token, now))
            continue
        if user is None:
            new_users.append({"id": user_id, "email": person.email, "name": person.name, "language": language})
        user_language = language if user is None else user.language
        email = person.email if user is None else user.email
        events.append(_invitation(account_id, institution.name, user_id, person.name, email, user_language, token, now))
    await _spend_daily(session, account_id, len(events), limits, now)
    if new_users:
        await session.execute(insert(users), new_users)
    if asked:
        await session.execute(insert(memberships), asked)
    if tokens:
        await session.execute(insert(action_tokens), tokens)
    await outbox.add_all(session, events)
    return added


def _pending(account_id: uuid.UUID, user_id: uuid.UUID, person: MemberRow) -> dict[str, Any]:
    """A membership row the person has yet to accept, with what the manager typed."""
    return {
        "institution_id": account_id,
        "user_id": user_id,
        "role": "member",
        "accepted_at": None,
        "invited_name": person.name,
        "invited_email": person.email,
    }


def _join_request(account_id: uuid.UUID, institution_name: str, user: Any, token: str, now: datetime) -> MemberAdded:
    return MemberAdded(
        account_id=account_id,
        member_id=user.id,
        institution_name=institution_name,
        name=user.name,
        email=user.email,
        language=user.language,
        join_token=sealed(token, MemberAdded, "join_token", account_id),
        expires_at=now + JOIN_TTL,
    )


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
        invitation_token=sealed(token, MemberInvited, "invitation_token", account_id),
        expires_at=now + INVITATION_TTL,
    )


def member_status(row: Any) -> str:
    """A member is active once they accepted and have a password (or a proved address); invited till then."""
    return "active" if row.accepted_at is not None and has_joined(row) else "invited"


PENDING = memberships.c.accepted_at.is_(None)
# What the account sees of its people: the identity's own name and address once they accepted, and only
# what its manager typed before (the address typed matches the identity's but for case).
SHOWN_NAME = case((PENDING, func.coalesce(memberships.c.invited_name, users.c.name)), else_=users.c.name)


async def list_members(
    session: AsyncSession, who: Actor, account_id: uuid.UUID, *, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """A page of the account's people by name, and their counts. Managers and organisers only."""
    await readable_institution(session, who, account_id)
    if not (who.is_organiser or who.may_manage(account_id)):
        raise Forbidden
    of_account = memberships.c.institution_id == account_id
    people = await session.execute(
        select(users, *MEMBERSHIP_COLUMNS)
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(of_account)
        .order_by(func.lower(SHOWN_NAME), users.c.id)
        .limit(limit)
        .offset(offset)
    )
    return {
        "counts": await member_counts(session, account_id),
        "members": [_member(row) for row in people],
        "limit": limit,
        "offset": offset,
    }


async def member_counts(session: AsyncSession, account_id: uuid.UUID) -> dict[str, int]:
    """How many people the account has: in all, active (joined), invited (not yet), and its managers."""
    total, active, managers = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(JOINED & ~PENDING),
                func.count().filter(memberships.c.role == "manager"),
            )
            .select_from(memberships.join(users, memberships.c.user_id == users.c.id))
            .where(memberships.c.institution_id == account_id)
        )
    ).one()
    return {"total": total, "active": active, "invited": total - active, "managers": managers}


MEMBERSHIP_COLUMNS = (
    memberships.c.role,
    memberships.c.created_at.label("joined_at"),
    memberships.c.accepted_at,
    memberships.c.invited_name,
    memberships.c.invited_email,
)


def shown(row: Any) -> tuple[str, str]:
    """The name and address the account may see of a member row (see SHOWN_NAME)."""
    if row.accepted_at is None:
        return row.invited_name or row.name, row.invited_email or row.email
    return row.name, row.email


def _member(row: Any) -> dict[str, Any]:
    name, email = shown(row)
    return {
        "member_id": row.id,
        "name": name,
        "email": email,
        "role": row.role,
        "status": member_status(row),
        "joined_at": row.joined_at,
    }


async def _member_row(session: AsyncSession, account_id: uuid.UUID, member_id: uuid.UUID) -> Any:
    row = (
        await session.execute(
            select(users, *MEMBERSHIP_COLUMNS)
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
    *,
    limits: Limits = LIMITS,
) -> dict[str, Any]:
    """Fix the address of a member who has not accepted yet, and ask them again there. The identity the
    account itself made for the wrong address (no password, no other institution) takes the new address;
    otherwise the request to the wrong address is withdrawn and the new address is added as `add_members`
    would (the member id may then change). Nothing tells whether either address has an identity."""
    institution = await managed_institution(session, who, account_id)
    await _require_verified(session, who)
    member = await _member_row(session, account_id, member_id)
    if member_status(member) == "active":
        raise MemberActive
    try:
        email = normalise_email(new_email)
    except ValidationFailure as exc:
        raise InvalidField("email", exc) from exc
    taken_by = await session.scalar(select(users.c.id).where(func.lower(users.c.email) == email.casefold()))
    if taken_by is not None and taken_by != member_id:
        if await session.scalar(
            select(func.count()).where(memberships.c.institution_id == account_id, memberships.c.user_id == taken_by)
        ):
            raise EmailTaken  # one of the account's own people
    if taken_by in (None, member_id) and await _made_here(session, account_id, member):
        await session.execute(update(users).where(users.c.id == member_id).values(email=email))
        await session.execute(
            update(memberships)
            .where(memberships.c.institution_id == account_id, memberships.c.user_id == member_id)
            .values(invited_email=email)
        )
        member = await _member_row(session, account_id, member_id)
        await _invite_again(session, outbox, account_id, institution.name, member, email, now, limits)
        return _member(await _member_row(session, account_id, member_id))
    await _spend_member(session, member.id, limits, now)
    await _withdraw(session, account_id, member, now)
    name = member.invited_name or member.name
    [moved] = (
        await add_members(session, outbox, who, account_id, [MemberRow(1, name, email)], now, limits=limits)
    ).invited
    return _member(await _member_row(session, account_id, moved))


async def _made_here(session: AsyncSession, account_id: uuid.UUID, member: Any) -> bool:
    """Whether the member's identity is only this account's invitation: never joined, nowhere else."""
    if has_joined(member) or member.is_organiser:
        return False
    return not await session.scalar(
        select(func.count()).where(memberships.c.user_id == member.id, memberships.c.institution_id != account_id)
    )


async def _withdraw(session: AsyncSession, account_id: uuid.UUID, member: Any, now: datetime) -> None:
    """End the member's membership of the account and void its links to them; an identity left with no
    institution and no password is deleted (it was only an invitation)."""
    await _void_requests(session, member.id, account_id, now)
    await session.execute(
        delete(memberships).where(memberships.c.institution_id == account_id, memberships.c.user_id == member.id)
    )
    left_alone = not member.is_organiser and not await session.scalar(
        select(func.count()).where(memberships.c.user_id == member.id)
    )
    if left_alone and not has_joined(member):
        await session.execute(delete(users).where(users.c.id == member.id))


async def _void_requests(session: AsyncSession, user_id: uuid.UUID, account_id: uuid.UUID, now: datetime) -> None:
    """Void the unused invitation and join links the account sent the person (and links from before links
    named their account); other institutions' links stay."""
    await session.execute(
        update(action_tokens)
        .where(
            action_tokens.c.user_id == user_id,
            action_tokens.c.purpose.in_((INVITATION, JOIN)),
            action_tokens.c.used_at.is_(None),
            (action_tokens.c.detail == str(account_id)) | action_tokens.c.detail.is_(None),
        )
        .values(used_at=now)
    )


async def resend_invitation(
    session: AsyncSession,
    outbox: Outbox,
    who: Actor,
    account_id: uuid.UUID,
    member_id: uuid.UUID,
    now: datetime,
    *,
    limits: Limits = LIMITS,
) -> None:
    institution = await managed_institution(session, who, account_id)
    await _require_verified(session, who)
    member = await _member_row(session, account_id, member_id)
    if member_status(member) == "active":
        raise MemberActive
    await _invite_again(session, outbox, account_id, institution.name, member, member.email, now, limits)


async def _invite_again(
    session: AsyncSession,
    outbox: Outbox,
    account_id: uuid.UUID,
    institution_name: str,
    member: Any,
    email: str,
    now: datetime,
    limits: Limits,
) -> None:
    """Mail the member's request again, replacing the account's earlier links: a join request to someone who
    has an identity and has not accepted, an invitation to set a password otherwise."""
    await _spend_member(session, member.id, limits, now)
    await _spend_daily(session, account_id, 1, limits, now)
    await _void_requests(session, member.id, account_id, now)
    if member.accepted_at is None and has_joined(member):
        token = await issue_token(session, member.id, JOIN, now + JOIN_TTL, detail=str(account_id))
        await outbox.add(session, _join_request(account_id, institution_name, member, token, now))
        return
    token = await issue_token(session, member.id, INVITATION, now + INVITATION_TTL, detail=str(account_id))
    name = shown(member)[0]
    await outbox.add(
        session, _invitation(account_id, institution_name, member.id, name, email, member.language, token, now)
    )


async def send_password_reset(
    session: AsyncSession,
    outbox: Outbox,
    who: Actor,
    account_id: uuid.UUID,
    member_id: uuid.UUID,
    now: datetime,
    *,
    limits: Limits = LIMITS,
) -> None:
    """Mail the member a reset link, as if they had asked for it (a few an hour: each voids the last)."""
    await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if member_status(member) != "active":  # nor a reset for someone who has not accepted to join
        raise MemberNotActive
    await _spend_member(session, member.id, limits, now)
    await mail_reset_link(session, outbox, member, now)


async def _managers(session: AsyncSession, account_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                memberships.c.institution_id == account_id, memberships.c.role == "manager", ~PENDING
            )
        )
        or 0
    )


async def set_role(
    session: AsyncSession,
    who: Actor,
    account_id: uuid.UUID,
    member_id: uuid.UUID,
    role: Role,
    now: datetime | None = None,
) -> dict[str, Any]:
    await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if _counts_as_last_manager(member) and role != "manager" and await _managers(session, account_id) == 1:
        raise LastManager
    await session.execute(
        update(memberships)
        .where(memberships.c.institution_id == account_id, memberships.c.user_id == member_id)
        .values(role=role)
    )
    if role != "manager":  # the API tokens they made act as a manager: they end with the role
        await api_tokens.revoke_tokens_of(session, who, account_id, member_id, now or datetime.now(UTC))
    if role != member.role:
        security_event(
            "role_changed",
            outcome=role,
            user_id=who.user_id,
            account_id=account_id,
            target_user_id=member_id,
            previous_role=member.role,
        )
    return _member(await _member_row(session, account_id, member_id))


async def remove_member(
    session: AsyncSession, outbox: Outbox, who: Actor, account_id: uuid.UUID, member_id: uuid.UUID, now: datetime
) -> None:
    """The person leaves the account at once (identities are re-read on every request). An identity left
    with no institution and no password is deleted; one with a password stays, for its other uses."""
    await managed_institution(session, who, account_id)
    member = await _member_row(session, account_id, member_id)
    if _counts_as_last_manager(member) and await _managers(session, account_id) == 1:
        raise LastManager
    await _withdraw(session, account_id, member, now)
    await api_tokens.revoke_tokens_of(session, who, account_id, member_id, now)
    security_event(
        "member_removed", outcome="removed", user_id=who.user_id, account_id=account_id, target_user_id=member_id
    )
    await outbox.add(session, MemberRemoved(account_id=account_id, member_id=member_id, removed_at=now))


def _counts_as_last_manager(member: Any) -> bool:
    return bool(member.role == "manager" and member.accepted_at is not None)


async def accept_invitation(session: AsyncSession, token: str, password: str, now: datetime) -> uuid.UUID:
    """Set the invited person's password with the invitation link; the link proves the address too, and
    accepting it is joining the institution that sent it (its other requests stay pending)."""
    user_id, account = await consume_token_with_detail(session, token, INVITATION, now)
    user = (await session.execute(select(users).where(users.c.id == user_id).with_for_update())).one()
    if user.password_hash is not None:  # another invitation was accepted first; its password stands
        raise InvalidToken
    verified_at = func.coalesce(users.c.email_verified_at, now)
    await set_password(session, user, password, email_verified_at=verified_at)
    await void_tokens(session, user_id, INVITATION, now)
    security_event("password_changed", outcome="changed", user_id=user_id, how="invitation")
    if (account_id := _account_of(account)) is not None:
        await _accept(session, user_id, account_id, now)
    return user_id


async def accept_join_request(session: AsyncSession, token: str, now: datetime) -> uuid.UUID:
    """Join the institution whose join request link this is; the account id, or InvalidToken when the
    request was withdrawn meanwhile."""
    user_id, account = await consume_token_with_detail(session, token, JOIN, now)
    account_id = _account_of(account)
    if account_id is None or not await _accept(session, user_id, account_id, now):
        raise InvalidToken
    return account_id


def _account_of(detail: str | None) -> uuid.UUID | None:
    """The account an invitation or join link was sent for (its detail); None for links from before."""
    try:
        return uuid.UUID(detail) if detail else None
    except ValueError:
        return None


async def pending_invitations(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The institutions asking the user to join (for their account page), oldest first."""
    rows = await session.execute(
        select(institutions.c.id, institutions.c.name, memberships.c.created_at)
        .join(memberships, memberships.c.institution_id == institutions.c.id)
        .where(memberships.c.user_id == user_id, PENDING, institutions.c.closed_at.is_(None))
        .order_by(memberships.c.created_at)
    )
    return [{"account_id": id, "institution_name": name, "invited_at": at} for id, name, at in rows]


async def answer_invitation(
    session: AsyncSession, user_id: uuid.UUID, account_id: uuid.UUID, accept: bool, now: datetime
) -> None:
    """The signed-in user accepts or declines an institution's pending request; NotFound if there is none."""
    if accept:
        if not await _accept(session, user_id, account_id, now):
            raise NotFound
        return
    user = (
        await session.execute(
            select(users, *MEMBERSHIP_COLUMNS)
            .join(memberships)
            .where(users.c.id == user_id, memberships.c.institution_id == account_id, PENDING)
        )
    ).first()
    if user is None:
        raise NotFound
    await _withdraw(session, account_id, user, now)
    security_event("membership_declined", outcome="declined", user_id=user_id, account_id=account_id)


async def _accept(session: AsyncSession, user_id: uuid.UUID, account_id: uuid.UUID, now: datetime) -> bool:
    """Make the user's pending membership of the account real; False when there is none (withdrawn)."""
    accepted = await session.scalar(
        update(memberships)
        .where(memberships.c.user_id == user_id, memberships.c.institution_id == account_id, PENDING)
        .values(accepted_at=now)
        .returning(memberships.c.user_id)
    )
    await _void_requests(session, user_id, account_id, now)
    if accepted is not None:
        security_event("membership_accepted", outcome="joined", user_id=user_id, account_id=account_id)
    return accepted is not None
