"""Business rules of accounts: sign-up and email verification."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import home_account
from accounts.credentials import ThrottlePolicy, email_key, hash_password, spend, spend_attempt, user_by_email
from accounts.errors import InstitutionExists, InvalidField, InvalidToken, TooManySignUps, valid_name
from accounts.models import action_tokens, institutions, memberships, users
from accounts.sealing import sealed
from accounts.validators import (
    ValidationFailure,
    check_password,
    normalise_email,
    validate_institution_identifier,
)
from contracts.events.accounts import (
    AccountRegistered,
    AccountVerified,
    SignUpAttemptedWithTakenEmail,
    VerificationLinkRequested,
)
from servicekit.outbox import Outbox

VERIFY_EMAIL = "verify_email"


@dataclass(frozen=True)
class SignUp:
    institution_name: str
    institution_kind: Literal["school", "company", "other"]
    contact_name: str
    email: str
    password: str
    language: Literal["fr", "en"] = "fr"
    institution_identifier: str | None = None  # UAI for a school, SIRET for a company
    city: str | None = None
    postal_address: str | None = None


def _checked(form: SignUp) -> tuple[str, str | None]:
    """The normalised email and identifier, once every rule holds."""
    try:
        email = normalise_email(form.email)
    except ValidationFailure as exc:
        raise InvalidField("email", exc) from exc
    try:
        check_password(form.password, email=email, names=[form.contact_name, form.institution_name])
    except ValidationFailure as exc:
        raise InvalidField("password", exc) from exc
    try:
        identifier = validate_institution_identifier(form.institution_kind, form.institution_identifier)
    except ValidationFailure as exc:
        raise InvalidField("institution_identifier", exc) from exc
    return email, identifier


def new_token() -> tuple[str, str]:
    """A URL-safe secret and the sha256 hex digest that is the only thing stored."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    session: AsyncSession, user_id: uuid.UUID, purpose: str, expires_at: datetime, detail: str | None = None
) -> str:
    """A new single-use token for `purpose`; only its digest is stored, the token goes in the mailed link."""
    token, digest = new_token()
    await session.execute(
        insert(action_tokens).values(
            id=uuid.uuid4(), user_id=user_id, purpose=purpose, token_hash=digest, expires_at=expires_at, detail=detail
        )
    )
    return token


async def consume_token(session: AsyncSession, token: str, purpose: str, now: datetime) -> uuid.UUID:
    """Use a single-use token once, before it expires: its user's id, or InvalidToken."""
    user_id, _ = await consume_token_with_detail(session, token, purpose, now)
    return user_id


async def consume_token_with_detail(
    session: AsyncSession, token: str, purpose: str, now: datetime
) -> tuple[uuid.UUID, str | None]:
    """Use a single-use token once, before it expires: its user's id and the detail it was issued with."""
    used = (
        await session.execute(
            update(action_tokens)
            .where(
                action_tokens.c.token_hash == token_digest(token),
                action_tokens.c.purpose == purpose,
                action_tokens.c.used_at.is_(None),
                action_tokens.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(action_tokens.c.user_id, action_tokens.c.detail)
        )
    ).first()
    if used is None:
        raise InvalidToken
    return used.user_id, used.detail


async def void_tokens(session: AsyncSession, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
    """Make every unused token of the user for `purpose` unusable (a newer one replaces them)."""
    await session.execute(
        update(action_tokens)
        .where(
            action_tokens.c.user_id == user_id, action_tokens.c.purpose == purpose, action_tokens.c.used_at.is_(None)
        )
        .values(used_at=now)
    )


SIGN_UPS_PER_SOURCE = ThrottlePolicy(max_failures=5, window=timedelta(hours=1), lockout=timedelta(hours=1))


async def sign_up(
    session: AsyncSession,
    outbox: Outbox,
    form: SignUp,
    *,
    verification_ttl: timedelta,
    source: str | None = None,
    per_source: ThrottlePolicy = SIGN_UPS_PER_SOURCE,
    now: datetime | None = None,
) -> uuid.UUID:
    """Open the account and mail its verification link. `source` is the client's address as the gateway sees
    it: sign-ups are limited per source (TooManySignUps); None (tests, the command line) is not limited.

    An address that already has an identity is answered the same way, with an id no account has: its owner
    is told instead (SignUpAttemptedWithTakenEmail), so the answer never says who is registered."""
    now = now or datetime.now(UTC)
    names = {field: valid_name(field, getattr(form, field)) for field in ("institution_name", "contact_name")}
    form = replace(form, **names)
    email, identifier = _checked(form)
    if source is not None and (exhausted := await spend(session, {f"signup-source:{source}": per_source}, now)):
        raise TooManySignUps(exhausted.retry_after)
    open_with_identifier = (institutions.c.identifier == identifier) & institutions.c.closed_at.is_(None)
    if identifier and await session.scalar(select(institutions.c.id).where(open_with_identifier)):
        raise InstitutionExists
    account_id, user_id = uuid.uuid4(), uuid.uuid4()
    password_hash = await hash_password(form.password)  # on both paths, so that they take the same time
    owner = await user_by_email(session, email)
    if owner is not None:
        await _tell_owner(session, outbox, owner, now)
        return account_id
    try:
        async with session.begin_nested():
            await session.execute(
                insert(institutions).values(
                    id=account_id,
                    name=form.institution_name,
                    kind=form.institution_kind,
                    identifier=identifier,
                    city=form.city,
                    postal_address=form.postal_address,
                )
            )
            await session.execute(
                insert(users).values(
                    id=user_id, email=email, name=form.contact_name, password_hash=password_hash, language=form.language
                )
            )
    except IntegrityError as exc:  # a concurrent sign-up won the race for this email or institution
        if "identifier" in str(exc.orig):
            raise InstitutionExists from exc
        owner = await user_by_email(session, email)
        if owner is None:
            raise
        await _tell_owner(session, outbox, owner, now)
        return account_id
    await session.execute(insert(memberships).values(institution_id=account_id, user_id=user_id, role="manager"))
    expires_at = now + verification_ttl
    token = await issue_token(session, user_id, VERIFY_EMAIL, expires_at)
    await outbox.add(
        session,
        AccountRegistered(
            account_id=account_id,
            institution_name=form.institution_name,
            institution_kind=form.institution_kind,
            contact_name=form.contact_name,
            email=email,
            language=form.language,
            verification_token=sealed(token, AccountRegistered, "verification_token", account_id),
            verification_expires_at=expires_at,
        ),
    )
    return account_id


async def _tell_owner(session: AsyncSession, outbox: Outbox, owner: Any, now: datetime) -> None:
    """Tell the owner of an address (a users row) that someone tried to open an account with it."""
    await outbox.add(
        session,
        SignUpAttemptedWithTakenEmail(
            account_id=await home_account(session, owner.id),
            user_id=owner.id,
            email=owner.email,
            language=owner.language,
            attempted_at=now,
        ),
    )


async def verify_email(session: AsyncSession, outbox: Outbox, token: str) -> uuid.UUID:
    """Consume a verification token (single use, unexpired) and mark the email verified."""
    now = datetime.now(UTC)
    user_id = await consume_token(session, token, VERIFY_EMAIL, now)
    user = (
        await session.execute(
            update(users).where(users.c.id == user_id).values(email_verified_at=now).returning(users.c.email)
        )
    ).one()
    account_id = await session.scalar(
        select(memberships.c.institution_id).where(memberships.c.user_id == user_id, memberships.c.role == "manager")
    )
    assert account_id is not None
    await outbox.add(session, AccountVerified(account_id=account_id, email=user.email, verified_at=now))
    return account_id


RESENDS_PER_EMAIL = ThrottlePolicy(max_failures=3, window=timedelta(hours=1), lockout=timedelta(hours=1))
RESENDS_PER_SOURCE = ThrottlePolicy(max_failures=20, window=timedelta(hours=1), lockout=timedelta(hours=1))


async def resend_verification(
    session: AsyncSession, outbox: Outbox, email: str, source: str, now: datetime, *, verification_ttl: timedelta
) -> None:
    """Mail a fresh verification link (voiding the older ones) to an unverified address; silent otherwise,
    and silently limited, so the answer says nothing about the address."""
    keys = {"resend-" + email_key(email): RESENDS_PER_EMAIL, f"resend-source:{source}": RESENDS_PER_SOURCE}
    if not await spend_attempt(session, keys, now):
        return
    user = await user_by_email(session, email)
    account_id = user and await session.scalar(
        select(memberships.c.institution_id).where(memberships.c.user_id == user.id, memberships.c.role == "manager")
    )
    if user is None or user.email_verified_at is not None or account_id is None:
        return
    await void_tokens(session, user.id, VERIFY_EMAIL, now)
    token = await issue_token(session, user.id, VERIFY_EMAIL, now + verification_ttl)
    await outbox.add(
        session,
        VerificationLinkRequested(
            account_id=account_id,
            user_id=user.id,
            contact_name=user.name,
            email=user.email,
            language=user.language,
            verification_token=sealed(token, VerificationLinkRequested, "verification_token", account_id),
            expires_at=now + verification_ttl,
        ),
    )
