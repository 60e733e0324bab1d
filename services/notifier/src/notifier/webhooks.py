"""Outgoing webhooks (docs/webhooks.md): an account's HTTPS endpoints are sent the events they chose, as signed JSON.

- **Planning.** An event an endpoint may choose (`EVENT_TYPES`) plans one delivery per active endpoint of its account
  subscribed to its type, in the consumer's transaction: a `deliveries` row with channel 'webhook', the endpoint's id
  as recipient, the type as template and the payload in its context (`{"body": ...}`, erased once sent or given up).
  The payload's `id` is the delivery's id: every attempt carries the same, by which a receiver knows a retry.
- **Sending** (`WebhookSender`, called by notifier.delivery's loop like the mailer): the body as compact JSON with
  sorted keys, signed at each attempt (`sign`: Stripe's scheme, `t=<unix seconds>,v1=<hex HMAC-SHA256 over
  "<t>." + body>`, a second v1 with the previous secret while a rotation's overlap runs). 2xx is sent; 410 Gone,
  a disabled or deleted endpoint, or a receiver on a private address are permanent failures; anything else
  (another status, a timeout, a connection error) is tried again with backoff, never sooner than a 429's or 503's
  Retry-After. Redirects are not followed.
- **Private networks.** The host is resolved at each attempt and the request goes to the address checked
  (`destination`), the TLS certificate still checked against the host's name: a name that resolves to a loopback,
  private, link-local, multicast or reserved address is refused (unless NOTIFIER_WEBHOOK_ALLOW_PRIVATE_NETWORKS),
  and cannot be made to by answering differently the second time it is resolved.
- **Disabling.** A delivery that fails for good (attempts exhausted, or permanent) disables its endpoint in the
  transaction that records it, and plans the `webhook_disabled` mail to the manager who registered it
  (`disable`). The manager enables it again through the internal API.
- **Secrets** are `whsec_` + 32 random bytes (URL-safe base64), shown once, stored sealed with
  NOTIFIER_WEBHOOK_SECRET_KEYS (contracts.secrets, bound to the endpoint), and never logged."""

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import certifi
import httpx
from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.base import Event
from contracts.events.billing import InvoiceIssued, TokenPurchased
from contracts.events.enrollment import (
    Enrolled,
    EnrollmentCancelled,
    ParticipationLinkIssued,
    ParticipationLinkIssuedV1,
)
from contracts.secrets import Keyring, seal, secret_context, unseal
from notifier import service as notifier
from notifier.handlers import opened
from notifier.models import deliveries, webhook_endpoints
from notifier.service import TransientDeliveryError, Undeliverable
from notifier.settings import NotifierSettings
from notifier.sms import retry_after_seconds

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "enrolment.confirmed",
    "enrolment.cancelled",
    "participation_link.issued",
    "invoice.issued",
    "tokens.credited",
)
PING = "ping"  # a test delivery, asked for through the API whatever the endpoint's events
MAX_ENDPOINTS = 10  # per account
MAX_URL_LENGTH = 2000
USER_AGENT = "Visiopass-Webhooks/1"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
RETRY_AFTER_CAP_SECONDS = 3600.0  # a receiver asking to wait longer is tried again after an hour anyway
ERROR_BODY_SHOWN = 300  # characters of a refusing receiver's answer kept in the delivery log

# -- secrets and signatures -----------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _context(endpoint_id: uuid.UUID) -> bytes:
    # one context for the current and the previous secret: a rotation moves the sealed value as it is
    return secret_context("WebhookEndpoint", "secret", endpoint_id)


def seal_secret(secret: str, keyring: Keyring, endpoint_id: uuid.UUID) -> str:
    return seal(secret, keyring, _context(endpoint_id))


def open_secret(sealed: str, keyring: Keyring, endpoint_id: uuid.UUID) -> str:
    return unseal(sealed, keyring, _context(endpoint_id))


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, keys sorted, so that every attempt sends the same body."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secrets_: Sequence[str], timestamp: int, body: bytes) -> str:
    """The Visiopass-Signature header: `t=<timestamp>,v1=<hex>` with one v1 per secret (newest first)."""
    signed = f"{timestamp}.".encode() + body
    v1 = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets_]
    return ",".join([f"t={timestamp}", *(f"v1={each}" for each in v1)])


def signed_headers(
    delivery_id: str, event_type: str, secrets_: Sequence[str], body: bytes, timestamp: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Visiopass-Webhook-Id": delivery_id,
        "Visiopass-Event": event_type,
        "Visiopass-Signature": sign(secrets_, timestamp, body),
    }


def signing_secrets(endpoint: Row[Any], keyring: Keyring, now: datetime) -> list[str]:
    """The endpoint's secret, then its previous one while a rotation's overlap runs."""
    signing = [open_secret(endpoint.secret_sealed, keyring, endpoint.id)]
    if rotation_ends_at(endpoint, now) is not None:
        signing.append(open_secret(endpoint.previous_secret_sealed, keyring, endpoint.id))
    return signing


def rotation_ends_at(endpoint: Row[Any], now: datetime) -> datetime | None:
    ends = endpoint.previous_secret_expires_at
    return ends if endpoint.previous_secret_sealed and ends is not None and ends > now else None


# -- planning ---------------------------------------------------------------------------------------------------


def _enrolment(event: Enrolled | EnrollmentCancelled) -> dict[str, Any]:
    return {"enrollment_id": str(event.enrollment_id), "session_id": str(event.session_id)}


def _enrolled(event: Enrolled, public_base_url: str) -> dict[str, Any]:
    return _enrolment(event) | {"privatisation": event.privatisation}


def _cancelled(event: EnrollmentCancelled, public_base_url: str) -> dict[str, Any]:
    return _enrolment(event) | {"refund": event.refund, "reason": event.reason}


def _link_issued(event: ParticipationLinkIssued, public_base_url: str) -> dict[str, Any]:
    return {
        "enrollment_id": str(event.enrollment_id),
        "session_id": str(event.session_id),
        "join_url": f"{public_base_url}/join/{event.join_token}",
    }


def _invoice_issued(event: InvoiceIssued, public_base_url: str) -> dict[str, Any]:
    return {
        "invoice_id": str(event.invoice_id),
        "number": event.number,
        "order_id": str(event.order_id),
        "amounts": event.amounts.model_dump(mode="json"),
        "issued_at": event.issued_at.isoformat(),
        "pdf_url": f"{public_base_url}{event.pdf_url}",
        "paid": event.paid,
        "due_at": event.due_at.isoformat() if event.due_at else None,
    }


def _tokens_credited(event: TokenPurchased, public_base_url: str) -> dict[str, Any]:
    return {
        "tokens": event.tokens,
        "bonus_tokens": event.bonus_tokens,
        "lot_id": str(event.lot_id),
        "order_id": str(event.order_id),
        "expires_at": event.expires_at.isoformat(),
        "balance_after": event.balance_after,
    }


# The events an endpoint may choose: their type on the wire, and the builder of their `data`.
WEBHOOK_EVENTS: dict[type[Event], tuple[str, Callable[[Any, str], dict[str, Any]]]] = {
    Enrolled: ("enrolment.confirmed", _enrolled),
    EnrollmentCancelled: ("enrolment.cancelled", _cancelled),
    ParticipationLinkIssued: ("participation_link.issued", _link_issued),
    ParticipationLinkIssuedV1: ("participation_link.issued", _link_issued),
    InvoiceIssued: ("invoice.issued", _invoice_issued),
    TokenPurchased: ("tokens.credited", _tokens_credited),
}
# by topic, for the consumers (notifier.main)
ENROLLMENT_WEBHOOKS = [Enrolled, EnrollmentCancelled, ParticipationLinkIssued, ParticipationLinkIssuedV1]
WALLET_WEBHOOKS = [TokenPurchased]
INVOICE_WEBHOOKS = [InvoiceIssued]


async def plan_delivery(
    session: AsyncSession,
    *,
    event_id: uuid.UUID,
    endpoint: Row[Any],
    event_type: str,
    created_at: datetime,
    data: dict[str, Any],
) -> uuid.UUID:
    """Plan one delivery of `event_type` to `endpoint`; the same event asking twice plans it once. Its id."""
    delivery_id = uuid.uuid4()
    payload = {
        "id": str(delivery_id),
        "type": event_type,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "account_id": str(endpoint.account_id),
        "data": data,
    }
    await session.execute(
        insert(deliveries)
        .values(
            id=delivery_id,
            event_id=event_id,
            account_id=endpoint.account_id,
            channel="webhook",
            template=event_type,
            language=endpoint.language,
            recipient=str(endpoint.id),
            context={"body": payload},
            priority=0,
        )
        .on_conflict_do_nothing(constraint="deliveries_once_per_event")
    )
    return delivery_id


async def plan_event(session: AsyncSession, envelope: Envelope, public_base_url: str, keyring: Keyring | None) -> None:
    """The deliveries an event asks for: one per active endpoint of its account subscribed to its type."""
    known = WEBHOOK_EVENTS.get(type(envelope.event))
    if known is None:
        return
    event_type, build = known
    account_id = envelope.event.account_id
    endpoints = (
        await session.execute(
            select(webhook_endpoints).where(
                webhook_endpoints.c.account_id == account_id,
                webhook_endpoints.c.status == "active",
                webhook_endpoints.c.events.any_() == event_type,
            )
        )
    ).all()
    if not endpoints:
        return
    data = build(opened(envelope.event, keyring), public_base_url)  # a link's token opened in memory only
    for endpoint in endpoints:
        await plan_delivery(
            session, event_id=envelope.id, endpoint=endpoint, event_type=event_type, created_at=envelope.time, data=data
        )
    log.info("planned %d %s webhook(s) for event %s", len(endpoints), event_type, envelope.id)


def webhook_handlers(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    keyring = settings.keyring()

    async def on_event(session: AsyncSession, envelope: Envelope) -> None:
        await plan_event(session, envelope, settings.public_base_url, keyring)

    return on_event


# -- disabling --------------------------------------------------------------------------------------------------


async def disable(
    session: AsyncSession, endpoint_id: uuid.UUID, reason: str, *, public_base_url: str, caused_by: uuid.UUID
) -> None:
    """Disable an active endpoint and plan the mail telling its manager (`caused_by`: the delivery that failed)."""
    now = datetime.now(UTC)
    disabled = (
        await session.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.status == "active")
            .values(status="disabled", disabled_reason=reason, disabled_at=now, updated_at=now)
            .returning(webhook_endpoints)
        )
    ).first()
    if disabled is None:  # already disabled, or deleted
        return
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    await notifier.plan(
        session,
        event_id=caused_by,
        template="webhook_disabled",
        language=disabled.language,
        recipient=disabled.created_by_email,
        variables={
            "url": shown_url(disabled.url),
            "reason": reason,
            "link": f"{public_base_url}/account/webhooks/{endpoint_id}",
        },
        account_id=disabled.account_id,
    )


def shown_url(url: str) -> str:
    """The URL without its query, which may hold the receiver's own token: what a mail shows."""
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


async def fail_pending(session: AsyncSession, endpoint_id: uuid.UUID, reason: str) -> None:
    """Fail the endpoint's deliveries not sent yet (it is deleted)."""
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.channel == "webhook",
            deliveries.c.recipient == str(endpoint_id),
            deliveries.c.status == "pending",
        )
        .values(status="failed", last_error=reason, context=None)
    )


# -- sending ----------------------------------------------------------------------------------------------------


class WebhookNotDelivered(TransientDeliveryError):
    """This attempt failed, a later one may succeed: not before `retry_after` seconds when the receiver said so."""

    def __init__(self, reason: str, retry_after: float | None = None, *, code: int | None = None) -> None:
        super().__init__(reason if retry_after is None else f"{reason} (retry after {retry_after:g} s)", code=code)
        self.retry_after = retry_after


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def destination(host: str, port: int, *, allow_private: bool, resolver: Resolver = resolve) -> str:
    """The address to connect to for `host`: refused (Undeliverable) when any of its addresses is not public."""
    try:
        addresses = await resolver(host, port)
    except OSError as exc:
        raise WebhookNotDelivered(f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise WebhookNotDelivered(f"{host} has no address")
    if not allow_private and not all(is_public(address) for address in addresses):
        raise Undeliverable(f"{host} resolves to a private or reserved address: refused")
    return addresses[0]


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle:
        context.load_verify_locations(ca_bundle)  # besides the public CAs, not instead of them
    return context


class WebhookSender:
    """Sends one webhook delivery (its row, as claimed) at each attempt; returns the receiver's HTTP status, or
    raises `Undeliverable` or `TransientDeliveryError` like a mailer. One HTTP client per process: `aclose()` it."""

    def __init__(
        self,
        db: Any,  # servicekit.db.Database: the endpoint is read at each attempt
        keyring: Keyring | None,
        *,
        timeout: float = 10.0,
        allow_private: bool = False,
        ca_bundle: str | None = None,
        resolver: Resolver = resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db, self.keyring, self.allow_private, self.resolver = db, keyring, allow_private, resolver
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, verify=tls_context(ca_bundle), transport=transport
        )

    @classmethod
    def from_settings(cls, settings: NotifierSettings, db: Any) -> "WebhookSender":
        return cls(
            db,
            settings.webhook_keyring(),
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private_networks,
            ca_bundle=settings.webhook_ca_bundle,
        )

    async def send(self, row: Row[Any]) -> int:
        endpoint_id = uuid.UUID(row.recipient)
        async with self.db.transaction() as session:
            endpoint = (
                await session.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))
            ).first()
        if endpoint is None:
            raise Undeliverable("endpoint deleted")
        if endpoint.status != "active":
            raise Undeliverable("endpoint disabled")
        if self.keyring is None:
            raise TransientDeliveryError("NOTIFIER_WEBHOOK_SECRET_KEYS is not set: nothing can be signed")
        payload = (row.context or {}).get("body")
        if payload is None:
            raise Undeliverable("the delivery has no body left")
        body = body_bytes(payload)
        headers = signed_headers(
            str(row.id),
            row.template,
            signing_secrets(endpoint, self.keyring, datetime.now(UTC)),
            body,
            int(time.time()),
        )
        return await self.post(httpx.URL(endpoint.url), headers, body)

    async def post(self, url: httpx.URL, headers: dict[str, str], body: bytes) -> int:
        """One attempt: the status of a 2xx answer, or the failure raised."""
        if url.scheme != "https":
            raise Undeliverable("the endpoint's URL is not https")
        host = url.raw_host.decode("ascii")  # an internationalised name in its IDNA form
        address = await destination(host, url.port or 443, allow_private=self.allow_private, resolver=self.resolver)
        extensions: dict[str, Any] = {}
        if address != host:  # connect to the address checked; TLS still checks the certificate for the name
            headers = headers | {"Host": url.netloc.decode("ascii")}
            extensions["sni_hostname"] = host
            url = url.copy_with(host=address)
        try:
            async with self.client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer:
                status = answer.status_code
                if 200 <= status < 300:
                    return status
                start = await _start_of(answer)
                retry_after = retry_after_seconds(answer.headers.get("Retry-After")) if status in (429, 503) else None
        except httpx.TimeoutException as exc:
            raise WebhookNotDelivered(f"no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise WebhookNotDelivered(f"receiver unreachable: {type(exc).__name__}: {exc}") from exc
        detail = f"receiver answered {status} {answer.reason_phrase}"
        detail += f": {start}" if start else ""
        if status == 410:
            raise Undeliverable(detail, code=status)
        if retry_after is not None:
            retry_after = min(retry_after, RETRY_AFTER_CAP_SECONDS)
        raise WebhookNotDelivered(detail, retry_after, code=status)

    async def aclose(self) -> None:
        await self.client.aclose()


async def _start_of(answer: httpx.Response) -> str:
    """The first characters of a refusing receiver's answer, for the log; the rest is never read."""
    read = b""
    async for chunk in answer.aiter_bytes():
        read += chunk
        if len(read) >= ERROR_BODY_SHOWN * 4:
            break
    return " ".join(read.decode("utf-8", "replace").split())[:ERROR_BODY_SHOWN]
