"""Outgoing webhooks through a real notifier, Kafka and mail catcher, to HTTPS receivers on 127.0.0.1: endpoints
registered through the notifier's internal API are sent the events published on Kafka as the producers publish them,
signed so that the verification snippet of docs/webhooks.md (run here as written there) accepts them; a replay is
detectable (same delivery id on every retry, a stale timestamp refused); a receiver answering 500 is retried, then
disabled, and its manager mailed; a rotation signs with both secrets for its overlap; another account sees nothing."""

import asyncio
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from webhook_receiver import Receiver

from api_world import unique_email
from contracts import encode
from contracts.base import Money, VatAmounts
from contracts.events.billing import TokenPurchased
from contracts.events.enrollment import Enrolled
from mail import wait_for_mail

pytestmark = pytest.mark.infra

DOCS = Path(__file__).parents[1] / "docs" / "webhooks.md"


def documented_verify() -> tuple[Any, type[Exception]]:
    """`verify` and `InvalidSignature` from the one Python block of docs/webhooks.md."""
    [code] = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace["verify"], namespace["InvalidSignature"]


@pytest.fixture
async def notifier(system):  # type: ignore[no-untyped-def]
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("notifier"), headers=headers, timeout=30) as client:
        yield client


async def register(notifier: httpx.AsyncClient, account_id: uuid.UUID, url: str, events: list[str], **more: Any):
    answer = await notifier.post(
        f"/internal/accounts/{account_id}/webhooks",
        json={"url": url, "events": events, "created_by_email": unique_email("hooks"), "language": "fr"} | more,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def publish(system, *events) -> None:  # type: ignore[no-untyped-def]
    producer = AIOKafkaProducer(bootstrap_servers=system.stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            record = encode(event, source="test")
            await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()


def enrolled(account_id: uuid.UUID) -> Enrolled:
    return Enrolled(enrollment_id=uuid.uuid4(), account_id=account_id, session_id=uuid.uuid4())


def tokens_purchased(account_id: uuid.UUID) -> TokenPurchased:
    return TokenPurchased(
        account_id=account_id,
        order_id=uuid.uuid4(),
        lot_id=uuid.uuid4(),
        tokens=10,
        bonus_tokens=2,
        amounts=VatAmounts(
            net=Money(amount_cents=60000),
            vat=Money(amount_cents=12000),
            gross=Money(amount_cents=72000),
            vat_rate_bp=2000,
        ),
        payment_method="card",
        expires_at=datetime.now(UTC) + timedelta(days=365),
        balance_after=12,
    )


async def until(check, timeout: float = 30, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        await asyncio.sleep(0.2)
    return result


async def test_events_arrive_signed_and_the_documented_snippet_verifies_them(system, notifier, webhook_tls):
    verify, invalid = documented_verify()
    account = uuid.uuid4()
    async with Receiver(webhook_tls) as receiver:
        endpoint = await register(notifier, account, receiver.url, ["tokens.credited", "enrolment.confirmed"])
        secret = endpoint.pop("secret")
        assert secret.startswith("whsec_") and endpoint["status"] == "active"
        assert endpoint["events"] == ["enrolment.confirmed", "tokens.credited"]
        listed = (await notifier.get(f"/internal/accounts/{account}/webhooks")).json()
        assert listed == {"endpoints": [endpoint]} and secret not in json.dumps(listed)  # never shown again

        confirmed, credited = enrolled(account), tokens_purchased(account)
        await publish(system, confirmed, credited, enrolled(uuid.uuid4()))  # the last: another account's
        requests = await receiver.wait_for(2)
        await asyncio.sleep(0.5)
        assert len(receiver.requests) == 2
        by_type = {}
        for request in requests:
            verify(secret, request.headers, request.body)
            payload = json.loads(request.body)
            by_type[payload["type"]] = payload
            assert request.headers["visiopass-webhook-id"] == payload["id"]
            assert request.headers["visiopass-event"] == payload["type"]
            assert request.headers["user-agent"] == "Visiopass-Webhooks/1"
            assert request.headers["content-type"] == "application/json"
            assert payload["account_id"] == str(account)
            assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", request.headers["visiopass-signature"])
        assert by_type["enrolment.confirmed"]["data"] == {
            "enrollment_id": str(confirmed.enrollment_id),
            "session_id": str(confirmed.session_id),
            "privatisation": False,
        }
        assert by_type["tokens.credited"]["data"] | {"expires_at": None} == {
            "tokens": 10,
            "bonus_tokens": 2,
            "lot_id": str(credited.lot_id),
            "order_id": str(credited.order_id),
            "expires_at": None,
            "balance_after": 12,
        }

        # a replay: the captured request, sent again six minutes later, is refused by its timestamp
        request = requests[0]
        signed_at = int(request.headers["visiopass-signature"].split(",")[0][2:])
        with mock.patch("time.time", return_value=signed_at + 360), pytest.raises(invalid, match="timestamp"):
            verify(secret, request.headers, request.body)
        with pytest.raises(invalid):
            verify("whsec_" + "x" * 43, request.headers, request.body)

        log = await until(
            lambda: _deliveries(notifier, account, endpoint["id"], lambda d: d["total"] == 2 and _all_sent(d)),
            what="two sent deliveries in the log",
        )
        assert {d["type"] for d in log["deliveries"]} == {"enrolment.confirmed", "tokens.credited"}
        assert {d["id"] for d in log["deliveries"]} == {r.headers["visiopass-webhook-id"] for r in requests}
        assert all((d["attempts"], d["response_status"], d["last_error"]) == (1, 200, None) for d in log["deliveries"])

        # a rotation: the new secret and, for its overlap, the previous one both sign
        rotated = await notifier.post(
            f"/internal/accounts/{account}/webhooks/{endpoint['id']}/rotate-secret", json={"overlap_hours": 1}
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != secret and rotated.json()["secret_rotation_ends_at"] is not None
        ping = await notifier.post(f"/internal/accounts/{account}/webhooks/{endpoint['id']}/test")
        assert ping.status_code == 202, ping.text
        [*_, pinged] = await receiver.wait_for(3)
        assert json.loads(pinged.body)["type"] == "ping" and json.loads(pinged.body)["data"] == {}
        assert pinged.headers["visiopass-webhook-id"] == ping.json()["delivery_id"]
        assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}", pinged.headers["visiopass-signature"])
        verify(new_secret, pinged.headers, pinged.body)
        verify(secret, pinged.headers, pinged.body)


async def _deliveries(notifier: httpx.AsyncClient, account: uuid.UUID, endpoint_id: str, done) -> Any:  # type: ignore[no-untyped-def]
    answer = await notifier.get(f"/internal/accounts/{account}/webhooks/{endpoint_id}/deliveries")
    assert answer.status_code == 200, answer.text
    return answer.json() if done(answer.json()) else None


def _all_sent(log: dict[str, Any]) -> bool:
    return all(d["status"] == "sent" for d in log["deliveries"])


async def test_a_failing_receiver_is_retried_then_disabled_and_its_manager_mailed(system, notifier, webhook_tls):
    verify, _ = documented_verify()
    account, manager = uuid.uuid4(), unique_email("hooks-manager")
    async with Receiver(webhook_tls, status=500) as receiver:
        endpoint = await register(
            notifier, account, receiver.url, ["enrolment.confirmed"], created_by_email=manager, language="en"
        )
        await publish(system, enrolled(account))
        mail = await wait_for_mail(system.stack.mail_api, manager, timeout=60, subject_contains="webhook was disabled")
        attempts = receiver.requests
    assert len(attempts) == 3  # NOTIFIER_WEBHOOK_MAX_ATTEMPTS of the test system
    assert len({request.headers["visiopass-webhook-id"] for request in attempts}) == 1  # one id: a retry, not news
    assert len({request.body for request in attempts}) == 1
    for request in attempts:
        verify(endpoint["secret"], request.headers, request.body)  # signed again at each attempt

    link = f"{system.url('gateway')}/account/webhooks/{endpoint['id']}"
    assert link in mail["text"] and "500" in mail["text"]
    assert receiver.url.split("?")[0] in mail["text"] and "source=test" not in mail["text"]
    shown = (await notifier.get(f"/internal/accounts/{account}/webhooks/{endpoint['id']}")).json()
    assert shown["status"] == "disabled" and "3 attempts failed" in shown["disabled_reason"]
    [delivery] = (await notifier.get(f"/internal/accounts/{account}/webhooks/{endpoint['id']}/deliveries")).json()[
        "deliveries"
    ]
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == ("failed", 3, 500)
    assert delivery["last_error"].startswith("receiver answered 500 Internal Server Error")

    enabled = await notifier.patch(f"/internal/accounts/{account}/webhooks/{endpoint['id']}", json={"status": "active"})
    assert enabled.status_code == 200, enabled.text
    assert (enabled.json()["status"], enabled.json()["disabled_reason"]) == ("active", None)


async def test_an_endpoint_is_its_accounts_only_and_bad_input_is_refused(system, notifier):
    owner, other = uuid.uuid4(), uuid.uuid4()
    endpoint = await register(notifier, owner, "https://hooks.example.com/in", ["invoice.issued"])
    path = f"/internal/accounts/{other}/webhooks/{endpoint['id']}"
    for method, url, body in [
        ("GET", path, None),
        ("PATCH", path, {"status": "active"}),
        ("DELETE", path, None),
        ("POST", f"{path}/rotate-secret", {}),
        ("POST", f"{path}/test", None),
        ("GET", f"{path}/deliveries", None),
    ]:
        answer = await notifier.request(method, url, json=body)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", (method, url, answer.text)
    assert (await notifier.get(f"/internal/accounts/{other}/webhooks")).json() == {"endpoints": []}
    kept = await notifier.get(f"/internal/accounts/{owner}/webhooks/{endpoint['id']}")
    assert kept.status_code == 200 and kept.json()["status"] == "active"

    types = (await notifier.get("/internal/webhook-event-types")).json()["event_types"]
    assert types == [
        "enrolment.confirmed",
        "enrolment.cancelled",
        "participation_link.issued",
        "invoice.issued",
        "tokens.credited",
    ]
    for url in [
        "http://hooks.example.com/in",
        "https://user:pw@hooks.example.com/in",
        "https://hooks.example.com/in#part",
        "https:///in",
        "https://hooks.example.com/" + "a" * 2000,
        "not a url",
        "https://hooks.example.com:99999/in",
        "https://[::1/in",
        "https://xn--a.com/in",
    ]:
        refused = await notifier.post(
            f"/internal/accounts/{owner}/webhooks",
            json={"url": url, "events": ["invoice.issued"], "created_by_email": "a@b.fr", "language": "fr"},
        )
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_url", (url, refused.text)
    for body in [
        {"url": "https://hooks.example.com/\x00", "events": ["invoice.issued"], "created_by_email": "a@b.fr"},
        {"url": "https://hooks.example.com/in", "events": ["invoice.issued"], "created_by_email": "not an address"},
        {"url": "https://hooks.example.com/in", "events": "invoice.issued", "created_by_email": "a@b.fr"},
        {
            "url": "https://hooks.example.com/in",
            "events": ["invoice.issued"],
            "created_by_email": "a@b.fr",
            "language": "de",
        },
    ]:
        refused = await notifier.post(f"/internal/accounts/{owner}/webhooks", json=body)
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_request", (body, refused.text)
    rotation = await notifier.post(
        f"/internal/accounts/{owner}/webhooks/{endpoint['id']}/rotate-secret", json={"overlap_hours": 73}
    )
    assert rotation.status_code == 400 and rotation.json()["code"] == "invalid_request"
    for events in [[], ["invoice.paid"]]:
        refused = await notifier.post(
            f"/internal/accounts/{owner}/webhooks",
            json={"url": "https://hooks.example.com/in", "events": events, "created_by_email": "a@b.fr"},
        )
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_events", (events, refused.text)

    for _ in range(9):
        await register(notifier, owner, "https://hooks.example.com/in", ["invoice.issued"])
    eleventh = await notifier.post(
        f"/internal/accounts/{owner}/webhooks",
        json={"url": "https://hooks.example.com/in", "events": ["invoice.issued"], "created_by_email": "a@b.fr"},
    )
    assert eleventh.status_code == 409 and eleventh.json()["code"] == "too_many_endpoints"
    deleted = await notifier.delete(f"/internal/accounts/{owner}/webhooks/{endpoint['id']}")
    assert deleted.status_code == 204
    assert (await notifier.get(f"/internal/accounts/{owner}/webhooks/{endpoint['id']}")).status_code == 404
