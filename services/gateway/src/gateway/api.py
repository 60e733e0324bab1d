"""Public JSON API, version 1."""

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, patch, post
from pydantic import BaseModel, EmailStr, Field, StringConstraints

from gateway.sessions import Sessions
from gateway.upstream import Upstream, relay

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SignUp(BaseModel):
    institution_name: Name = Field(description="Name of the school or company")
    institution_kind: Literal["school", "company", "other"]
    contact_name: Name = Field(description="The account manager's name")
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=1024, description="12 characters or more; a passphrase")]
    language: Literal["fr", "en"] = "fr"
    institution_identifier: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="UAI (7 digits + check letter) for a school, SIRET (14 digits) for a company"
    )
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    postal_address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class SignUpAccepted(BaseModel):
    account_id: uuid.UUID
    status: Literal["pending_verification"]


class Verification(BaseModel):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class Verified(BaseModel):
    account_id: uuid.UUID
    status: Literal["verified"]


class ProfileChanges(BaseModel):
    name: Name | None = None
    city: Annotated[str, StringConstraints(max_length=100)] | None = None
    postal_address: Annotated[str, StringConstraints(max_length=500)] | None = None
    contact_name: Name | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = Field(None, description="French or E.164 number")
    billing_address: Annotated[str, StringConstraints(max_length=500)] | None = None
    vat_number: Annotated[str, StringConstraints(max_length=30)] | None = Field(None, description="EU VAT number")


class AccountsApi(Controller):
    path = "/api/v1/accounts"
    tags = ["accounts"]

    @post("/", status_code=201, summary="Open an institution's account", responses=None)
    async def sign_up(self, data: SignUp, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/accounts/", data.model_dump(mode="json")))

    @get("/{account_id:uuid}/profile", summary="The institution's profile (its members and organisers)")
    async def profile(self, account_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/profile"
        return relay(await accounts.call("GET", path, actor=identity["user_id"]))

    @patch("/{account_id:uuid}/profile", summary="Edit the institution's profile (its managers)")
    async def edit_profile(
        self, account_id: uuid.UUID, data: ProfileChanges, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/profile"
        changes = data.model_dump(exclude_unset=True)
        return relay(await accounts.call("PATCH", path, changes, actor=identity["user_id"]))

    @post("/verification/resend", status_code=202, summary="Mail a new verification link (same answer always)")
    async def resend(self, data: "ResetRequest", request: Request[Any, Any, Any], accounts: Upstream) -> Response[Any]:
        body = {"email": data.email, "source": client_address(request)}
        return relay(await accounts.call("POST", "/internal/accounts/verification/resend", body))

    @post("/verification", status_code=200, summary="Confirm the account manager's email with the mailed token")
    async def verify(self, data: Verification, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/accounts/verification", data.model_dump()))


class ResetRequest(BaseModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]


class ResetConfirmation(BaseModel):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200)]
    new_password: Annotated[str, Field(min_length=1, max_length=1024)]


class PasswordResetsApi(Controller):
    path = "/api/v1/password-resets"
    tags = ["accounts"]

    @post("/", status_code=202, summary="Forgot password: mails a reset link if the account exists (same answer)")
    async def request_reset(
        self, data: ResetRequest, request: Request[Any, Any, Any], accounts: Upstream
    ) -> Response[Any]:
        body = {"email": data.email, "source": client_address(request)}
        return relay(await accounts.call("POST", "/internal/password-resets/", body))

    @post("/confirmation", status_code=200, summary="Set a new password with the mailed token")
    async def reset(self, data: ResetConfirmation, accounts: Upstream) -> Response[Any]:
        return relay(await accounts.call("POST", "/internal/password-resets/confirmation", data.model_dump()))


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class Credentials(BaseModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SessionsApi(Controller):
    path = "/api/v1/sessions"
    tags = ["sessions"]

    @post("/", status_code=201, summary="Log in: a session token for `Authorization: Bearer` (8 hours)")
    async def log_in(
        self, data: Credentials, request: Request[Any, Any, Any], accounts: Upstream, sessions: Sessions
    ) -> Response[Any]:
        body = {"email": data.email, "password": data.password, "source": client_address(request)}
        response = await accounts.call("POST", "/internal/sessions", body)
        if response.status_code != 200:
            refused = relay(response)
            if retry_after := response.json().get("retry_after"):
                refused.headers["Retry-After"] = str(retry_after)
            return refused
        identity = response.json()
        token = sessions.issue(uuid.UUID(identity["user_id"]), identity["token_version"])
        expires_in = int(sessions.lifetime.total_seconds())
        return Response({"token": token, "expires_in": expires_in, "identity": identity}, status_code=201)

    @post("/logout-everywhere", status_code=204, summary="End every session of the caller, on every device")
    async def log_out_everywhere(self, identity: dict[str, Any], accounts: Upstream) -> None:
        await accounts.call("POST", f"/internal/users/{identity['user_id']}/logout-everywhere")


class MeApi(Controller):
    path = "/api/v1/me"
    tags = ["sessions"]

    @get("/", summary="Who the session belongs to: identity, verification state, roles per institution")
    async def me(self, identity: dict[str, Any]) -> dict[str, Any]:
        return identity
