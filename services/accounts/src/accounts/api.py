"""Internal HTTP API of accounts (called by the gateway)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, get, patch, post
from litestar.params import Parameter
from pydantic import BaseModel, EmailStr, Field, StringConstraints

from accounts import credentials, profile, recovery
from accounts import service as accounts
from accounts.settings import AccountsSettings
from servicekit.http import ProblemError
from servicekit.runtime import Service

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SignUpRequest(BaseModel):
    institution_name: Name
    institution_kind: Literal["school", "company", "other"]
    contact_name: Name
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    language: Literal["fr", "en"] = "fr"
    institution_identifier: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="UAI (7 digits + check letter) for a school, SIRET (14 digits) for a company"
    )
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    postal_address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class SignUpResponse(BaseModel):
    account_id: uuid.UUID
    status: Literal["pending_verification"] = "pending_verification"


class VerifyRequest(BaseModel):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class VerifyResponse(BaseModel):
    account_id: uuid.UUID
    status: Literal["verified"] = "verified"


class LoginRequest(BaseModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="the client's address as seen by the gateway, for per-source throttling"
    )


class IdentityResponse(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    email_verified: bool
    token_version: int
    is_organiser: bool
    memberships: dict[uuid.UUID, Literal["manager", "member"]]


class TokenVersion(BaseModel):
    token_version: int


class SessionsController(Controller):
    path = "/internal"

    @post("/sessions", status_code=200, summary="Check credentials (throttled); the gateway issues the session")
    async def login(self, data: LoginRequest, service: Service) -> IdentityResponse:
        async with service.db.transaction() as session:
            outcome = await credentials.login(session, data.email, data.password, data.source, datetime.now(UTC))
        if isinstance(outcome, credentials.Refused):
            if outcome.reason == "too_many_attempts":
                seconds = int(outcome.retry_after.total_seconds()) + 1 if outcome.retry_after else 60
                raise ProblemError(
                    429,
                    "too_many_attempts",
                    "Too many failed attempts",
                    f"Too many failed attempts: try again in {(seconds + 59) // 60} minute(s).",
                    retry_after=seconds,
                )
            raise ProblemError(401, "invalid_credentials", "Invalid email or password")
        return IdentityResponse(**vars(outcome))

    @get("/users/{user_id:uuid}", summary="The current identity of a user (sessions check their token version)")
    async def identity(self, user_id: uuid.UUID, service: Service) -> IdentityResponse:
        async with service.db.transaction() as session:
            identity = await credentials.identity_of(session, user_id)
        if identity is None:
            raise ProblemError(404, "not_found", "Not found")
        return IdentityResponse(**vars(identity))

    @post("/users/{user_id:uuid}/logout-everywhere", status_code=200, summary="Invalidate every session")
    async def log_out_everywhere(self, user_id: uuid.UUID, service: Service) -> TokenVersion:
        try:
            async with service.db.transaction() as session:
                version = await credentials.log_out_everywhere(session, user_id)
        except LookupError as exc:
            raise ProblemError(404, "not_found", "Not found") from exc
        return TokenVersion(token_version=version)


class EmailRequest(BaseModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ResetConfirmation(BaseModel):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200)]
    new_password: Annotated[str, Field(min_length=1, max_length=1024)]


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


class PasswordResetsController(Controller):
    path = "/internal/password-resets"

    @post("/", status_code=202, summary="Mail a reset link if the account exists; the answer is always the same")
    async def request_reset(self, data: EmailRequest, service: Service) -> Accepted:
        async with service.db.transaction() as session:
            await recovery.request_reset(session, service.outbox, data.email, data.source, datetime.now(UTC))
        return Accepted()

    @post("/confirmation", status_code=200, summary="Set a new password with a reset link's token")
    async def reset(self, data: ResetConfirmation, service: Service) -> Accepted:
        try:
            async with service.db.transaction() as session:
                await recovery.reset_password(session, service.outbox, data.token, data.new_password, datetime.now(UTC))
        except accounts.InvalidToken as exc:
            raise ProblemError(
                400, exc.code, "Invalid or expired link", "This reset link is invalid, used or expired."
            ) from exc
        except accounts.InvalidField as exc:
            raise ProblemError(400, exc.failure.code, "Invalid password", exc.failure.message, field=exc.field) from exc
        return Accepted()


Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
ActorId = Annotated[uuid.UUID, Parameter(header="X-Actor-Id", description="the user the gateway acts for")]


class ProfileChanges(BaseModel):
    name: Name | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    postal_address: Text | None = None
    contact_name: Name | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    billing_address: Text | None = None
    vat_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None


class ProfileController(Controller):
    path = "/internal/accounts/{account_id:uuid}/profile"

    @get("/", summary="An institution's profile, if the actor may see it")
    async def read(self, account_id: uuid.UUID, actor_id: ActorId, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            try:
                return await profile.read_profile(session, await profile.actor(session, actor_id), account_id)
            except profile.NotFound as exc:
                raise ProblemError(404, "not_found", "Not found") from exc

    @patch("/", summary="Edit an institution's profile (its managers only)")
    async def edit(
        self, account_id: uuid.UUID, actor_id: ActorId, data: ProfileChanges, service: Service
    ) -> dict[str, Any]:
        try:
            async with service.db.transaction() as session:
                who = await profile.actor(session, actor_id)
                return await profile.edit_profile(session, who, account_id, data.model_dump(exclude_unset=True))
        except profile.NotFound as exc:
            raise ProblemError(404, "not_found", "Not found") from exc
        except profile.Forbidden as exc:
            raise ProblemError(403, "forbidden", "Forbidden", "Only the account's managers can edit it.") from exc
        except accounts.InvalidField as exc:
            raise ProblemError(400, exc.failure.code, "Invalid profile", exc.failure.message, field=exc.field) from exc


class AccountsController(Controller):
    path = "/internal/accounts"

    @post("/", status_code=201)
    async def sign_up(self, data: SignUpRequest, service: Service) -> SignUpResponse:
        settings = service.settings
        assert isinstance(settings, AccountsSettings)
        try:
            async with service.db.transaction() as session:
                account_id = await accounts.sign_up(
                    session,
                    service.outbox,
                    accounts.SignUp(**data.model_dump()),
                    verification_ttl=timedelta(hours=settings.verification_ttl_hours),
                )
        except accounts.InvalidField as exc:
            raise ProblemError(400, exc.failure.code, "Invalid sign-up", exc.failure.message, field=exc.field) from exc
        except accounts.InstitutionExists as exc:
            raise ProblemError(
                409,
                exc.code,
                "Institution already registered",
                "This institution already has a Visiopass account. Ask its account manager to add you as a "
                "manager; if you cannot reach them, write to support, who will forward your request to them.",
            ) from exc
        except accounts.EmailTaken as exc:
            raise ProblemError(
                409, exc.code, "Email already registered", "An account already uses this email address."
            ) from exc
        return SignUpResponse(account_id=account_id)

    @post("/verification/resend", status_code=202, summary="Mail a new verification link (same answer always)")
    async def resend(self, data: EmailRequest, service: Service) -> Accepted:
        settings = service.settings
        assert isinstance(settings, AccountsSettings)
        async with service.db.transaction() as session:
            await accounts.resend_verification(
                session,
                service.outbox,
                data.email,
                data.source,
                datetime.now(UTC),
                verification_ttl=timedelta(hours=settings.verification_ttl_hours),
            )
        return Accepted()

    @post("/verification", status_code=200)
    async def verify(self, data: VerifyRequest, service: Service) -> VerifyResponse:
        try:
            async with service.db.transaction() as session:
                account_id = await accounts.verify_email(session, service.outbox, data.token)
        except accounts.InvalidToken as exc:
            raise ProblemError(
                400, exc.code, "Invalid or expired link", "This verification link is invalid, used or expired."
            ) from exc
        return VerifyResponse(account_id=account_id)
