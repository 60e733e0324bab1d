"""Card payments behind one port: Stripe Checkout in production, a local sandbox for `make up` and browser tests.

Guarantees:
- `create_checkout` asks the provider for a hosted payment page of exactly the order's lines and total (a request
  whose lines do not add up to its total is refused before any call), tagged with the order's id.
- `parse_webhook` believes a body only when its `Stripe-Signature` header (`t=<unix time>,v1=<hex>`, several v1
  allowed) carries the HMAC-SHA256 of "<t>.<body>" under the webhook secret, compared in constant time, and t is
  within the tolerance of `now`, in the past or the future. Otherwise it raises `BadSignature`, `StaleSignature`
  or `InvalidPayload` (each with a stable `code`): no other exception, whatever the bytes or the header.
- Both providers' webhooks go through that one check: the sandbox signs its events exactly as Stripe does.
- A verified event is a `PaymentNotice` named by the provider's event id. The same valid payload replayed within
  the tolerance parses again to the same event id: the caller applies each event id once (Stripe itself may
  deliver an event more than once).
- Nothing here touches the database, and webhooks are judged against the `now` the caller passes.
"""

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol, TypeGuard, runtime_checkable

import stripe

from billing.settings import BillingSettings

PaymentKind = Literal["paid", "failed", "expired"]

MAX_WEBHOOK_BYTES = 256 * 1024
MAX_SIGNATURE_HEADER = 4096
# Stripe refuses a Checkout Session that expires in less than 30 minutes or more than 24 hours.
MIN_CHECKOUT_SECONDS = 30 * 60
MAX_CHECKOUT_SECONDS = 24 * 3600
DEFAULT_CHECKOUT_SECONDS = 3600  # 30 minutes on our clock could be less on Stripe's

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_V1_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_LARGEST_AMOUNT = 2**63 - 1
_LATEST_TIME = 253402300799  # 9999-12-31T23:59:59Z


class WebhookError(Exception):
    """A webhook we refuse (HTTP 400); `code` is stable, the message names no secret."""

    code: ClassVar[str] = "invalid_webhook"


class BadSignature(WebhookError):
    code = "bad_signature"


class StaleSignature(WebhookError):
    code = "stale_signature"


class InvalidPayload(WebhookError):
    code = "invalid_payload"


class CheckoutFailed(Exception):
    """The provider did not open a checkout (unreachable, refused the request, answered nonsense)."""


@dataclass(frozen=True)
class CheckoutRequest:
    order_id: uuid.UUID
    order_reference: str
    lines: list[tuple[str, int, int]]  # (label, quantity, unit price with VAT in cents)
    total_gross_cents: int
    currency: str
    customer_email: str | None
    success_url: str
    cancel_url: str
    expires_after_seconds: int = DEFAULT_CHECKOUT_SECONDS

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a checkout needs at least one line")
        if any(not label.strip() or quantity < 1 or unit < 0 for label, quantity, unit in self.lines):
            raise ValueError("a line needs a label, a positive quantity and a price of zero or more")
        if sum(quantity * unit for _, quantity, unit in self.lines) != self.total_gross_cents:
            raise ValueError("the lines do not add up to the total: the provider would charge another amount")
        if not MIN_CHECKOUT_SECONDS <= self.expires_after_seconds <= MAX_CHECKOUT_SECONDS:
            raise ValueError("a checkout expires between 30 minutes and 24 hours after it opens")


@dataclass(frozen=True)
class Checkout:
    provider_session_id: str
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class PaymentNotice:
    event_id: str
    kind: PaymentKind
    provider_session_id: str
    order_id: uuid.UUID | None  # None when the session names no order id: look the order up by its session id
    amount_cents: int | None
    occurred_at: datetime


@runtime_checkable
class PaymentProvider(Protocol):
    name: str

    async def create_checkout(self, checkout: CheckoutRequest) -> Checkout: ...

    def parse_webhook(self, body: bytes, signature_header: str | None, now: float) -> PaymentNotice | None: ...


# --- Webhooks: Stripe's signature scheme, and the Checkout Session events we act on ---------------------------

# A completed session is paid only when its payment_status says so (a bank debit completes first, pays later).
_KIND_OF_EVENT: dict[str, PaymentKind] = {
    "checkout.session.completed": "paid",
    "checkout.session.async_payment_succeeded": "paid",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "expired",
}


def signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header Stripe would send with `body` at `timestamp`."""
    return f"t={timestamp},v1={_signature(body, secret, timestamp)}"


def _signature(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookVerifier:
    secret: str
    tolerance_seconds: int

    def __post_init__(self) -> None:
        if not self.secret.strip():
            raise ValueError("a webhook secret is required")
        if self.tolerance_seconds < 1:
            raise ValueError("the tolerance must be at least one second")

    def parse(self, body: bytes, header: str | None, now: float) -> PaymentNotice | None:
        """The notice a genuine, fresh webhook carries; None for an event type we do not act on."""
        if len(body) > MAX_WEBHOOK_BYTES:
            raise InvalidPayload("The payload is larger than 256 kB.")
        timestamp, candidates = _read_signature_header(header)
        expected = _signature(body, self.secret, timestamp)
        if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            raise BadSignature("No signature matches the payload.")
        if abs(now - timestamp) > self.tolerance_seconds:
            raise StaleSignature("The signature's timestamp is outside the tolerance.")
        return _notice(_json_object(body))


def _read_signature_header(header: str | None) -> tuple[int, list[str]]:
    """(t, the well-formed v1 signatures) of a `Stripe-Signature` header; items of other schemes are ignored."""
    if not header:
        raise BadSignature("The Stripe-Signature header is missing.")
    if len(header) > MAX_SIGNATURE_HEADER:
        raise BadSignature("The Stripe-Signature header is too long.")
    timestamps, signatures = [], []
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1" and _V1_SIGNATURE.fullmatch(value):
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise BadSignature("The Stripe-Signature header needs one timestamp t.")
    if not signatures:
        raise BadSignature("The Stripe-Signature header has no v1 signature.")
    return int(timestamps[0]), signatures


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, digits past Python's limit, deep nesting
        raise InvalidPayload("The payload is not JSON.") from exc
    if not isinstance(value, dict):
        raise InvalidPayload("The payload is not a JSON object.")
    return value


def _notice(event: dict[str, Any]) -> PaymentNotice | None:
    event_id = _provider_id(event.get("id"), "the event's id")
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise InvalidPayload("The event has no type.")
    kind = _KIND_OF_EVENT.get(event_type)
    if kind is None:
        return None
    created = event.get("created")
    if not _is_int(created) or not 0 <= created <= _LATEST_TIME:
        raise InvalidPayload("The event has no valid creation time.")
    data = event.get("data")
    session = data.get("object") if isinstance(data, dict) else None
    if not isinstance(session, dict):
        raise InvalidPayload("The event has no checkout session.")
    if event_type == "checkout.session.completed" and session.get("payment_status") != "paid":
        return None  # an asynchronous payment still on its way: its own event will tell
    return PaymentNotice(
        event_id=event_id,
        kind=kind,
        provider_session_id=_provider_id(session.get("id"), "the checkout session's id"),
        order_id=_order_id(session),
        amount_cents=_amount(session.get("amount_total")),
        occurred_at=datetime.fromtimestamp(created, UTC),
    )


def _provider_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _PROVIDER_ID.fullmatch(value):
        raise InvalidPayload(f"The payload lacks {what}.")
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _amount(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= _LARGEST_AMOUNT:
        raise InvalidPayload("The checkout session's amount is not a number of cents.")
    return int(value)


def _order_id(session: dict[str, Any]) -> uuid.UUID | None:
    metadata = session.get("metadata")
    for candidate in (
        session.get("client_reference_id"),
        metadata.get("order_id") if isinstance(metadata, dict) else None,
    ):
        if isinstance(candidate, str) and len(candidate) <= 64:
            try:
                return uuid.UUID(candidate)
            except ValueError:
                continue
    return None


# --- Stripe -------------------------------------------------------------------------------------------------------


class StripeProvider:
    """Stripe Checkout through the official library's async client (httpx)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        webhooks: WebhookVerifier,
        *,
        api_base: str = stripe.DEFAULT_API_BASE,
        timeout_seconds: float = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key.strip():
            raise ValueError("a Stripe API key is required")
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=2,  # the library sends an idempotency key, so a retried create opens one session
        )
        self._webhooks = webhooks
        self._clock = clock

    async def create_checkout(self, checkout: CheckoutRequest) -> Checkout:
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                _session_params(checkout, self._clock()), {"idempotency_key": f"checkout-{checkout.order_id}"}
            )
        except stripe.StripeError as exc:
            raise CheckoutFailed(f"Stripe refused the checkout: {type(exc).__name__}") from exc
        if not isinstance(session.id, str) or not isinstance(session.url, str) or not _is_int(session.expires_at):
            raise CheckoutFailed("Stripe answered a checkout session without id, url or expiry.")
        return Checkout(session.id, session.url, datetime.fromtimestamp(session.expires_at, UTC))

    def parse_webhook(self, body: bytes, signature_header: str | None, now: float) -> PaymentNotice | None:
        return self._webhooks.parse(body, signature_header, now)

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]


def _session_params(checkout: CheckoutRequest, now: float) -> Any:
    order = {"order_id": str(checkout.order_id), "order_reference": checkout.order_reference}
    params: dict[str, Any] = {
        "mode": "payment",
        "client_reference_id": str(checkout.order_id),
        "metadata": order,
        "payment_intent_data": {"metadata": order, "description": checkout.order_reference},
        "line_items": [
            {
                "quantity": quantity,
                "price_data": {
                    "currency": checkout.currency.lower(),
                    "unit_amount": unit_gross_cents,
                    "product_data": {"name": label},
                },
            }
            for label, quantity, unit_gross_cents in checkout.lines
        ],
        "success_url": checkout.success_url,
        "cancel_url": checkout.cancel_url,
        "expires_at": int(now) + checkout.expires_after_seconds,
        "locale": "auto",  # the person's browser language
    }
    if checkout.customer_email:
        params["customer_email"] = checkout.customer_email
    return params


# --- The sandbox: a local stand-in with the same webhook path and signature ------------------------------------


class SandboxProvider:
    """Opens checkouts on the gateway's own pay/decline page; `sandbox_event` then plays Stripe's webhook."""

    name = "sandbox"

    def __init__(
        self, public_base_url: str, webhooks: WebhookVerifier, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._base = public_base_url.rstrip("/")
        self._webhooks = webhooks
        self._clock = clock

    async def create_checkout(self, checkout: CheckoutRequest) -> Checkout:
        checkout_id = "cs_sandbox_" + secrets.token_hex(16)
        expires_at = datetime.fromtimestamp(int(self._clock()) + checkout.expires_after_seconds, UTC)
        return Checkout(checkout_id, f"{self._base}/payments/sandbox/{checkout_id}", expires_at)

    def parse_webhook(self, body: bytes, signature_header: str | None, now: float) -> PaymentNotice | None:
        return self._webhooks.parse(body, signature_header, now)


_SANDBOX_EVENTS: dict[PaymentKind, tuple[str, str, str]] = {  # kind: (event type, session status, payment status)
    "paid": ("checkout.session.completed", "complete", "paid"),
    "failed": ("checkout.session.async_payment_failed", "complete", "unpaid"),
    "expired": ("checkout.session.expired", "expired", "unpaid"),
}


def sandbox_event(
    kind: PaymentKind, checkout_id: str, order_id: uuid.UUID, amount_cents: int, secret: str, now: float
) -> tuple[bytes, str]:
    """(body, Stripe-Signature header) of the event Stripe would send about checkout `checkout_id`."""
    event_type, status, payment_status = _SANDBOX_EVENTS[kind]
    event = {
        "id": "evt_sandbox_" + secrets.token_hex(12),
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(now),
        "livemode": False,
        "type": event_type,
        "data": {
            "object": {
                "id": checkout_id,
                "object": "checkout.session",
                "client_reference_id": str(order_id),
                "status": status,
                "payment_status": payment_status,
                "amount_total": amount_cents,
                "currency": "eur",
                "metadata": {"order_id": str(order_id)},
            }
        },
    }
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, signature_header(body, secret, int(now))


def provider_from_settings(settings: BillingSettings) -> PaymentProvider:
    """The provider the settings name; refuses to start without a webhook secret (or, for Stripe, an API key)."""
    webhooks = WebhookVerifier(settings.webhook_secret.get_secret_value(), settings.webhook_tolerance_seconds)
    if settings.payment_provider == "stripe":
        return StripeProvider(
            settings.stripe_api_key.get_secret_value(), webhooks, api_base=settings.stripe_api_base.rstrip("/")
        )
    return SandboxProvider(settings.public_base_url, webhooks)
