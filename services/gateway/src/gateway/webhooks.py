"""Outgoing webhooks, JSON API (docs/webhooks.md): an account's managers register HTTPS endpoints that the notifier
calls, signed, when one of the account's events happens (an enrolment confirmed or cancelled, a participation link
issued, an invoice issued, tokens credited).

Who may do what is decided here, before the notifier is asked (it keeps the endpoints, signs and delivers, and
knows nobody's roles): the account's managers only; its members and organisers 403, anyone else 404
(`gateway.api.ensure_manager`, the convention of every manager-only route). A personal API token acts as its
manager on its own account; a `read` token only reads (gateway.sessions.api_identity). The notifier answers only
for that account: an endpoint id of another account is not found there.

Who registered an endpoint (`created_by_email`, who is mailed when it is disabled) and the language of that mail are
the caller's, from their identity, never from the body. An endpoint's signing secret is in two answers only, the
creation and a rotation, and never again: these routes are not idempotent (a replayed answer would keep the secret
in the gateway's store), and nothing here logs a body."""

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from pydantic import BaseModel, Field

from gateway import pagination
from gateway.api import ensure_manager
from gateway.openapi import SESSION_OR_API_TOKEN, problems
from gateway.upstream import Upstream, relay
from servicekit.inputs import Offset, text

MAX_EVENTS = 20
EVENTS_DESCRIPTION = (
    "event types (`GET /api/v1/webhook-event-types`): enrolment.confirmed, enrolment.cancelled, "
    "participation_link.issued, invoice.issued, tokens.credited"
)
WebhookUrl = text(2000, min_length=1)
EventType = text(64, min_length=1)
DeliveriesPage = Annotated[int, Parameter(ge=1, le=100, description="how many at most (1 to 100)")]
DeliveryStatus = Literal["pending", "sent", "failed"]


class NewWebhook(BaseModel):
    url: WebhookUrl = Field(description="https:// only, without user or password")
    events: list[EventType] = Field(min_length=1, max_length=MAX_EVENTS, description=EVENTS_DESCRIPTION)
    description: text(200) | None = Field(None, description="what the endpoint is for, to tell it apart")


class WebhookChanges(BaseModel):
    url: WebhookUrl | None = Field(None, description="https:// only, without user or password")
    events: list[EventType] | None = Field(None, min_length=1, max_length=MAX_EVENTS, description=EVENTS_DESCRIPTION)
    description: text(200) | None = None
    status: Literal["active", "disabled"] | None = Field(
        None, description="`active` re-enables an endpoint disabled after repeated failures"
    )


class SecretRotation(BaseModel):
    overlap_hours: int = Field(
        24, ge=0, le=72, description="how long the old secret still signs too (both signatures are sent)"
    )


def endpoints_path(account_id: uuid.UUID, suffix: str = "") -> str:
    return f"/internal/accounts/{account_id}/webhooks{suffix}"


class WebhookEventTypesApi(Controller):
    path = "/api/v1/webhook-event-types"
    tags = ["webhooks"]

    @get("/", summary="The event types an endpoint may subscribe to", responses=problems())
    async def event_types(self, notifier: Upstream) -> Response[Any]:
        return relay(await notifier.call("GET", "/internal/webhook-event-types"))


class WebhooksApi(Controller):
    path = "/api/v1/accounts/{account_id:uuid}/webhooks"
    tags = ["webhooks"]

    @get(
        "/",
        summary="The account's webhook endpoints (its managers); never their secrets",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def index(self, account_id: uuid.UUID, identity: dict[str, Any], notifier: Upstream) -> Response[Any]:
        ensure_manager(identity, account_id)
        return relay(await notifier.call("GET", endpoints_path(account_id), actor=identity["user_id"]))

    @post(
        "/",
        status_code=201,
        summary="Register an HTTPS endpoint for some events; the answer shows its signing secret this once",
        description="Each delivery is a JSON body signed with HMAC-SHA256 of `<t>.<body>` under the secret, in "
        "the header `Visiopass-Signature: t=<unix time>,v1=<hex>` (docs/webhooks.md); retried with backoff and "
        "disabled after repeated failure (the manager who registered it is mailed). At most 10 endpoints per "
        "account (409).",
        responses=problems(401, 403, 404, 409, 413),
        security=SESSION_OR_API_TOKEN,
    )
    async def create(
        self, account_id: uuid.UUID, data: NewWebhook, identity: dict[str, Any], notifier: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        body = data.model_dump() | {"created_by_email": identity["email"], "language": identity.get("language") or "fr"}
        return relay(await notifier.call("POST", endpoints_path(account_id), body, actor=identity["user_id"]))

    @get(
        "/{webhook_id:uuid}",
        summary="One webhook endpoint: its URL, events, status (and why it was disabled)",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def show(
        self, account_id: uuid.UUID, webhook_id: uuid.UUID, identity: dict[str, Any], notifier: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = endpoints_path(account_id, f"/{webhook_id}")
        return relay(await notifier.call("GET", path, actor=identity["user_id"]))

    @patch(
        "/{webhook_id:uuid}",
        summary="Change an endpoint's URL, events or description, or re-enable it (`status`: `active`)",
        responses=problems(401, 403, 404, 409, 413),
        security=SESSION_OR_API_TOKEN,
    )
    async def change(
        self,
        account_id: uuid.UUID,
        webhook_id: uuid.UUID,
        data: WebhookChanges,
        identity: dict[str, Any],
        notifier: Upstream,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = endpoints_path(account_id, f"/{webhook_id}")
        changes = data.model_dump(exclude_unset=True)
        return relay(await notifier.call("PATCH", path, changes, actor=identity["user_id"]))

    @delete(
        "/{webhook_id:uuid}",
        status_code=204,
        summary="Delete an endpoint: nothing more is sent to it",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def remove(
        self, account_id: uuid.UUID, webhook_id: uuid.UUID, identity: dict[str, Any], notifier: Upstream
    ) -> Response[None]:
        ensure_manager(identity, account_id)
        path = endpoints_path(account_id, f"/{webhook_id}")
        return relay(await notifier.call("DELETE", path, actor=identity["user_id"]))

    @post(
        "/{webhook_id:uuid}/rotate-secret",
        status_code=200,
        summary="A new signing secret, shown this once; the old one still signs for `overlap_hours` (0 to 72)",
        responses=problems(401, 403, 404, 409, 413),
        security=SESSION_OR_API_TOKEN,
    )
    async def rotate_secret(
        self,
        account_id: uuid.UUID,
        webhook_id: uuid.UUID,
        identity: dict[str, Any],
        notifier: Upstream,
        data: SecretRotation | None = None,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = endpoints_path(account_id, f"/{webhook_id}/rotate-secret")
        body = (data or SecretRotation()).model_dump()
        return relay(await notifier.call("POST", path, body, actor=identity["user_id"]))

    @post(
        "/{webhook_id:uuid}/test",
        status_code=202,
        summary="Send the endpoint a test event (`ping`), delivered and logged like the others",
        responses=problems(401, 403, 404, 409),
        security=SESSION_OR_API_TOKEN,
    )
    async def send_test(
        self, account_id: uuid.UUID, webhook_id: uuid.UUID, identity: dict[str, Any], notifier: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = endpoints_path(account_id, f"/{webhook_id}/test")
        return relay(await notifier.call("POST", path, actor=identity["user_id"]))

    @get(
        "/{webhook_id:uuid}/deliveries",
        summary="The endpoint's deliveries, newest first: status, attempts, the HTTP status and error of the last",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def deliveries(
        self,
        account_id: uuid.UUID,
        webhook_id: uuid.UUID,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        notifier: Upstream,
        limit: DeliveriesPage = 20,
        offset: Offset = 0,
        status: DeliveryStatus | None = None,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        query = f"?limit={limit}&offset={offset}" + (f"&status={status}" if status else "")
        path = endpoints_path(account_id, f"/{webhook_id}/deliveries{query}")
        answer = await notifier.call("GET", path, actor=identity["user_id"])
        if answer.status_code != 200:
            return relay(answer)
        listing = answer.json()
        return pagination.page(request, {"deliveries": listing["deliveries"]}, listing["total"], limit, offset)
