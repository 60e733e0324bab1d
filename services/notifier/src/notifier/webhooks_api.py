"""Internal HTTP API of the outgoing webhooks (docs/webhooks.md), called by the gateway once it has checked that the
caller manages the account: every route is scoped by account, and an endpoint of another account is not found.

A signing secret is returned twice in an endpoint's life at most: when it is created, and when its secret is
rotated; never listed, never logged. Refusals are problem details with stable codes: `invalid_url`,
`invalid_events` (400, `field` names the field), `too_many_endpoints` (409), `not_found` (404),
`webhooks_not_configured` (503: no NOTIFIER_WEBHOOK_SECRET_KEYS), and servicekit's `invalid_request`/`invalid_body`
for a body that breaks its types."""

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter
from pydantic import BaseModel, Field
from sqlalchemy import delete as delete_rows
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.secrets import Keyring
from notifier import webhooks
from notifier.models import deliveries, webhook_endpoints
from notifier.settings import NotifierSettings
from servicekit.http import ProblemError
from servicekit.inputs import EmailInput, Offset, text
from servicekit.runtime import Service

EventNames = Annotated[list[text(100)], Field(max_length=20)]  # type: ignore[valid-type]
Url = text(10_000, min_length=1)  # checked further by `checked_url`, with its own code
Description = text(500)
ManagerEmail = Annotated[EmailInput, Field(pattern=r"^[^@\s]+@[^@\s]+$")]


class EndpointInput(BaseModel):
    url: Url  # type: ignore[valid-type]
    events: EventNames
    description: Description | None = None  # type: ignore[valid-type]
    created_by_email: ManagerEmail  # type: ignore[valid-type]
    language: Literal["fr", "en"] = "fr"


class EndpointChange(BaseModel):
    url: Url | None = None  # type: ignore[valid-type]
    events: EventNames | None = None
    description: Description | None = None  # type: ignore[valid-type]
    status: Literal["active", "disabled"] | None = None


class RotationInput(BaseModel):
    overlap_hours: Annotated[int, Field(ge=0, le=72)] = 24


def _refused(code: str, field: str, detail: str) -> ProblemError:
    title = {"invalid_url": "Invalid URL", "invalid_events": "Invalid events"}[code]
    return ProblemError(400, code, title, detail, field=field)


def checked_url(url: str, settings: NotifierSettings) -> str:
    if len(url) > webhooks.MAX_URL_LENGTH:
        raise _refused("invalid_url", "url", f"The URL is {webhooks.MAX_URL_LENGTH} characters at most.")
    if any(char.isspace() for char in url):
        raise _refused("invalid_url", "url", "The URL cannot contain spaces.")
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decoded (IDNA) on demand: may raise too
    except (httpx.InvalidURL, ValueError):  # ValueError: a host that is not valid IDNA
        raise _refused("invalid_url", "url", "This is not a URL.") from None
    if parsed.scheme != "https":
        raise _refused("invalid_url", "url", "The URL must be https.")
    if not host:
        raise _refused("invalid_url", "url", "The URL must name a host.")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise _refused("invalid_url", "url", "The URL's port must be between 1 and 65535.")
    if parsed.userinfo:
        raise _refused("invalid_url", "url", "The URL cannot hold a user name or password.")
    if parsed.fragment or "#" in url:
        raise _refused("invalid_url", "url", "The URL cannot have a fragment (#...).")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not settings.webhook_allow_private_networks and not webhooks.is_public(str(literal)):
        raise _refused("invalid_url", "url", "The URL points to a private or reserved address.")
    return url


def checked_events(events: list[str]) -> list[str]:
    unknown = [name for name in events if name not in webhooks.EVENT_TYPES]
    if unknown:
        known = ", ".join(webhooks.EVENT_TYPES)
        raise _refused("invalid_events", "events", f"Unknown event type(s) {', '.join(unknown)}; known: {known}.")
    if not events:
        raise _refused("invalid_events", "events", "Choose at least one event type.")
    return [name for name in webhooks.EVENT_TYPES if name in events]  # in a stable order, each once


def _keyring(service: Service) -> Keyring:
    keyring = _settings(service).webhook_keyring()
    if keyring is None:
        raise ProblemError(
            503, "webhooks_not_configured", "Webhooks are not configured", "NOTIFIER_WEBHOOK_SECRET_KEYS is unset."
        )
    return keyring


def _settings(service: Service) -> NotifierSettings:
    assert isinstance(service.settings, NotifierSettings)
    return service.settings


def shown(endpoint: Any, now: datetime | None = None) -> dict[str, Any]:
    """What the API shows of an endpoint: never its secret."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "secret_rotation_ends_at": webhooks.rotation_ends_at(endpoint, now or datetime.now(UTC)),
    }


async def _endpoint(session: AsyncSession, account_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False):  # type: ignore[no-untyped-def]
    query = select(webhook_endpoints).where(
        webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.account_id == account_id
    )
    found = (await session.execute(query.with_for_update() if lock else query)).first()
    if found is None:
        raise ProblemError(404, "not_found", "Not found", "No such webhook endpoint.")
    return found


DeliveryStatus = Literal["pending", "sent", "failed"]


class WebhooksController(Controller):
    path = "/internal/accounts/{account_id:uuid}/webhooks"
    tags = ["webhooks"]

    @get("/", summary="An account's webhook endpoints (never their secrets)")
    async def list_endpoints(self, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            rows = await session.execute(
                select(webhook_endpoints)
                .where(webhook_endpoints.c.account_id == account_id)
                .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
            )
            return {"endpoints": [shown(row) for row in rows]}

    @post("/", status_code=201, summary="Register an endpoint; its signing secret is in this answer only")
    async def create(self, account_id: uuid.UUID, data: EndpointInput, service: Service) -> dict[str, Any]:
        settings = _settings(service)
        url = checked_url(data.url, settings)
        events = checked_events(data.events)
        keyring = _keyring(service)
        endpoint_id = uuid.uuid4()
        secret = webhooks.new_secret()
        async with service.db.transaction() as session:
            # one registration at a time per account, so that two at once cannot pass the limit together
            await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"webhooks:{account_id}"))))
            count = await session.scalar(select(func.count()).where(webhook_endpoints.c.account_id == account_id))
            if (count or 0) >= webhooks.MAX_ENDPOINTS:
                raise ProblemError(
                    409,
                    "too_many_endpoints",
                    "Too many endpoints",
                    f"An account has {webhooks.MAX_ENDPOINTS} webhook endpoints at most.",
                )
            created = (
                await session.execute(
                    insert(webhook_endpoints)
                    .values(
                        id=endpoint_id,
                        account_id=account_id,
                        url=url,
                        description=data.description or None,
                        events=events,
                        secret_sealed=webhooks.seal_secret(secret, keyring, endpoint_id),
                        created_by_email=data.created_by_email,
                        language=data.language,
                    )
                    .returning(webhook_endpoints)
                )
            ).one()
        return shown(created) | {"secret": secret}

    @get("/{endpoint_id:uuid}", summary="One endpoint")
    async def read(self, account_id: uuid.UUID, endpoint_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            return shown(await _endpoint(session, account_id, endpoint_id))

    @patch(
        "/{endpoint_id:uuid}",
        summary="Change an endpoint's URL, events or description, or enable it again (status active)",
    )
    async def change(
        self, account_id: uuid.UUID, endpoint_id: uuid.UUID, data: EndpointChange, service: Service
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        given = data.model_fields_set
        if "url" in given and data.url is not None:
            changes["url"] = checked_url(data.url, _settings(service))
        if "events" in given and data.events is not None:
            changes["events"] = checked_events(data.events)
        if "description" in given:
            changes["description"] = data.description or None
        async with service.db.transaction() as session:
            endpoint = await _endpoint(session, account_id, endpoint_id, lock=True)
            now = datetime.now(UTC)
            if data.status == "active" and endpoint.status != "active":
                changes |= {"status": "active", "disabled_reason": None, "disabled_at": None}
            elif data.status == "disabled" and endpoint.status != "disabled":
                changes |= {"status": "disabled", "disabled_reason": "disabled by a manager", "disabled_at": now}
            if not changes:
                return shown(endpoint, now)
            changed = (
                await session.execute(
                    update(webhook_endpoints)
                    .where(webhook_endpoints.c.id == endpoint_id)
                    .values(**changes, updated_at=now)
                    .returning(webhook_endpoints)
                )
            ).one()
            return shown(changed, now)

    @delete("/{endpoint_id:uuid}", status_code=204, summary="Delete an endpoint; its pending deliveries fail")
    async def remove(self, account_id: uuid.UUID, endpoint_id: uuid.UUID, service: Service) -> None:
        async with service.db.transaction() as session:
            await _endpoint(session, account_id, endpoint_id, lock=True)
            await webhooks.fail_pending(session, endpoint_id, "endpoint deleted")
            await session.execute(delete_rows(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        status_code=200,
        summary="A new signing secret (in this answer only); the previous one still signs for `overlap_hours`",
    )
    async def rotate(
        self,
        account_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        service: Service,
        data: RotationInput | None = None,
    ) -> dict[str, Any]:
        keyring = _keyring(service)
        overlap = timedelta(hours=(data or RotationInput()).overlap_hours)
        secret = webhooks.new_secret()
        async with service.db.transaction() as session:
            endpoint = await _endpoint(session, account_id, endpoint_id, lock=True)
            now = datetime.now(UTC)
            rotated = (
                await session.execute(
                    update(webhook_endpoints)
                    .where(webhook_endpoints.c.id == endpoint_id)
                    .values(
                        secret_sealed=webhooks.seal_secret(secret, keyring, endpoint_id),
                        previous_secret_sealed=endpoint.secret_sealed if overlap else None,
                        previous_secret_expires_at=now + overlap if overlap else None,
                        updated_at=now,
                    )
                    .returning(webhook_endpoints)
                )
            ).one()
        return shown(rotated, now) | {"secret": secret}

    @post(
        "/{endpoint_id:uuid}/test",
        status_code=202,
        summary="Send the endpoint a `ping` delivery (whatever its events)",
    )
    async def ping(self, account_id: uuid.UUID, endpoint_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            endpoint = await _endpoint(session, account_id, endpoint_id)
            delivery_id = await webhooks.plan_delivery(
                session,
                event_id=uuid.uuid4(),
                endpoint=endpoint,
                event_type=webhooks.PING,
                created_at=datetime.now(UTC),
                data={},
            )
        return {"delivery_id": delivery_id}

    @get("/{endpoint_id:uuid}/deliveries", summary="The endpoint's deliveries, newest first (never their body)")
    async def deliveries_of(
        self,
        account_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        service: Service,
        status: DeliveryStatus | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        async with service.db.transaction() as session:
            await _endpoint(session, account_id, endpoint_id)
            of_endpoint = (
                (deliveries.c.channel == "webhook")
                & (deliveries.c.account_id == account_id)
                & (func.lower(deliveries.c.recipient) == str(endpoint_id))
            )
            if status is not None:
                of_endpoint &= deliveries.c.status == status
            total = await session.scalar(select(func.count()).where(of_endpoint))
            rows = await session.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.template.label("type"),
                    deliveries.c.status,
                    deliveries.c.attempts,
                    deliveries.c.response_status,
                    deliveries.c.last_error,
                    deliveries.c.created_at,
                    deliveries.c.sent_at,
                    deliveries.c.next_attempt_at,
                )
                .where(of_endpoint)
                .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
                .limit(limit)
                .offset(offset)
            )
            return {"deliveries": [row._asdict() for row in rows], "total": total or 0}


class WebhookEventTypesController(Controller):
    path = "/internal/webhook-event-types"
    tags = ["webhooks"]

    @get("/", summary="The event types a webhook endpoint may choose")
    async def event_types(self) -> dict[str, Any]:
        return {"event_types": list(webhooks.EVENT_TYPES)}


WEBHOOK_CONTROLLERS = [WebhooksController, WebhookEventTypesController]
