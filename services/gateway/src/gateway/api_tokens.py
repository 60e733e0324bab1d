"""Personal API tokens of an account, made, listed and revoked by its managers with a person's session (a
token never makes, lists or revokes tokens). accounts keeps them (accounts.api_tokens); what a token may do
once made is decided in `gateway.sessions.api_identity`."""

import uuid
from typing import Any, Literal

from litestar import Controller, Response, delete, get, post
from pydantic import BaseModel, Field

from gateway.openapi import BEARER, problems
from gateway.upstream import Upstream, relay
from servicekit.inputs import Name


class NewApiToken(BaseModel):
    name: Name = Field(description="what the token is for, to tell it apart (e.g. Export comptable)")
    scope: Literal["read", "read_write"] = Field(description="`read`: GET and HEAD only; `read_write`: all it may")
    expires_in_days: int | None = Field(None, ge=1, le=366, description="none: until revoked")


class ApiTokensApi(Controller):
    path = "/api/v1/accounts/{account_id:uuid}/api-tokens"
    tags = ["api tokens"]

    @post(
        "/",
        status_code=201,
        summary="Make a personal API token acting as you on this account; the answer shows it this once",
        description="Use it as `Authorization: Bearer vpat_...` on the routes that list ApiToken. At most 20 "
        "tokens in use per account (409 `token_limit`).",
        responses=problems(401, 403, 404, 409, 413),
        security=BEARER,
    )
    async def create(
        self, account_id: uuid.UUID, data: NewApiToken, identity: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/api-tokens"
        return relay(await accounts.call("POST", path, data.model_dump(), actor=identity["user_id"]))

    @get(
        "/",
        summary="The account's tokens not revoked (active or expired) with their last use; never the token",
        responses=problems(401, 403, 404),
        security=BEARER,
    )
    async def index(self, account_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream) -> Response[Any]:
        path = f"/internal/accounts/{account_id}/api-tokens"
        return relay(await accounts.call("GET", path, actor=identity["user_id"]))

    @delete(
        "/{token_id:uuid}",
        status_code=204,
        summary="Revoke a token (any manager of the account); it stops working within a second",
        responses=problems(401, 403, 404, 409),
        security=BEARER,
    )
    async def revoke(
        self, account_id: uuid.UUID, token_id: uuid.UUID, identity: dict[str, Any], accounts: Upstream
    ) -> Response[None]:
        path = f"/internal/accounts/{account_id}/api-tokens/{token_id}"
        return relay(await accounts.call("DELETE", path, actor=identity["user_id"]))
