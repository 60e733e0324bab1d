"""Outgoing webhooks (notifier.webhooks): the signature the documented snippet verifies, its headers, two v1 during a
rotation's overlap, receivers on private addresses refused, the receiver's answers told apart; and on a real
notifier database, with a receiver faked at the HTTP transport: events planned per subscribed active endpoint, a
delivery failing for good disabling its endpoint and planning the manager's mail, a disabled or deleted endpoint's
delivery failing at once."""

import hashlib
import hmac
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from contracts import Envelope
from contracts.base import Money, VatAmounts
from contracts.events.billing import TokenPurchased
from contracts.events.enrollment import Enrolled
from contracts.secrets import Keyring
from notifier import webhooks
from notifier.delivery import Policy, claim, deliver
from notifier.models import deliveries, webhook_endpoints
from notifier.service import TransientDeliveryError, Undeliverable
from notifier.webhooks import WebhookSender, destination, sign, signed_headers
from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

DOCS = Path(__file__).parents[3] / "docs" / "webhooks.md"
SECRET = "whsec_" + "a" * 43
BODY = b'{"data":{},"id":"d1","type":"ping"}'


def documented_verify() -> Any:
    """The `verify` of docs/webhooks.md's Python block, as a receiver would copy it."""
    [code] = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace["verify"], namespace["InvalidSignature"]


def test_the_documented_snippet_verifies_a_signature_and_refuses_the_rest() -> None:
    verify, invalid = documented_verify()
    now = int(time.time())
    headers = signed_headers("d1", "ping", [SECRET], BODY, now)
    verify(SECRET, headers, BODY)
    verify(SECRET, {name.lower(): value for name, value in headers.items()}, BODY)
    with pytest.raises(invalid):
        verify("whsec_other", headers, BODY)
    with pytest.raises(invalid):
        verify(SECRET, headers, BODY + b" ")
    with pytest.raises(invalid):
        verify(SECRET, signed_headers("d1", "ping", [SECRET], BODY, now - 301), BODY)  # replayed later
    with pytest.raises(invalid):
        verify(SECRET, {"Visiopass-Signature": f"t={now}"}, BODY)


def test_the_signature_is_hmac_sha256_over_the_timestamp_and_the_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign([SECRET], 1700000000, BODY) == f"t=1700000000,v1={expected}"
    headers = signed_headers("d1", "invoice.issued", [SECRET], BODY, 1700000000)
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": "Visiopass-Webhooks/1",
        "Visiopass-Webhook-Id": "d1",
        "Visiopass-Event": "invoice.issued",
        "Visiopass-Signature": f"t=1700000000,v1={expected}",
    }


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    verify, _ = documented_verify()
    previous = webhooks.new_secret()
    header = sign([SECRET, previous], int(time.time()), BODY)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}", header)
    verify(SECRET, {"Visiopass-Signature": header}, BODY)
    verify(previous, {"Visiopass-Signature": header}, BODY)


def test_secrets_are_random_and_sealed_for_their_endpoint() -> None:
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 43 and secret != webhooks.new_secret()
    keyring, endpoint_id = Keyring.generate(), uuid.uuid4()
    sealed = webhooks.seal_secret(secret, keyring, endpoint_id)
    assert secret not in sealed and webhooks.open_secret(sealed, keyring, endpoint_id) == secret
    with pytest.raises(ValueError):
        webhooks.open_secret(sealed, keyring, uuid.uuid4())  # moved to another endpoint: it does not open


def test_the_body_is_the_same_bytes_whatever_the_order_of_its_keys() -> None:
    assert webhooks.body_bytes({"b": 1, "a": {"d": "é", "c": None}}) == '{"a":{"c":null,"d":"é"},"b":1}'.encode()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "ff02::1",
    ],
)
async def test_a_receiver_on_a_private_or_reserved_address_is_refused(address: str) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", address]  # one private address among public ones is enough

    with pytest.raises(Undeliverable, match="private or reserved"):
        await destination("hooks.example.com", 443, allow_private=False, resolver=resolver)
    assert await destination("hooks.example.com", 443, allow_private=True, resolver=resolver) == "93.184.215.14"


async def test_a_public_address_is_taken_and_a_name_that_does_not_resolve_is_tried_again() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    async def unknown(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    assert await destination("hooks.example.com", 443, allow_private=False, resolver=public) == "93.184.215.14"
    with pytest.raises(TransientDeliveryError, match="cannot resolve"):
        await destination("nowhere.example", 443, allow_private=False, resolver=unknown)


def receiver(answer: httpx.Response | Exception, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle)


async def public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


async def post(answer: httpx.Response | Exception, seen: list[httpx.Request] | None = None) -> int:
    sender = WebhookSender(None, None, resolver=public, transport=receiver(answer, seen))
    try:
        return await sender.post(httpx.URL("https://hooks.example.com/in?k=1"), {"X": "1"}, BODY)
    finally:
        await sender.aclose()


async def test_a_2xx_is_sent_to_the_address_checked_for_the_hosts_name() -> None:
    seen: list[httpx.Request] = []
    assert await post(httpx.Response(204), seen) == 204
    [request] = seen
    assert request.url == "https://93.184.215.14/in?k=1" and request.headers["Host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com" and request.content == BODY


@pytest.mark.parametrize(
    ("answer", "failure", "status", "retry_after"),
    [
        (httpx.Response(410, text="gone for good"), Undeliverable, 410, None),
        (httpx.Response(500, text="boom"), TransientDeliveryError, 500, None),
        (httpx.Response(404), TransientDeliveryError, 404, None),
        (httpx.Response(301, headers={"Location": "https://elsewhere.example/"}), TransientDeliveryError, 301, None),
        (httpx.Response(429, headers={"Retry-After": "120"}), TransientDeliveryError, 429, 120),
        (httpx.Response(503, headers={"Retry-After": "999999"}), TransientDeliveryError, 503, 3600),
        (httpx.Response(500, headers={"Retry-After": "120"}), TransientDeliveryError, 500, None),
        (httpx.ConnectTimeout("slow"), TransientDeliveryError, None, None),
        (httpx.ConnectError("refused"), TransientDeliveryError, None, None),
    ],
)
async def test_the_receivers_answer_decides_between_retry_and_failure(answer, failure, status, retry_after) -> None:
    with pytest.raises(failure) as raised:
        await post(answer)
    assert raised.value.code == status
    assert getattr(raised.value, "retry_after", None) == retry_after
    if status == 410:
        assert "410" in raised.value.reason and "gone for good" in raised.value.reason


async def test_an_http_url_is_refused() -> None:
    sender = WebhookSender(None, None, resolver=public, transport=receiver(httpx.Response(200)))
    with pytest.raises(Undeliverable, match="https"):
        await sender.post(httpx.URL("http://hooks.example.com/"), {}, BODY)
    await sender.aclose()


# -- on a real notifier database ----------------------------------------------------------------------------


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=4)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


KEYRING = Keyring.generate()
POLICY = Policy(
    sender="Visiopass <no-reply@visiopass.test>",
    webhook_max_attempts=3,
    webhook_backoff_base_seconds=1,
    public_base_url="https://visiopass.test",
)


async def endpoint(
    db: Database, account_id: uuid.UUID, events: list[str], *, url: str = "https://hooks.example.com/in"
):
    endpoint_id = uuid.uuid4()
    async with db.transaction() as session:
        await session.execute(
            insert(webhook_endpoints).values(
                id=endpoint_id,
                account_id=account_id,
                url=url,
                events=events,
                secret_sealed=webhooks.seal_secret(SECRET, KEYRING, endpoint_id),
                created_by_email="manager@lycee-test.fr",
                language="en",
            )
        )
    return endpoint_id


def envelope(event: Any) -> Envelope:
    now = datetime(2027, 3, 2, 9, 15, tzinfo=UTC)
    return Envelope(uuid.uuid4(), "/visiopass/test", "t", now, "s", "d", None, None, event)


async def webhook_rows(db: Database) -> list[Any]:
    async with db.transaction() as session:
        return (
            await session.execute(
                select(deliveries).where(deliveries.c.channel == "webhook").order_by(deliveries.c.created_at)
            )
        ).all()


async def test_an_event_is_planned_once_for_each_active_endpoint_subscribed_to_it(db: Database) -> None:
    account = uuid.uuid4()
    subscribed = await endpoint(db, account, ["enrolment.confirmed", "tokens.credited"])
    await endpoint(db, account, ["invoice.issued"])  # another type
    await endpoint(db, uuid.uuid4(), ["enrolment.confirmed"])  # another account
    disabled = await endpoint(db, account, ["enrolment.confirmed"])
    async with db.transaction() as session:
        await session.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == disabled).values(status="disabled")
        )
    enrolled = envelope(Enrolled(enrollment_id=uuid.uuid4(), account_id=account, session_id=uuid.uuid4()))
    for _ in range(2):  # a redelivered event plans nothing new
        async with db.transaction() as session:
            await webhooks.plan_event(session, enrolled, "https://visiopass.test", None)
    [row] = await webhook_rows(db)
    assert (row.recipient, row.template, row.priority, row.account_id) == (
        str(subscribed),
        "enrolment.confirmed",
        0,
        account,
    )
    assert row.context["body"] == {
        "id": str(row.id),
        "type": "enrolment.confirmed",
        "created_at": "2027-03-02T09:15:00+00:00",
        "account_id": str(account),
        "data": {
            "enrollment_id": str(enrolled.event.enrollment_id),
            "session_id": str(enrolled.event.session_id),
            "privatisation": False,
        },
    }

    amounts = VatAmounts(
        net=Money(amount_cents=6000), vat=Money(amount_cents=1200), gross=Money(amount_cents=7200), vat_rate_bp=2000
    )
    credited = TokenPurchased(
        account_id=account, order_id=uuid.uuid4(), lot_id=uuid.uuid4(), tokens=10, bonus_tokens=1, amounts=amounts,
        payment_method="card", expires_at=datetime(2028, 3, 2, tzinfo=UTC), balance_after=11,
    )  # fmt: skip
    async with db.transaction() as session:
        await webhooks.plan_event(session, envelope(credited), "https://visiopass.test", None)
    assert (await webhook_rows(db))[1].context["body"]["data"] == {
        "tokens": 10,
        "bonus_tokens": 1,
        "lot_id": str(credited.lot_id),
        "order_id": str(credited.order_id),
        "expires_at": "2028-03-02T00:00:00+00:00",
        "balance_after": 11,
    }


async def one_pass(db: Database, sender: WebhookSender) -> None:
    await deliver(db, Outbox("notifier"), None, await claim(db, POLICY, datetime.now(UTC)), POLICY, webhooks=sender)  # type: ignore[arg-type]


async def make_due(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(update(deliveries).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))


async def test_a_receiver_that_keeps_failing_is_retried_then_disabled_and_its_manager_told(db: Database) -> None:
    account = uuid.uuid4()
    endpoint_id = await endpoint(db, account, ["enrolment.confirmed"], url="https://hooks.example.com/in?token=x")
    async with db.transaction() as session:
        await webhooks.plan_event(
            session,
            envelope(Enrolled(enrollment_id=uuid.uuid4(), account_id=account, session_id=uuid.uuid4())),
            "https://visiopass.test",
            None,
        )
    seen: list[httpx.Request] = []
    sender = WebhookSender(db, KEYRING, resolver=public, transport=receiver(httpx.Response(500, text="down"), seen))
    try:
        for attempt in range(1, 4):
            await make_due(db)
            await one_pass(db, sender)
            [row] = await webhook_rows(db)
            assert (row.attempts, row.response_status) == (attempt, 500)
            assert row.status == ("failed" if attempt == 3 else "pending")
    finally:
        await sender.aclose()
    assert len(seen) == 3 and len({r.headers["Visiopass-Webhook-Id"] for r in seen}) == 1  # one id for every retry
    assert row.last_error.startswith("receiver answered 500 Internal Server Error: down") and row.context is None
    async with db.transaction() as session:
        disabled = (await session.execute(select(webhook_endpoints))).one()
        [mail] = (await session.execute(select(deliveries).where(deliveries.c.channel == "email"))).all()
    assert disabled.status == "disabled" and disabled.disabled_at is not None
    assert disabled.disabled_reason == "3 attempts failed, the last: receiver answered 500 Internal Server Error: down"
    assert (mail.template, mail.recipient, mail.language, mail.account_id) == (
        "webhook_disabled",
        "manager@lycee-test.fr",
        "en",
        account,
    )
    assert mail.context == {
        "url": "https://hooks.example.com/in",  # not its query, which may hold the receiver's own token
        "reason": disabled.disabled_reason,
        "link": f"https://visiopass.test/account/webhooks/{endpoint_id}",
    }


async def test_a_gone_receiver_is_disabled_at_once(db: Database) -> None:
    account = uuid.uuid4()
    await endpoint(db, account, ["enrolment.confirmed"])
    async with db.transaction() as session:
        await webhooks.plan_event(
            session,
            envelope(Enrolled(enrollment_id=uuid.uuid4(), account_id=account, session_id=uuid.uuid4())),
            "https://visiopass.test",
            None,
        )
    sender = WebhookSender(db, KEYRING, resolver=public, transport=receiver(httpx.Response(410)))
    await one_pass(db, sender)
    await sender.aclose()
    [row] = await webhook_rows(db)
    assert (row.status, row.attempts, row.response_status) == ("failed", 1, 410)
    async with db.transaction() as session:
        assert (await session.execute(select(webhook_endpoints.c.status))).scalar() == "disabled"


async def test_a_delivery_to_a_disabled_or_deleted_endpoint_fails_at_once_and_a_sent_one_is_signed(
    db: Database,
) -> None:
    account = uuid.uuid4()
    kept, disabled, deleted = [await endpoint(db, account, ["enrolment.confirmed"]) for _ in range(3)]
    async with db.transaction() as session:
        await webhooks.plan_event(
            session,
            envelope(Enrolled(enrollment_id=uuid.uuid4(), account_id=account, session_id=uuid.uuid4())),
            "https://visiopass.test",
            None,
        )
        await session.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == disabled).values(status="disabled")
        )
        await session.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == deleted))
    seen: list[httpx.Request] = []
    sender = WebhookSender(db, KEYRING, resolver=public, transport=receiver(httpx.Response(200), seen))
    await one_pass(db, sender)
    await sender.aclose()
    outcome = {row.recipient: (row.status, row.last_error) for row in await webhook_rows(db)}
    assert outcome == {
        str(kept): ("sent", None),
        str(disabled): ("failed", "endpoint disabled"),
        str(deleted): ("failed", "endpoint deleted"),
    }
    verify, _ = documented_verify()
    [request] = seen
    verify(SECRET, request.headers, request.content)
    assert request.headers["Visiopass-Event"] == "enrolment.confirmed"
