"""Billing's side of the enrolment saga through the real services and Kafka: accounts tells billing of the
verification, a purchase order funds the wallet, enrolment requests and cancellations arrive on Kafka, billing
answers on `billing.wallet` — once per enrolment whatever the redelivery, never overdrawn."""

import asyncio
import uuid
from collections import Counter

import httpx
from aiokafka import AIOKafkaProducer

from api_world import sign_up
from contracts import KafkaRecord, decode, encode
from contracts.events.billing import TokenDebitRejected, TokensDebited, TokensRefunded
from contracts.events.catalogue import SessionCancelled
from contracts.events.enrollment import EnrollmentCancelled, EnrollmentRequested
from kit import records_with_keys, wait_for

UNIT_ITEM = str(uuid.uuid5(uuid.NAMESPACE_URL, "visiopass:price-item:unit"))


def purchase_order_of(tokens: int, **fields: object) -> dict[str, object]:
    """The body of a purchase order of `tokens` unit tokens for billing's internal API (with `fields`)."""
    return {
        "payment_method": "purchase_order",
        "lines": [{"item_id": UNIT_ITEM, "quantity": tokens}],
        "buyer": {"institution_name": "Lycée saga", "kind": "school", "address": "1 rue A\n75001 Paris"},
        "buyer_order_number": "BC-1",
    } | fields


async def funded_account(system, gateway: httpx.AsyncClient, tokens: int) -> str:  # type: ignore[no-untyped-def]
    """A verified account holding `tokens` tokens from a validated purchase order (billing's internal API)."""
    manager = await sign_up(gateway, "saga", verified_with=system.stack.mail_api)
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("billing"), headers=headers, timeout=30) as billing:
        order = await billing.post(f"/internal/accounts/{manager.account_id}/orders", json=purchase_order_of(tokens))
        assert order.status_code == 201, order.text
        validated = await billing.post(f"/internal/orders/{order.json()['id']}/validation", json={})
        assert validated.status_code == 200, validated.text

        async def verified() -> bool:  # billing learns the verification from accounts' events
            probe = uuid.uuid4()
            await publish(
                system,
                [
                    EnrollmentRequested(
                        enrollment_id=probe,
                        account_id=uuid.UUID(manager.account_id),
                        session_id=uuid.uuid4(),
                        privatisation=False,
                    )
                ],
            )
            await wait_for(lambda: outcome_of(system, manager.account_id, probe), what="a probe's outcome")
            events = await outcomes(system, manager.account_id)
            return any(isinstance(e, TokensDebited) and e.enrollment_id == probe for e in events)

        await wait_for(verified, timeout=60, what="billing to know the account is verified")
    return manager.account_id


async def publish(system, events) -> None:  # type: ignore[no-untyped-def]
    """Produce each event (or an already encoded record, to send the very same record again)."""
    producer = AIOKafkaProducer(bootstrap_servers=system.stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sends = []
        for event in events:
            record = event if isinstance(event, KafkaRecord) else encode(event, source="test")
            sends.append(await producer.send(record.topic, record.value, key=record.key, headers=record.headers))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def outcomes(system, account_id: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    records = await records_with_keys(system.stack.kafka_bootstrap, "billing.wallet", [account_id])
    return [decode(r.topic, r.key, r.value, r.headers).event for r in records]


async def outcome_of(system, account_id: str, enrollment_id: uuid.UUID) -> bool:  # type: ignore[no-untyped-def]
    return any(getattr(e, "enrollment_id", None) == enrollment_id for e in await outcomes(system, account_id))


async def test_fifty_concurrent_enrolments_on_ten_tokens_debit_ten_and_reject_forty(system) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        account_id = await funded_account(system, gateway, 11)  # one for the probe, ten for the test
    account = uuid.UUID(account_id)
    requests = [
        EnrollmentRequested(
            enrollment_id=uuid.uuid4(), account_id=account, session_id=uuid.uuid4(), privatisation=False
        )
        for _ in range(50)
    ]
    await publish(system, requests)
    wanted = {request.enrollment_id for request in requests}

    async def all_answered() -> bool:
        return wanted <= {getattr(e, "enrollment_id", None) for e in await outcomes(system, account_id)}

    await wait_for(all_answered, timeout=60, what="an answer to each of the 50 requests")
    answers = [e for e in await outcomes(system, account_id) if getattr(e, "enrollment_id", None) in wanted]
    kinds = Counter(type(e).__name__ for e in answers)
    assert kinds == {"TokensDebited": 10, "TokenDebitRejected": 40}
    assert {e.reason for e in answers if isinstance(e, TokenDebitRejected)} == {"insufficient_balance"}
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("billing"), headers=headers) as billing:
        wallet = (await billing.get(f"/internal/accounts/{account_id}/wallet")).json()
        ledger = (await billing.get(f"/internal/accounts/{account_id}/ledger", params={"limit": 200})).json()
    assert wallet["balance"] == 0
    signs = {"credit": 1, "refund": 1, "debit": -1, "expiry": -1}
    assert sum(signs[line["kind"]] * line["tokens"] for line in ledger["items"]) == 0


async def test_redelivered_requests_and_cancellations_have_one_effect_each(system) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        account_id = await funded_account(system, gateway, 4)
    account = uuid.UUID(account_id)
    enrollment, session = uuid.uuid4(), uuid.uuid4()
    request = EnrollmentRequested(enrollment_id=enrollment, account_id=account, session_id=session, privatisation=False)
    record = encode(request, source="test")
    # the same record three times (a redelivery) and the same request under a new event id (a retried producer)
    await publish(system, [record] * 3 + [request])
    await wait_for(lambda: outcome_of(system, account_id, enrollment), what="the debit")
    cancelled = EnrollmentCancelled(enrollment_id=enrollment, account_id=account, session_id=session, refund=True)
    await publish(
        system, [cancelled, cancelled, SessionCancelled(session_id=session, reason="x", cancelled_at=record_time())]
    )

    async def refunded() -> bool:
        return any(
            isinstance(e, TokensRefunded) and e.enrollment_id == enrollment for e in await outcomes(system, account_id)
        )

    await wait_for(refunded, what="the refund")
    await asyncio.sleep(2)  # time for any second effect to show
    about = [e for e in await outcomes(system, account_id) if getattr(e, "enrollment_id", None) == enrollment]
    assert Counter(type(e).__name__ for e in about) == {"TokensDebited": 1, "TokensRefunded": 1}
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("billing"), headers=headers) as billing:
        assert (await billing.get(f"/internal/accounts/{account_id}/wallet")).json()["balance"] == 3


def record_time():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)
