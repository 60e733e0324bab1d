"""Public JSON API, version 1."""

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from pydantic import BaseModel, EmailStr, Field

from gateway import pagination
from gateway.idempotency import IDEMPOTENT
from gateway.limits import RATE_LIMIT
from gateway.openapi import BEARER, SESSION_OR_API_TOKEN, problems
from gateway.sessions import Sessions
from gateway.source import client_address
from gateway.upstream import Upstream, relay
from servicekit.http import ProblemError
from servicekit.inputs import EmailInput, Name, Password, Token, text
from servicekit.logs import security_event

# Every text field is bounded by its column and free of control characters (servicekit.inputs).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


class SignUp(BaseModel):
    institution_name: Name = Field(description="Name of the school or company")
    institution_kind: Literal["school", "company", "other"]
    contact_name: Name = Field(description="The account manager's name")
    email: EmailStr
    password: Password = Field(description="12 characters or more; a passphrase")
    language: Literal["fr", "en"] = "fr"
    institution_identifier: text(64) | None = Field(
        None, description="UAI (7 digits + check letter) for a school, SIRET (14 digits) for a company"
    )
    city: text(100) | None = None
    postal_address: text(500, multiline=True) | None = None


class SignUpAccepted(BaseModel):
    account_id: uuid.UUID
    status: Literal["pending_verification"]


class Verification(BaseModel):
    token: Token


class Verified(BaseModel):
    account_id: uuid.UUID
    status: Literal["verified"]


class ProfileChanges(BaseModel):
    name: Name | None = None
    city: text(100) | None = None
    postal_address: text(500, multiline=True) | None = None
    contact_name: Name | None = None
    phone: text(64) | None = Field(None, description="French or E.164 number")
    billing_address: text(500, multiline=True) | None = None
    vat_number: text(30) | None = Field(None, description="EU VAT number")


class Closure(BaseModel):
    password: Password = Field(description="the closing manager's password")


class AccountsApi(Controller):
    path = "/api/v1/accounts"
    tags = ["accounts"]

    @post(
        "/",
        status_code=201,
        summary="Open an institution's account",
        responses=problems(409, 413, 429),
        opt=RATE_LIMIT("mail"),
        **IDEMPOTENT,
    )
    async def sign_up(self, data: SignUp, request: Request[Any, Any, Any], accounts: Upstream) -> Response[Any]:
        body = data.model_dump(mode="json") | {"source": client_address(request)}  # sign-ups are limited per source
        return relay(await accounts.call("POST", "/internal/accounts/", body))

    @get(
        "/{account_id:uuid}/profile",
        summary="The institution's profile (its members and organisers)",
        responses=problems(401, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def profile(self, account_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/profile"
        return relay(await accounts.call("GET", path, actor=identity["user_id"]))

    @patch(
        "/{account_id:uuid}/profile",
        summary="Edit the institution's profile (its managers)",
        responses=problems(401, 403, 404, 409, 413),
        security=SESSION_OR_API_TOKEN,
    )
    async def edit_profile(
        self, account_id: uuid.UUID, data: ProfileChanges, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/profile"
        changes = data.model_dump(exclude_unset=True)
        return relay(await accounts.call("PATCH", path, changes, actor=identity["user_id"]))

    @post(
        "/verification/resend",
        status_code=202,
        summary="Mail a new verification link (same answer always)",
        opt=RATE_LIMIT("mail"),
        responses=problems(413, 429),
    )
    async def resend(self, data: "ResetRequest", request: Request[Any, Any, Any], accounts: Upstream) -> Response[Any]:
        body = {"email": data.email, "source": client_address(request)}
        return relay(await accounts.call("POST", "/internal/accounts/verification/resend", body))

    @post(
        "/verification",
        status_code=200,
        summary="Confirm the account manager's email with the mailed token",
        responses=problems(413),
    )
    async def verify(self, data: Verification, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/accounts/verification", data.model_dump()))

    @get(
        "/{account_id:uuid}/export",
        summary="GDPR export: everything accounts holds on the account (its managers)",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def export(self, account_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        response = relay(
            await accounts.call("GET", f"/internal/accounts/{account_id}/export", actor=identity["user_id"])
        )
        if response.status_code == 200:
            response.headers["Content-Disposition"] = f'attachment; filename="visiopass-account-{account_id}.json"'
        return response

    @post(
        "/{account_id:uuid}/closure",
        status_code=200,
        summary="Close the account and erase its personal data",
        opt=RATE_LIMIT("login"),
        responses=problems(401, 403, 404, 409, 413, 429),
        security=BEARER,
    )
    async def close(
        self, account_id: uuid.UUID, data: Closure, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/closure"
        return relay(await accounts.call("POST", path, data.model_dump(), actor=identity["user_id"]))


class ResetRequest(BaseModel):
    email: EmailInput


class ResetConfirmation(BaseModel):
    token: Token
    new_password: Password


class PasswordResetsApi(Controller):
    path = "/api/v1/password-resets"
    tags = ["accounts"]

    @post(
        "/",
        status_code=202,
        summary="Forgot password: mails a reset link if the account exists (same answer)",
        opt=RATE_LIMIT("mail"),
        responses=problems(413, 429),
    )
    async def request_reset(
        self, data: ResetRequest, request: Request[Any, Any, Any], accounts: Upstream
    ) -> Response[Any]:
        body = {"email": data.email, "source": client_address(request)}
        return relay(await accounts.call("POST", "/internal/password-resets/", body))

    @post("/confirmation", status_code=200, summary="Set a new password with the mailed token", responses=problems(413))
    async def reset(self, data: ResetConfirmation, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/password-resets/confirmation", data.model_dump()))


class Credentials(BaseModel):
    email: EmailInput
    password: Password


class SessionsApi(Controller):
    path = "/api/v1/sessions"
    tags = ["sessions"]

    @post(
        "/",
        status_code=201,
        summary="Log in: a session token for `Authorization: Bearer` (8 hours)",
        opt=RATE_LIMIT("login"),
        responses=problems(401, 413, 429),
    )
    async def log_in(
        self, data: Credentials, request: Request[Any, Any, Any], accounts: Upstream, sessions: Sessions
    ) -> Response[Any]:
        body = {"email": data.email, "password": data.password, "source": client_address(request)}
        response = await accounts.call("POST", "/internal/sessions", body)
        if response.status_code != 201:
            refused = relay(response)
            if retry_after := response.json().get("retry_after"):
                refused.headers["Retry-After"] = str(retry_after)
            return refused
        opened = response.json()
        remaining = datetime.fromisoformat(opened["expires_at"]) - datetime.now(UTC)  # accounts answers in UTC
        expires_in = int(min(remaining, sessions.lifetime).total_seconds())
        token = sessions.issue(uuid.UUID(opened["session_id"]))
        return Response({"token": token, "expires_in": expires_in, "identity": opened["identity"]}, status_code=201)

    @delete(
        "/current", status_code=204, summary="Log out: end this session", responses=problems(401, 403), security=BEARER
    )
    async def log_out(self, identity: dict[str, Any], accounts: Upstream) -> Response[None]:
        return relay(await accounts.call("DELETE", f"/internal/sessions/{identity['session_id']}"))

    @post(
        "/logout-everywhere",
        status_code=204,
        summary="End every session of the caller, on every device",
        responses=problems(401, 403),
        security=BEARER,
    )
    async def log_out_everywhere(self, identity: dict[str, Any], accounts: Upstream) -> None:
        relay(await accounts.call("POST", f"/internal/users/{identity['user_id']}/logout-everywhere"))


class MeChanges(BaseModel):
    name: Name | None = None
    language: Literal["fr", "en"] | None = Field(None, description="the language of one's emails")


class PasswordChange(BaseModel):
    current_password: Password
    new_password: Password


class EmailChange(BaseModel):
    password: Password
    new_email: EmailInput


class MeApi(Controller):
    path = "/api/v1/me"
    tags = ["sessions"]

    @get(
        "/",
        summary="Who the session belongs to: identity, language, verification state, roles per institution",
        description="With an API token: its creator, its one account (as manager), `token_id` and `scope`.",
        responses=problems(401),
        security=SESSION_OR_API_TOKEN,
    )
    async def me(self, identity: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in identity.items() if key != "session_id"}

    @patch(
        "/",
        summary="Change one's name or the language of one's emails",
        responses=problems(401, 403, 413),
        security=BEARER,
    )
    async def update(self, data: MeChanges, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        path = f"/internal/users/{identity['user_id']}"
        return relay(await accounts.call("PATCH", path, data.model_dump(exclude_unset=True)))

    @post(
        "/password",
        status_code=200,
        summary="Change one's password; the caller's other sessions end",
        opt=RATE_LIMIT("login"),
        responses=problems(401, 403, 413, 429),
        security=BEARER,
    )
    async def change_password(
        self, data: PasswordChange, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        body = {**data.model_dump(), "session_id": identity["session_id"]}
        return relay(await accounts.call("POST", f"/internal/users/{identity['user_id']}/password", body))

    @post(
        "/email-change",
        status_code=202,
        summary="Change one's email: mails a confirmation link to the new address",
        opt=RATE_LIMIT("login"),
        responses=problems(401, 403, 409, 413, 429),
        security=BEARER,
    )
    async def change_email(self, data: EmailChange, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        path = f"/internal/users/{identity['user_id']}/email-change"
        return relay(await accounts.call("POST", path, data.model_dump()))


class EmailChangesApi(Controller):
    path = "/api/v1/email-changes"
    tags = ["sessions"]

    @post(
        "/confirmation",
        status_code=200,
        summary="Confirm a new email address with the mailed token",
        responses=problems(409, 413),
    )
    async def confirm(self, data: Verification, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/email-changes/confirmation", data.model_dump()))

    @post(
        "/reversal",
        status_code=200,
        summary='"This was not me": undo an email change with the token mailed to the old address',
        description="Restores the old address, ends every session, voids the password and mails a reset link.",
        responses=problems(413),
    )
    async def revert(self, data: Verification, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/email-changes/reversal", data.model_dump()))


class InvitationsApi(Controller):
    path = "/api/v1/invitations"
    tags = ["members"]

    @post(
        "/acceptance",
        status_code=200,
        summary="Accept an invitation: set one's password with the mailed token",
        responses=problems(409, 413),
    )
    async def accept(self, data: ResetConfirmation, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/invitations/acceptance", data.model_dump()))


class JoinRequestsApi(Controller):
    """An institution asks someone who already has an identity to join it; nothing happens until they accept."""

    path = "/api/v1/join-requests"
    tags = ["members"]

    @post(
        "/acceptance",
        status_code=200,
        summary="Accept to join the institution whose mailed request this is (its token)",
        responses=problems(400, 413),
    )
    async def accept(self, data: Verification, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/join-requests/acceptance", data.model_dump()))


class MyInvitationsApi(Controller):
    """The institutions asking the signed-in person to join, and their answer."""

    path = "/api/v1/me/invitations"
    tags = ["sessions"]

    @get(
        "/",
        summary="The institutions asking you to join, awaiting your answer",
        responses=problems(401, 403),
        security=BEARER,
    )
    async def pending(self, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("GET", f"/internal/users/{identity['user_id']}/invitations"))

    @post(
        "/{account_id:uuid}/acceptance",
        status_code=200,
        summary="Accept to join the institution",
        responses=problems(401, 403, 404),
        security=BEARER,
    )
    async def accept(self, account_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        path = f"/internal/users/{identity['user_id']}/invitations/{account_id}/acceptance"
        return relay(await accounts.call("POST", path))

    @delete(
        "/{account_id:uuid}",
        status_code=204,
        summary="Decline to join the institution",
        responses=problems(401, 403, 404),
        security=BEARER,
    )
    async def decline(self, account_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[None]:
        path = f"/internal/users/{identity['user_id']}/invitations/{account_id}"
        return relay(await accounts.call("DELETE", path))


class NewMember(BaseModel):
    name: text(400, strip=False)
    email: text(400, strip=False)


class NewMembers(BaseModel):
    members: list[NewMember] = Field(min_length=1, max_length=200)


class MemberChanges(BaseModel):
    email: EmailInput | None = Field(None, description="corrects the address of a member who has not accepted yet")
    role: Literal["manager", "member"] | None = None


class MembersApi(Controller):
    path = "/api/v1/accounts/{account_id:uuid}/members"
    tags = ["members"]

    @get(
        "/",
        summary="The account's members (a page, by name) and their counts",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def page(
        self,
        account_id: uuid.UUID,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        accounts: Upstream,
        limit: pagination.Limit = pagination.DEFAULT_LIMIT,
        offset: pagination.Offset = 0,
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/members?limit={limit}&offset={offset}"
        answer = await accounts.call("GET", path, actor=identity["user_id"])
        if answer.status_code != 200:
            return relay(answer)
        members = answer.json()
        return pagination.page(request, members, members["counts"]["total"], limit, offset)

    @post(
        "/",
        status_code=200,
        summary="Add one or several members; each is checked and problems reported",
        **IDEMPOTENT,
        responses=problems(401, 403, 404, 409, 413, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def add(
        self, account_id: uuid.UUID, data: NewMembers, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/members"
        return relay(await accounts.call("POST", path, data.model_dump(), actor=identity["user_id"]))

    @post(
        "/import",
        status_code=200,
        summary="Import members from a CSV file (5 MB at most)",
        **IDEMPOTENT,
        description="The body is the file itself (`text/csv`), or a `multipart/form-data` form with the file in "
        "its `file` field. Rows with a problem are reported with their line and left out.",
        request_max_body_size=MAX_UPLOAD_BYTES + 64 * 1024,
        responses=problems(401, 403, 404, 409, 413, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def import_csv(
        self, account_id: uuid.UUID, request: Request[Any, Any, Any], identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)  # before reading a byte of the file
        content = await uploaded_file(request)
        path = f"/internal/accounts/{account_id}/members/import"
        return relay(
            await accounts.call("POST", path, actor=identity["user_id"], content=content, content_type="text/csv")
        )

    @patch(
        "/{member_id:uuid}",
        summary="Correct a member's address (re-inviting them) or change their role",
        responses=problems(401, 403, 404, 409, 413, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def change(
        self,
        account_id: uuid.UUID,
        member_id: uuid.UUID,
        data: MemberChanges,
        identity: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/members/{member_id}"
        return relay(await accounts.call("PATCH", path, data.model_dump(exclude_none=True), actor=identity["user_id"]))

    @delete(
        "/{member_id:uuid}",
        status_code=204,
        summary="Remove a member from the account",
        responses=problems(401, 403, 404, 409),
        security=SESSION_OR_API_TOKEN,
    )
    async def remove(
        self, account_id: uuid.UUID, member_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream
    ) -> Response[None]:
        path = f"/internal/accounts/{account_id}/members/{member_id}"
        return relay(await accounts.call("DELETE", path, actor=identity["user_id"]))

    @post(
        "/{member_id:uuid}/invitation",
        status_code=202,
        summary="Send the invitation again",
        opt=RATE_LIMIT("mail"),
        responses=problems(401, 403, 404, 409, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def reinvite(
        self, account_id: uuid.UUID, member_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/members/{member_id}/invitation"
        return relay(await accounts.call("POST", path, actor=identity["user_id"]))

    @post(
        "/{member_id:uuid}/password-reset",
        status_code=202,
        summary="Mail the member a password reset link",
        opt=RATE_LIMIT("mail"),
        responses=problems(401, 403, 404, 409, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def reset_password(
        self, account_id: uuid.UUID, member_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/members/{member_id}/password-reset"
        return relay(await accounts.call("POST", path, actor=identity["user_id"]))


def ensure_manager(identity: dict[str, Any], account_id: uuid.UUID) -> None:
    """Refuse early, as accounts would (it still decides), whoever does not manage the account: "not found" to
    those who may not see it, "forbidden" to its members and to organisers. So a CSV file is read and checked
    only for the account's managers, and nobody else learns anything from its problems."""
    role = identity.get("memberships", {}).get(str(account_id))
    if role is None and not identity.get("is_organiser"):
        security_event("access_denied", outcome="not_found", user_id=identity.get("user_id"), account_id=account_id)
        raise ProblemError(404, "not_found", "Not found")
    if role != "manager":
        security_event("access_denied", outcome="forbidden", user_id=identity.get("user_id"), account_id=account_id)
        raise ProblemError(403, "forbidden", "Forbidden", "Only the account's managers can do this.")


def file_too_large() -> ProblemError:
    return ProblemError(
        413, "file_too_large", "File too large", f"The file is larger than {MAX_UPLOAD_BYTES >> 20} MB."
    )


async def uploaded_file(request: Request[Any, Any, Any]) -> bytes:
    """The uploaded file: the body itself, or the `file` field of a multipart form (as browsers send it)."""
    try:
        if request.content_type[0] != RequestEncodingType.MULTI_PART:
            content = await request.body()
        else:
            upload = (await request.form()).get("file")
            if isinstance(upload, UploadFile):
                content = await upload.read()
                await upload.close()
            elif isinstance(upload, str):
                content = upload.encode()
            else:
                raise ProblemError(400, "file_missing", "No file", "Send the file in the form's `file` field.")
    except RequestEntityTooLarge:
        raise file_too_large() from None
    if len(content) > MAX_UPLOAD_BYTES:
        raise file_too_large()
    return content


class MemberImportTemplateApi(Controller):
    path = "/api/v1/member-import-template"
    tags = ["members"]

    @get(
        "/",
        summary="The CSV template for member imports (UTF-8 with BOM, semicolons)",
        media_type="text/csv",
        responses=problems(),
    )
    async def template(self, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("GET", "/internal/member-import-template"), headers=["Content-Disposition"])


class NewOrganiser(BaseModel):
    email: EmailInput


class OrganisersApi(Controller):
    path = "/api/v1/organisers"
    tags = ["organisers"]

    @get("/", summary="The organisers, by name (organisers only)", responses=problems(401, 403), security=BEARER)
    async def index(self, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("GET", "/internal/organisers", actor=identity["user_id"]))

    @post(
        "/",
        status_code=204,
        summary="Make the identity using this address an organiser (organisers only)",
        responses=problems(401, 403, 404, 413),
        security=BEARER,
    )
    async def grant_by_email(self, data: NewOrganiser, identity: dict[str, Any], accounts: Upstream) -> Response[None]:
        return relay(await accounts.call("POST", "/internal/organisers", data.model_dump(), actor=identity["user_id"]))

    @put(
        "/{user_id:uuid}",
        status_code=204,
        summary="Make a user an organiser (organisers only)",
        responses=problems(401, 403, 404),
        security=BEARER,
    )
    async def grant(self, user_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[None]:
        return relay(await accounts.call("PUT", f"/internal/organisers/{user_id}", actor=identity["user_id"]))

    @delete(
        "/{user_id:uuid}",
        status_code=204,
        summary="Take the organiser role away (organisers only; one must remain)",
        responses=problems(401, 403, 404, 409),
        security=BEARER,
    )
    async def revoke(self, user_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[None]:
        return relay(await accounts.call("DELETE", f"/internal/organisers/{user_id}", actor=identity["user_id"]))
