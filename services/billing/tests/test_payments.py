"""The payment port (billing.payments): Stripe Checkout against stripe-mock over real HTTP, webhook signatures
checked the way Stripe signs them, and the sandbox whose webhooks pass the very same check."""

import json
import socket
import uuid
from datetime import UTC, datetime

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from billing.payments import (
    BadSignature,
    CheckoutFailed,
    CheckoutRequest,
    InvalidPayload,
    PaymentNotice,
    SandboxProvider,
    StaleSignature,
    StripeProvider,
    WebhookError,
    WebhookVerifier,
    provider_from_settings,
    sandbox_event,
    signature_header,
)
from billing.settings import BillingSettings

SECRET = "whsec_test_" + "s3cr3t" * 4
NOW = 1_790_000_000.0  # 2026-09-21, a fixed instant: webhooks are judged against the `now` passed in
TOLERANCE = 300
VERIFIER = WebhookVerifier(SECRET, TOLERANCE)
ORDER_ID = uuid.UUID("6f1c2b0e-9a4d-4c1e-8f3a-2d5b7c9e1a01")


def request(**changes: object) -> CheckoutRequest:
    fields: dict[str, object] = {
        "order_id": ORDER_ID,
        "order_reference": "C2026-000042",
        "lines": [("Forfait 5 + 1", 1, 36000), ("Jeton", 2, 7200)],
        "total_gross_cents": 50400,
        "currency": "EUR",
        "customer_email": "gestion@college-exemple.fr",
        "success_url": "http://127.0.0.1:8000/account/orders/x?paid=1",
        "cancel_url": "http://127.0.0.1:8000/account/orders/x?cancelled=1",
    }
    return CheckoutRequest(**(fields | changes))  # type: ignore[arg-type]


def stripe_event(event_type: str = "checkout.session.completed", **session: object) -> bytes:
    """A Checkout Session event shaped like Stripe's (trimmed to what matters)."""
    obj = {
        "id": "cs_test_a1b2c3",
        "object": "checkout.session",
        "client_reference_id": str(ORDER_ID),
        "payment_status": "paid",
        "status": "complete",
        "amount_total": 50400,
        "currency": "eur",
        "metadata": {"order_id": str(ORDER_ID), "order_reference": "C2026-000042"},
    } | session
    event = {
        "id": "evt_1QabcDEF",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(NOW) - 2,
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }
    return json.dumps(event).encode()


def signed(body: bytes, *, secret: str = SECRET, at: float = NOW) -> str:
    return signature_header(body, secret, int(at))


# --- the Stripe adapter against stripe-mock --------------------------------------------------------------------


@pytest.fixture
async def stripe_provider(stripe_mock: str):  # type: ignore[no-untyped-def]
    provider = StripeProvider("sk_test_123", VERIFIER, api_base=stripe_mock, clock=lambda: NOW)
    yield provider
    await provider.aclose()


async def test_the_stripe_adapter_opens_a_checkout_session_on_stripe(stripe_provider: StripeProvider) -> None:
    checkout = await stripe_provider.create_checkout(request())

    assert checkout.provider_session_id.startswith("cs_")
    assert checkout.url.startswith("https://checkout.stripe.com/")
    assert checkout.expires_at.tzinfo is not None


@pytest.mark.parametrize("reachable", [True, False])
async def test_a_checkout_the_provider_does_not_open_raises_a_typed_error(stripe_mock: str, reachable: bool) -> None:
    if reachable:  # stripe-mock answers 401 to a key that is no secret key, as Stripe does to a revoked one
        provider = StripeProvider("not_a_key", VERIFIER, api_base=stripe_mock)
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed_port = sock.getsockname()[1]
        provider = StripeProvider("sk_test_123", VERIFIER, api_base=f"http://127.0.0.1:{closed_port}")
    try:
        with pytest.raises(CheckoutFailed):
            await provider.create_checkout(request())
    finally:
        await provider.aclose()


def test_a_checkout_whose_lines_do_not_make_its_total_is_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match="add up"):
        request(total_gross_cents=50399)
    with pytest.raises(ValueError, match="30 minutes"):
        request(expires_after_seconds=600)


def test_the_settings_choose_the_provider_and_a_webhook_secret_is_required() -> None:
    base = {"webhook_secret": SecretStr(SECRET), "public_base_url": "http://portal.example"}
    assert provider_from_settings(BillingSettings(**base)).name == "sandbox"  # type: ignore[arg-type]
    stripe_settings = BillingSettings(  # type: ignore[arg-type]
        **base, payment_provider="stripe", stripe_api_key=SecretStr("sk_test_123")
    )
    assert provider_from_settings(stripe_settings).name == "stripe"
    with pytest.raises(ValueError, match="webhook secret"):
        provider_from_settings(BillingSettings(webhook_secret=SecretStr("")))
    with pytest.raises(ValueError, match="API key"):
        provider_from_settings(BillingSettings(**base, payment_provider="stripe"))  # type: ignore[arg-type]


# --- webhooks: genuine ones are read ---------------------------------------------------------------------------


def test_a_genuine_paid_event_gives_its_notice() -> None:
    body = stripe_event()

    notice = VERIFIER.parse(body, signed(body), NOW)

    assert notice == PaymentNotice(
        event_id="evt_1QabcDEF",
        kind="paid",
        provider_session_id="cs_test_a1b2c3",
        order_id=ORDER_ID,
        amount_cents=50400,
        occurred_at=datetime.fromtimestamp(int(NOW) - 2, UTC),
    )


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("checkout.session.async_payment_succeeded", "paid"),
        ("checkout.session.async_payment_failed", "failed"),
        ("checkout.session.expired", "expired"),
    ],
)
def test_each_checkout_outcome_has_its_kind(event_type: str, kind: str) -> None:
    body = stripe_event(event_type, payment_status="unpaid" if kind != "paid" else "paid")
    notice = VERIFIER.parse(body, signed(body), NOW)
    assert notice is not None and notice.kind == kind


def test_events_we_do_not_act_on_are_acknowledged_and_ignored() -> None:
    for body in (
        stripe_event("payment_intent.succeeded"),
        stripe_event("checkout.session.completed", payment_status="unpaid"),  # a bank debit still on its way
    ):
        assert VERIFIER.parse(body, signed(body), NOW) is None


def test_the_order_is_found_from_the_metadata_when_the_reference_is_absent() -> None:
    body = stripe_event(client_reference_id=None)
    notice = VERIFIER.parse(body, signed(body), NOW)
    assert notice is not None and notice.order_id == ORDER_ID

    body = stripe_event(client_reference_id=None, metadata={})
    notice = VERIFIER.parse(body, signed(body), NOW)
    assert notice is not None and notice.order_id is None  # the caller looks the order up by its session id


def test_any_of_several_v1_signatures_may_match_as_while_stripe_rolls_a_secret() -> None:
    body = stripe_event()
    old = signature_header(body, "whsec_old", int(NOW)).split(",")[1]
    header = f"t={int(NOW)},{old},v1={signed(body).split('v1=')[1]},v0=ignored"
    assert VERIFIER.parse(body, header, NOW) is not None


def test_the_signature_is_the_one_stripes_own_library_makes_and_checks() -> None:
    body = stripe_event()
    made_by_stripe = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, int(NOW))
    assert made_by_stripe == signed(body)
    assert VERIFIER.parse(body, made_by_stripe, NOW) is not None
    stripe.WebhookSignature.verify_header(body, signed(body), SECRET, tolerance=None)


def test_a_replayed_webhook_reads_as_the_same_event_id() -> None:
    # The signature cannot tell a replay from Stripe's own redelivery: the caller applies each event id once
    # (webhook_events' primary key, in the transaction of the effects).
    body = stripe_event()
    header = signed(body)
    first = VERIFIER.parse(body, header, NOW)
    replayed = VERIFIER.parse(body, header, NOW + 60)
    assert first is not None and replayed is not None and replayed.event_id == first.event_id


# --- webhooks: anything else is refused with a typed error -----------------------------------------------------


def test_a_webhook_signed_with_another_secret_is_refused() -> None:
    body = stripe_event()
    with pytest.raises(BadSignature) as refused:
        VERIFIER.parse(body, signed(body, secret="whsec_forger"), NOW)
    assert refused.value.code == "bad_signature"


def test_a_tampered_body_is_refused() -> None:
    body = stripe_event()
    tampered = body.replace(b'"amount_total": 50400', b'"amount_total": 1')
    assert tampered != body
    with pytest.raises(BadSignature):
        VERIFIER.parse(tampered, signed(body), NOW)


def test_a_signature_over_another_timestamp_is_refused() -> None:
    body = stripe_event()
    header = signed(body).replace(f"t={int(NOW)}", f"t={int(NOW) + 1}")
    with pytest.raises(BadSignature):
        VERIFIER.parse(body, header, NOW)


@pytest.mark.parametrize("age", [TOLERANCE + 1, -(TOLERANCE + 1), 86_400, -86_400])
def test_a_signature_outside_the_tolerance_past_or_future_is_stale(age: int) -> None:
    body = stripe_event()
    with pytest.raises(StaleSignature) as refused:
        VERIFIER.parse(body, signed(body, at=NOW - age), NOW)
    assert refused.value.code == "stale_signature"


@pytest.mark.parametrize("age", [TOLERANCE, -TOLERANCE, 0])
def test_a_signature_at_the_tolerance_edge_is_accepted(age: int) -> None:
    body = stripe_event()
    assert VERIFIER.parse(body, signed(body, at=NOW - age), NOW) is not None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=" + "0" * 64,  # no timestamp
        f"t={int(NOW)}",  # no signature
        f"t={int(NOW)},v0=" + "0" * 64,  # another scheme only
        f"t=+{int(NOW)},v1=" + "0" * 64,
        f"t={int(NOW)},t={int(NOW)},v1=" + "0" * 64,
        f"t=1e9,v1={'0' * 64}",
        f"t={int(NOW)},v1=XYZ",
        f"t={int(NOW)},v1={'é' * 64}",
        "garbage",
        "t=" + "9" * 5000,
    ],
)
def test_a_missing_or_malformed_header_is_a_bad_signature(header: str | None) -> None:
    body = stripe_event()
    with pytest.raises(BadSignature):
        VERIFIER.parse(body, header, NOW)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe\x00not utf-8",
        b'{"id": "evt_1\x00", "type": "checkout.session.completed"}',
        b"[1, 2, 3]",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "evt_1", "type": "checkout.session.completed", "created": ' + b"9" * 5000 + b"}",
        json.dumps({"type": "checkout.session.completed"}).encode(),  # no id
        json.dumps({"id": "evt_1\u0000", "type": "checkout.session.completed"}).encode(),
        json.dumps({"id": "evt_1", "type": 7}).encode(),
        json.dumps({"id": "evt_1", "type": "checkout.session.expired", "created": 1, "data": {}}).encode(),
        json.dumps({"id": "evt_1", "type": "checkout.session.expired", "data": {"object": {"id": "cs_1"}}}).encode(),
        stripe_event(id=None),
        stripe_event(amount_total="50400"),
        stripe_event(amount_total=2**64),
        stripe_event(amount_total=True),
        b" " * (256 * 1024 + 1),
    ],
)
def test_a_payload_that_is_not_a_checkout_event_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidPayload) as refused:
        VERIFIER.parse(body, signed(body), NOW)
    assert refused.value.code == "invalid_payload"


@settings(max_examples=300, deadline=None)
@given(header=st.one_of(st.none(), st.text(max_size=300), st.from_regex(r"t=[0-9]{1,12}(,v[01]=[0-9a-f]{0,70})*")))
def test_any_header_gives_a_notice_or_a_typed_refusal(header: str | None) -> None:
    body = stripe_event()
    try:
        VERIFIER.parse(body, header, NOW)
    except WebhookError as refused:
        assert refused.code in {"bad_signature", "stale_signature", "invalid_payload"}


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.binary(max_size=500), st.text(max_size=500).map(str.encode)))
def test_any_signed_body_gives_a_notice_nothing_or_invalid_payload(body: bytes) -> None:
    try:
        VERIFIER.parse(body, signed(body), NOW)
    except InvalidPayload:
        pass


# --- the sandbox ------------------------------------------------------------------------------------------------


async def test_the_sandbox_opens_its_checkout_on_the_public_pay_page() -> None:
    provider = SandboxProvider("http://127.0.0.1:8000/", VERIFIER, clock=lambda: NOW)

    first = await provider.create_checkout(request())
    second = await provider.create_checkout(request())

    assert first.provider_session_id.startswith("cs_sandbox_")
    assert first.url == f"http://127.0.0.1:8000/payments/sandbox/{first.provider_session_id}"
    assert first.expires_at == datetime.fromtimestamp(int(NOW) + 3600, UTC)
    assert first.provider_session_id != second.provider_session_id


@pytest.mark.parametrize("kind", ["paid", "failed", "expired"])
def test_the_sandbox_events_pass_the_same_check_as_stripes(kind: str) -> None:
    provider = SandboxProvider("http://127.0.0.1:8000", VERIFIER)

    body, header = sandbox_event(kind, "cs_sandbox_0123abcd", ORDER_ID, 50400, SECRET, NOW)  # type: ignore[arg-type]
    notice = provider.parse_webhook(body, header, NOW + 1)

    assert notice is not None
    assert (notice.kind, notice.provider_session_id, notice.order_id, notice.amount_cents) == (
        kind,
        "cs_sandbox_0123abcd",
        ORDER_ID,
        50400,
    )
    assert notice.event_id.startswith("evt_sandbox_")
    stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=None)  # Stripe's own check agrees


def test_each_sandbox_event_has_its_own_id_and_a_forged_one_is_refused() -> None:
    first, _ = sandbox_event("paid", "cs_sandbox_1", ORDER_ID, 100, SECRET, NOW)
    second, _ = sandbox_event("paid", "cs_sandbox_1", ORDER_ID, 100, SECRET, NOW)
    assert json.loads(first)["id"] != json.loads(second)["id"]

    body, header = sandbox_event("paid", "cs_sandbox_1", ORDER_ID, 100, "whsec_guessed", NOW)
    with pytest.raises(BadSignature):
        VERIFIER.parse(body, header, NOW)
