"""Internal HTTP API of accounts, called by the gateway (OpenAPI at `/schema`).

Routes acting for a signed-in person take the gateway's `X-Actor-Id` header and authorise on it; routes
under `/internal/users/{user_id}` act on that user themself. Refusals are `errors.AccountsError`s, turned
into problem details by `problem` below."""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import Parameter
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy.exc import IntegrityError

from accounts import access, api_tokens, credentials, gdpr, me, members, profile, recovery
from accounts import service as accounts
from accounts.csv_import import MemberRow, UnreadableFile, check_member, parse_members_csv, template_bytes
from accounts.errors import AccountsError, Forbidden, InvalidField, NotFound, TooManyRequests
from accounts.settings import AccountsSettings
from servicekit.http import ProblemError, problem_response
from servicekit.inputs import EmailInput, Name, Offset, Password, SourceAddress, Token, text
from servicekit.logs import safe_error_text, security_event
from servicekit.runtime import Service

# Request fields: bounded by their columns, without control characters; a source is an IP address (the gateway
# computes it), never free text. The same types as the gateway's (servicekit.inputs), checked again here.
Source = SourceAddress
Text = text(500, multiline=True)
log = logging.getLogger(__name__)
ActorId = Annotated[uuid.UUID, Parameter(header="X-Actor-Id", description="the user the gateway acts for")]


def problem(request: Request[Any, Any, Any], exc: AccountsError) -> Response[dict[str, Any]]:
    if isinstance(exc, Forbidden | NotFound) and (actor_id := request.headers.get("X-Actor-Id")):
        # someone signed in asked for what is not theirs: another institution's account or people
        account_id = request.path_params.get("account_id")
        security_event(
            "access_denied",
            outcome=exc.code,
            user_id=actor_id[:36],
            account_id=account_id,
            method=request.method,
            path=request.url.path,
        )
    response = problem_response(request, ProblemError(exc.status, exc.code, exc.title, exc.message(), **exc.members()))
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def conflict(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    """A unique rule broken by a concurrent change (two imports adding the same address at once)."""
    log.warning("integrity error: %s", safe_error_text(exc))  # the constraint, not the values
    return problem_response(
        request,
        ProblemError(409, "conflict", "Changed at the same time", "Someone changed this at the same time; try again."),
    )


def now() -> datetime:
    return datetime.now(UTC)


def mail_request_floor(settings: Any) -> timedelta:
    """How long reset and verification-link requests take at least, whether or not the address is known."""
    assert isinstance(settings, AccountsSettings)
    return timedelta(milliseconds=settings.anonymous_mail_request_floor_ms)


def member_limits(settings: Any) -> members.Limits:
    assert isinstance(settings, AccountsSettings)
    return members.Limits(per_day=settings.invitations_per_day, per_member=settings.mails_per_member_per_hour)


class SignUpRequest(BaseModel):
    institution_name: Name
    institution_kind: Literal["school", "company", "other"]
    contact_name: Name
    email: EmailStr
    password: Password
    language: Literal["fr", "en"] = "fr"
    institution_identifier: text(64) | None = Field(
        None, description="UAI (7 digits + check letter) for a school, SIRET (14 digits) for a company"
    )
    city: text(100) | None = None
    postal_address: Text | None = None
    source: Source = Field(description="the client's address as seen by the gateway, for per-source limits")


class SignUpResponse(BaseModel):
    account_id: uuid.UUID
    status: Literal["pending_verification"] = "pending_verification"


class TokenRequest(BaseModel):
    token: Token


class VerifyResponse(BaseModel):
    account_id: uuid.UUID
    status: Literal["verified"] = "verified"


class EmailRequest(BaseModel):
    email: EmailInput
    source: Source


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


class AccountsController(Controller):
    path = "/internal/accounts"
    tags = ["sign-up"]

    @post("/", status_code=201, summary="Open an institution's account; mails the verification link")
    async def sign_up(self, data: SignUpRequest, service: Service) -> SignUpResponse:
        settings = service.settings
        assert isinstance(settings, AccountsSettings)
        async with service.db.transaction() as session:
            account_id = await accounts.sign_up(
                session,
                service.outbox,
                accounts.SignUp(**data.model_dump(exclude={"source"})),
                verification_ttl=timedelta(hours=settings.verification_ttl_hours),
                source=data.source,
                per_source=credentials.ThrottlePolicy(
                    settings.sign_ups_per_source_per_hour, timedelta(hours=1), timedelta(hours=1)
                ),
            )
        return SignUpResponse(account_id=account_id)

    @post("/verification/resend", status_code=202, summary="Mail a new verification link (same answer always)")
    async def resend(self, data: EmailRequest, service: Service) -> Accepted:
        settings = service.settings
        assert isinstance(settings, AccountsSettings)
        async with recovery.no_faster_than(mail_request_floor(settings)), service.db.transaction() as session:
            await accounts.resend_verification(
                session,
                service.outbox,
                data.email,
                data.source,
                now(),
                verification_ttl=timedelta(hours=settings.verification_ttl_hours),
            )
        return Accepted()

    @post("/verification", status_code=200, summary="Confirm the account manager's email with the mailed token")
    async def verify(self, data: TokenRequest, service: Service) -> VerifyResponse:
        async with service.db.transaction() as session:
            account_id = await accounts.verify_email(session, service.outbox, data.token)
        return VerifyResponse(account_id=account_id)


class LoginRequest(BaseModel):
    email: EmailInput
    password: Password
    source: Source = Field(description="the client's address as seen by the gateway, for per-source throttling")


class IdentityResponse(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    language: Literal["fr", "en"]
    email_verified: bool
    token_version: int
    is_organiser: bool
    memberships: dict[uuid.UUID, Literal["manager", "member"]]


class SessionOpened(BaseModel):
    session_id: uuid.UUID
    expires_at: datetime
    identity: IdentityResponse


class SessionsController(Controller):
    path = "/internal/sessions"
    tags = ["sessions"]

    @post("/", status_code=201, summary="Check credentials (throttled) and open a session")
    async def log_in(self, data: LoginRequest, service: Service) -> SessionOpened:
        async with service.db.transaction() as session:
            outcome = await credentials.login(session, data.email, data.password, data.source, now())
            if isinstance(outcome, credentials.Identity):
                session_id, expires_at = await credentials.open_session(session, outcome, data.source, now())
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
        return SessionOpened(session_id=session_id, expires_at=expires_at, identity=IdentityResponse(**vars(outcome)))

    @get("/{session_id:uuid}", summary="The identity behind an open session (re-read on every request)")
    async def identity(self, session_id: uuid.UUID, service: Service) -> IdentityResponse:
        async with service.db.transaction() as session:
            identity = await credentials.session_identity(session, session_id, now())
        if identity is None:
            raise NotFound
        return IdentityResponse(**vars(identity))

    @delete("/{session_id:uuid}", status_code=204, summary="Log out: end this session")
    async def log_out(self, session_id: uuid.UUID, service: Service) -> None:
        async with service.db.transaction() as session:
            await credentials.end_session(session, session_id, now())


class TokenVersion(BaseModel):
    token_version: int


class Settings(BaseModel):
    name: Name | None = None
    language: Literal["fr", "en"] | None = None


class PasswordChange(BaseModel):
    current_password: Password
    new_password: Password
    session_id: uuid.UUID | None = Field(None, description="the session it is changed from, which stays open")


class EmailChange(BaseModel):
    password: Password
    new_email: EmailInput


class JoinedAccount(BaseModel):
    account_id: uuid.UUID


class PendingInvitation(BaseModel):
    account_id: uuid.UUID
    institution_name: str
    invited_at: datetime


class UsersController(Controller):
    """What a signed-in person does to themself."""

    path = "/internal/users/{user_id:uuid}"
    tags = ["users"]

    @patch("/", summary="Change one's name or the language of one's emails")
    async def update(self, user_id: uuid.UUID, data: Settings, service: Service) -> IdentityResponse:
        async with service.db.transaction() as session:
            await me.update_settings(session, user_id, name=data.name, language=data.language)
            identity = await credentials.identity_of(session, user_id)
        assert identity is not None
        return IdentityResponse(**vars(identity))

    @post("/logout-everywhere", status_code=200, summary="End every session of the user")
    async def log_out_everywhere(self, user_id: uuid.UUID, service: Service) -> TokenVersion:
        async with service.db.transaction() as session:
            return TokenVersion(token_version=await credentials.log_out_everywhere(session, user_id, now()))

    @post("/password", status_code=200, summary="Change one's password (the current one is required)")
    async def change_password(self, user_id: uuid.UUID, data: PasswordChange, service: Service) -> Accepted:
        async with service.db.transaction() as session:
            await me.change_password(
                session,
                service.outbox,
                user_id,
                data.current_password,
                data.new_password,
                now(),
                keep_session=data.session_id,
            )
        return Accepted()

    @get("/invitations", summary="The institutions asking the user to join, awaiting their answer")
    async def invitations(self, user_id: uuid.UUID, service: Service) -> list[PendingInvitation]:
        async with service.db.transaction() as session:
            return [PendingInvitation(**row) for row in await members.pending_invitations(session, user_id)]

    @post("/invitations/{account_id:uuid}/acceptance", status_code=200, summary="Accept to join the institution")
    async def accept_invitation(self, user_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> JoinedAccount:
        async with service.db.transaction() as session:
            await members.answer_invitation(session, user_id, account_id, True, now())
        return JoinedAccount(account_id=account_id)

    @delete("/invitations/{account_id:uuid}", status_code=204, summary="Decline to join the institution")
    async def decline_invitation(self, user_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> None:
        async with service.db.transaction() as session:
            await members.answer_invitation(session, user_id, account_id, False, now())

    @post("/email-change", status_code=202, summary="Ask to change one's email; the new address must confirm")
    async def change_email(self, user_id: uuid.UUID, data: EmailChange, service: Service) -> Accepted:
        async with service.db.transaction() as session:
            await me.request_email_change(session, service.outbox, user_id, data.password, data.new_email, now())
        return Accepted()


class NewPassword(BaseModel):
    token: Token
    new_password: Password


class LinksController(Controller):
    """What the mailed links do, whoever opens them."""

    path = "/internal"
    tags = ["links"]

    @post("/password-resets", status_code=202, summary="Mail a reset link if the account exists (same answer)")
    async def request_reset(self, data: EmailRequest, service: Service) -> Accepted:
        floor = mail_request_floor(service.settings)
        async with recovery.no_faster_than(floor), service.db.transaction() as session:
            await recovery.request_reset(session, service.outbox, data.email, data.source, now())
        return Accepted()

    @post("/password-resets/confirmation", status_code=200, summary="Set a new password with a reset token")
    async def reset(self, data: NewPassword, service: Service) -> Accepted:
        async with service.db.transaction() as session:
            await recovery.reset_password(session, service.outbox, data.token, data.new_password, now())
        return Accepted()

    @post("/invitations/acceptance", status_code=200, summary="Set an invited member's password")
    async def accept_invitation(self, data: NewPassword, service: Service) -> Accepted:
        async with service.db.transaction() as session:
            await members.accept_invitation(session, data.token, data.new_password, now())
        return Accepted()

    @post("/join-requests/acceptance", status_code=200, summary="Join the institution whose mailed request this is")
    async def accept_join_request(self, data: TokenRequest, service: Service) -> JoinedAccount:
        async with service.db.transaction() as session:
            return JoinedAccount(account_id=await members.accept_join_request(session, data.token, now()))

    @post("/email-changes/confirmation", status_code=200, summary="Confirm a new email address with its token")
    async def confirm_email(self, data: TokenRequest, service: Service) -> dict[str, str]:
        async with service.db.transaction() as session:
            return {"email": await me.confirm_email_change(session, service.outbox, data.token, now())}

    @post(
        "/email-changes/reversal",
        status_code=200,
        summary='"This was not me": restore the old address, end every session, mail it a reset link',
    )
    async def revert_email(self, data: TokenRequest, service: Service) -> dict[str, str]:
        async with service.db.transaction() as session:
            return {"email": await me.revert_email_change(session, service.outbox, data.token, now())}


class ProfileChanges(BaseModel):
    name: Name | None = None
    city: text(100) | None = None
    postal_address: Text | None = None
    contact_name: Name | None = None
    phone: text(64) | None = None
    billing_address: Text | None = None
    vat_number: text(30) | None = None


class Closure(BaseModel):
    password: Password = Field(description="the closing manager's password")


class AccountController(Controller):
    """One institution's account, for its people."""

    path = "/internal/accounts/{account_id:uuid}"
    tags = ["account"]

    @get("/profile", summary="The institution's profile, if the actor may see it")
    async def read(self, account_id: uuid.UUID, actor_id: ActorId, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            return await profile.read_profile(session, await access.actor(session, actor_id), account_id)

    @patch("/profile", summary="Edit the institution's profile (its managers only)")
    async def edit(
        self, account_id: uuid.UUID, actor_id: ActorId, data: ProfileChanges, service: Service
    ) -> dict[str, Any]:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            return await profile.edit_profile(session, who, account_id, data.model_dump(exclude_unset=True))

    @get("/export", summary="GDPR export: everything accounts holds on the account (its managers)")
    async def export(self, account_id: uuid.UUID, actor_id: ActorId, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            return await gdpr.export_account(session, await access.actor(session, actor_id), account_id, now())

    @post("/closure", status_code=200, summary="Close the account and erase its personal data (a manager)")
    async def close(self, account_id: uuid.UUID, actor_id: ActorId, data: Closure, service: Service) -> Accepted:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            await gdpr.close_account(session, service.outbox, who, account_id, data.password, now())
        return Accepted()


class NewMember(BaseModel):
    name: text(400, strip=False)
    email: text(400, strip=False)


class NewMembers(BaseModel):
    members: list[NewMember] = Field(min_length=1, max_length=200)


class RowProblem(BaseModel):
    line: int = Field(description="line of the file (the header is line 1), or position in the list from 1")
    code: str
    message: str


class AddedMembers(BaseModel):
    invited: int = Field(
        description="people asked to join: by an invitation to set a password, or, if the address already has an "
        "identity, a join request; the answer does not tell which"
    )
    already_members: int = Field(description="already members of the account, or already asked")
    rejected: list[RowProblem]


class MemberChanges(BaseModel):
    email: EmailInput | None = Field(None, description="corrects the address of a member who has not accepted yet")
    role: Literal["manager", "member"] | None = None


class MembersController(Controller):
    path = "/internal/accounts/{account_id:uuid}/members"
    tags = ["members"]

    @get("/", summary="The account's members (a page, by name) and their counts (managers, organisers)")
    async def page(
        self,
        account_id: uuid.UUID,
        actor_id: ActorId,
        service: Service,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            return await members.list_members(session, who, account_id, limit=limit, offset=offset)

    @post("/", status_code=200, summary="Add one or several members; each row is checked and reported")
    async def add(self, account_id: uuid.UUID, actor_id: ActorId, data: NewMembers, service: Service) -> AddedMembers:
        seen: dict[str, int] = {}
        checked = [check_member(i, m.name, m.email, seen) for i, m in enumerate(data.members, start=1)]
        people = [row for row in checked if isinstance(row, MemberRow)]
        rejected = [RowProblem(**vars(row)) for row in checked if not isinstance(row, MemberRow)]
        return await self._add(service, account_id, actor_id, people, rejected)

    @post(
        "/import",
        status_code=200,
        summary="Import members from a CSV file (UTF-8 with or without BOM, `;` or `,`, a header row)",
        description="The body is the file itself. Rows with a problem are reported with their line and left "
        "out; a file that cannot be read as a whole (empty, binary, no header, too large) imports nothing.",
    )
    async def import_csv(
        self,
        account_id: uuid.UUID,
        actor_id: ActorId,
        request: Request[Any, Any, Any],
        service: Service,
    ) -> AddedMembers:
        # Who may import first: nobody but the account's managers learns anything from the file's problems.
        async with service.db.transaction() as session:
            await access.managed_institution(session, await access.actor(session, actor_id), account_id)
        try:
            report = parse_members_csv(await request.body())
        except UnreadableFile as exc:
            raise InvalidField("file", exc) from exc
        rejected = [RowProblem(**vars(error)) for error in report.errors]
        return await self._add(service, account_id, actor_id, report.rows, rejected)

    async def _add(
        self,
        service: Service,
        account_id: uuid.UUID,
        actor_id: uuid.UUID,
        people: list[MemberRow],
        rejected: list[RowProblem],
    ) -> AddedMembers:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            limits = member_limits(service.settings)
            added = await members.add_members(session, service.outbox, who, account_id, people, now(), limits=limits)
        return AddedMembers(
            invited=len(added.invited),
            already_members=len(added.already_members),
            rejected=rejected,
        )

    @patch("/{member_id:uuid}", summary="Correct a member's address (re-inviting them) or change their role")
    async def change(
        self, account_id: uuid.UUID, member_id: uuid.UUID, actor_id: ActorId, data: MemberChanges, service: Service
    ) -> dict[str, Any]:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            member: dict[str, Any] = {}
            if data.email is not None:
                member = await members.correct_email(
                    session,
                    service.outbox,
                    who,
                    account_id,
                    member_id,
                    data.email,
                    now(),
                    limits=member_limits(service.settings),
                )
            if data.role is not None:
                member = await members.set_role(session, who, account_id, member_id, data.role, now())
            return member or await members.read_member(session, who, account_id, member_id)

    @delete("/{member_id:uuid}", status_code=204, summary="Remove a member from the account")
    async def remove(self, account_id: uuid.UUID, member_id: uuid.UUID, actor_id: ActorId, service: Service) -> None:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            await members.remove_member(session, service.outbox, who, account_id, member_id, now())

    @post("/{member_id:uuid}/invitation", status_code=202, summary="Send the invitation again")
    async def reinvite(
        self, account_id: uuid.UUID, member_id: uuid.UUID, actor_id: ActorId, service: Service
    ) -> Accepted:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            limits = member_limits(service.settings)
            await members.resend_invitation(session, service.outbox, who, account_id, member_id, now(), limits=limits)
        return Accepted()

    @post("/{member_id:uuid}/password-reset", status_code=202, summary="Mail the member a password reset link")
    async def reset(self, account_id: uuid.UUID, member_id: uuid.UUID, actor_id: ActorId, service: Service) -> Accepted:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            limits = member_limits(service.settings)
            await members.send_password_reset(session, service.outbox, who, account_id, member_id, now(), limits=limits)
        return Accepted()


class NewApiToken(BaseModel):
    name: Name = Field(description="what the token is for, to tell it apart (the rule of every name)")
    scope: Literal["read", "read_write"] = Field(description="`read`: GET and HEAD only")
    expires_in_days: int | None = Field(None, ge=1, le=366, description="none: until revoked")


class ApiToken(BaseModel):
    token_id: uuid.UUID
    name: str
    scope: Literal["read", "read_write"]
    prefix: str = Field(description="the token's first characters, to recognise it; not a secret")
    status: Literal["active", "expired", "revoked"]
    created_by: uuid.UUID = Field(description="the manager it acts as")
    created_at: datetime
    last_used_at: datetime | None = Field(description="to the minute")
    expires_at: datetime | None


class CreatedApiToken(ApiToken):
    token: str = Field(description="the token itself, shown this once: only its hash is kept")


class ApiTokensController(Controller):
    """An account's personal API tokens, for its managers (accounts.api_tokens)."""

    path = "/internal/accounts/{account_id:uuid}/api-tokens"
    tags = ["api tokens"]

    @post("/", status_code=201, summary="Make a token acting as the manager on this account; answers it once")
    async def create(
        self, account_id: uuid.UUID, actor_id: ActorId, data: NewApiToken, service: Service
    ) -> CreatedApiToken:
        lifetime = None if data.expires_in_days is None else timedelta(days=data.expires_in_days)
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            made = await api_tokens.create_token(
                session, who, account_id, data.name, data.scope, now(), lifetime=lifetime
            )
        return CreatedApiToken(**made)

    @get("/", summary="The account's tokens that are not revoked, newest first (never the token)")
    async def index(self, account_id: uuid.UUID, actor_id: ActorId, service: Service) -> list[ApiToken]:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            return [ApiToken(**token) for token in await api_tokens.list_tokens(session, who, account_id, now())]

    @delete("/{token_id:uuid}", status_code=204, summary="Revoke a token (any manager of the account)")
    async def revoke(self, account_id: uuid.UUID, token_id: uuid.UUID, actor_id: ActorId, service: Service) -> None:
        async with service.db.transaction() as session:
            who = await access.actor(session, actor_id)
            await api_tokens.revoke_token(session, who, account_id, token_id, now())


class TokenIdentityResponse(IdentityResponse):
    token_id: uuid.UUID
    account_id: uuid.UUID = Field(description="the one account the token acts on (memberships names only it)")
    scope: Literal["read", "read_write"]


ApiTokenHeader = Annotated[
    str, Parameter(header="X-Api-Token", max_length=200, description="the token, in a header: never in a URL")
]


class TokenIdentityController(Controller):
    path = "/internal/api-tokens"
    tags = ["api tokens"]

    @get("/identity", summary="The identity a personal API token acts with, if it still works")
    async def identity(self, token: ApiTokenHeader, service: Service) -> TokenIdentityResponse:
        async with service.db.transaction() as session:
            identity = await api_tokens.token_identity(session, token, now())
        if identity is None:
            raise NotFound
        return TokenIdentityResponse(**vars(identity))


class TemplateController(Controller):
    path = "/internal/member-import-template"
    tags = ["members"]

    @get("/", summary="The CSV template for member imports", media_type="text/csv; charset=utf-8")
    async def template(self) -> Response[bytes]:
        return Response(
            template_bytes(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="visiopass-members.csv"'},
        )


class Organiser(BaseModel):
    user_id: uuid.UUID
    name: str
    email: str


class NewOrganiser(BaseModel):
    email: EmailInput


class OrganisersController(Controller):
    path = "/internal/organisers"
    tags = ["organisers"]

    @get("/", summary="The organisers, by name (organisers only)")
    async def index(self, actor_id: ActorId, service: Service) -> list[Organiser]:
        async with service.db.transaction() as session:
            listed = await access.list_organisers(session, await access.actor(session, actor_id))
        return [Organiser(**row) for row in listed]

    @post("/", status_code=204, summary="Make the identity using this address an organiser (organisers only)")
    async def grant_by_email(self, actor_id: ActorId, data: NewOrganiser, service: Service) -> None:
        async with service.db.transaction() as session:
            await access.grant_organiser_by_email(session, await access.actor(session, actor_id), data.email)

    @put("/{user_id:uuid}", status_code=204, summary="Make a user an organiser (organisers only)")
    async def grant(self, user_id: uuid.UUID, actor_id: ActorId, service: Service) -> None:
        async with service.db.transaction() as session:
            await access.set_organiser(session, await access.actor(session, actor_id), user_id, True)

    @delete("/{user_id:uuid}", status_code=204, summary="Take the role away (organisers only; one must remain)")
    async def revoke(self, user_id: uuid.UUID, actor_id: ActorId, service: Service) -> None:
        async with service.db.transaction() as session:
            await access.set_organiser(session, await access.actor(session, actor_id), user_id, False)


CONTROLLERS = [
    AccountsController,
    SessionsController,
    UsersController,
    LinksController,
    AccountController,
    MembersController,
    TemplateController,
    OrganisersController,
    ApiTokensController,
    TokenIdentityController,
]
EXCEPTION_HANDLERS = {AccountsError: problem, IntegrityError: conflict}
