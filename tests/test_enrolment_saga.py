"""The enrolment saga through the real services and Kafka: catalogue's session (its event) reaches enrollment's
copy, an enrolment request is answered 202 pending, billing debits or refuses, enrollment confirms or rejects within
seconds; redelivered answers change nothing; a cancellation gives billing's tokens back; each refusal is told with its
reason; requests made while billing is down stay pending and are confirmed once it is back; the sessions a purchase
order names are enrolled in once its tokens are credited."""

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from test_billing_saga import funded_account, outcomes, publish, purchase_order_of

from api_world import sign_up, unique_email
from contracts import KafkaRecord, decode, encode
from contracts.events.billing import TokensDebited
from contracts.events.catalogue import SessionScheduled
from kit import records_with_keys, wait_for
from mail import wait_for_mail


async def new_session(system: Any, enrollment: httpx.AsyncClient, **fields: Any) -> str:
    """A session published on catalogue's topic (as catalogue would), once enrollment's copy has it."""
    event = SessionScheduled(
        session_id=uuid.uuid4(),
        theme_id=uuid.uuid4(),
        title="Prise en main de Pronote",
        starts_at=fields.get("starts_at", datetime.now(UTC) + timedelta(days=10)),
        duration_minutes=60,
        capacity=fields.get("capacity", 20),
        price_tokens=fields.get("price_tokens", 1),
        premium_price_tokens=5,
        provider="bbb",
    )
    await publish(system, [event])

    async def known() -> bool:
        return (await enrollment.get(f"/internal/sessions/{event.session_id}/enrolments")).status_code == 200

    await wait_for(known, timeout=30, what="enrollment's copy of the session")
    return str(event.session_id)


async def status_until(enrollment: httpx.AsyncClient, enrollment_id: str, account_id: str, status: str) -> Any:
    started = time.monotonic()
    while True:
        answer = await enrollment.get(f"/internal/enrolments/{enrollment_id}", params={"account_id": account_id})
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] == status:
            return answer.json()
        assert time.monotonic() - started < 30, f"not {status}: {answer.json()}"
        await _sleep()


async def _sleep() -> None:
    await asyncio.sleep(0.1)


async def enrolment_events(system: Any, enrollment_id: str) -> list[Any]:
    records = await records_with_keys(system.stack.kafka_bootstrap, "enrollment.enrollment", [enrollment_id])
    return [decode(r.topic, r.key, r.value, r.headers).event for r in records]


async def balance(system: Any, account_id: str) -> int:
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("billing"), headers=headers) as billing:
        value: int = (await billing.get(f"/internal/accounts/{account_id}/wallet")).json()["balance"]
        return value


def clients(system: Any) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    headers = {"X-Internal-Token": system.internal_token}
    return (
        httpx.AsyncClient(base_url=system.url("gateway"), timeout=30),
        httpx.AsyncClient(base_url=system.url("enrollment"), headers=headers, timeout=30),
    )


async def test_an_enrolment_is_confirmed_redeliveries_change_nothing_and_a_cancellation_refunds(system) -> None:  # type: ignore[no-untyped-def]
    gateway, enrollment = clients(system)
    async with gateway, enrollment:
        account_id = await funded_account(system, gateway, 3)  # one for billing's probe, two left
        session_id = await new_session(system, enrollment, price_tokens=2)
        asked = await enrollment.post(
            "/internal/enrolments",
            json={
                "account_id": account_id,
                "session_id": session_id,
                "expected_participants": 12,
                "questions": "Peut-on voir l'export des notes ?",
            },
        )
        assert asked.status_code == 202, asked.text
        assert asked.json()["status"] == "pending"
        enrollment_id = asked.json()["id"]
        confirmed = await status_until(enrollment, enrollment_id, account_id, "confirmed")
        assert (confirmed["tokens"], confirmed["session"]["id"]) == (2, session_id)
        assert await balance(system, account_id) == 0
        again = await enrollment.post(
            "/internal/enrolments",
            json={"account_id": account_id, "session_id": session_id, "expected_participants": 1},
        )
        assert (again.status_code, again.json()["code"]) == (409, "already_enrolled")

        # billing's answer delivered again: the very record, and the same answer under a new event id
        answers = await records_with_keys(system.stack.kafka_bootstrap, "billing.wallet", [account_id])
        (debit,) = [
            r
            for r in answers
            if isinstance(e := decode(r.topic, r.key, r.value, r.headers).event, TokensDebited)
            and str(e.enrollment_id) == enrollment_id
        ]
        event = decode(debit.topic, debit.key, debit.value, debit.headers).event
        same = KafkaRecord(debit.topic, debit.key, debit.value, list(debit.headers))
        await publish(system, [same, same, encode(event, source="test")])

        cancelled = await enrollment.post(
            f"/internal/enrolments/{enrollment_id}/cancellation", json={"account_id": account_id}
        )
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["status"], cancelled.json()["refund"]) == ("cancelled", True)

        async def refunded() -> bool:
            return await balance(system, account_id) == 2

        await wait_for(refunded, timeout=30, what="billing's refund")
        kinds = Counter(type(e).__name__ for e in await enrolment_events(system, enrollment_id))
        assert kinds == {"EnrollmentRequested": 1, "Enrolled": 1, "EnrollmentCancelled": 1}
        shown = await enrollment.get(f"/internal/sessions/{session_id}/enrolments")
        (item,) = shown.json()["items"]
        assert (item["status"], item["questions"]) == ("cancelled", "Peut-on voir l'export des notes ?")


async def test_an_enrolment_without_tokens_is_rejected_with_billings_reason(system) -> None:  # type: ignore[no-untyped-def]
    gateway, enrollment = clients(system)
    async with gateway, enrollment:
        account_id = await funded_account(system, gateway, 1)  # billing's probe takes it: nothing left
        session_id = await new_session(system, enrollment)
        asked = await enrollment.post(
            "/internal/enrolments",
            json={"account_id": account_id, "session_id": session_id, "expected_participants": 2},
        )
        assert asked.status_code == 202, asked.text
        rejected = await status_until(enrollment, asked.json()["id"], account_id, "rejected")
        assert rejected["reason"] == "insufficient_balance"
        events = await enrolment_events(system, asked.json()["id"])
        assert [type(e).__name__ for e in events] == ["EnrollmentRequested", "EnrollmentRejected"]
        assert [e for e in await outcomes(system, account_id) if getattr(e, "enrollment_id", None)]


async def ask(enrollment: httpx.AsyncClient, account_id: str, session_id: str, **fields: Any) -> httpx.Response:
    body = {"account_id": account_id, "session_id": session_id, "expected_participants": 1} | fields
    return await enrollment.post("/internal/enrolments", json=body)


async def test_each_refusal_reaches_the_requester_with_its_reason(system) -> None:  # type: ignore[no-untyped-def]
    gateway, enrollment = clients(system)
    async with gateway, enrollment:
        unverified = (await sign_up(gateway, "saga-unverified")).account_id
        funded = await funded_account(system, gateway, 2)
        session_id = await new_session(system, enrollment, capacity=1)

        async def billings_refusal() -> str:  # until billing knows the account: unknown_account, then its reason
            asked = await ask(enrollment, unverified, session_id)
            assert asked.status_code == 202, asked.text
            rejected = await status_until(enrollment, asked.json()["id"], unverified, "rejected")
            kinds = [type(e).__name__ for e in await enrolment_events(system, asked.json()["id"])]
            assert kinds == ["EnrollmentRequested", "EnrollmentRejected"]
            return str(rejected["reason"])

        deadline = time.monotonic() + 30
        while (reason := await billings_refusal()) == "unknown_account" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert reason == "account_unverified"

        taken = await ask(enrollment, funded, session_id)  # the one place
        assert taken.status_code == 202, taken.text
        full = await ask(enrollment, str(uuid.uuid4()), session_id)
        assert (full.status_code, full.json()["code"]) == (409, "session_full")
        soon = await new_session(system, enrollment, starts_at=datetime.now(UTC) + timedelta(minutes=30))
        closed = await ask(enrollment, funded, soon)
        assert (closed.status_code, closed.json()["code"]) == (409, "enrolment_closed")
        await status_until(enrollment, taken.json()["id"], funded, "confirmed")


async def test_requests_made_while_billing_is_down_stay_pending_then_confirm_when_it_returns(system) -> None:  # type: ignore[no-untyped-def]
    gateway, enrollment = clients(system)
    async with gateway, enrollment:
        account_id = await funded_account(system, gateway, 4)  # three left
        sessions = [await new_session(system, enrollment) for _ in range(3)]
        await asyncio.to_thread(system.stop, names=("billing",))
        try:
            asked = [await ask(enrollment, account_id, session_id) for session_id in sessions]
            assert [answer.status_code for answer in asked] == [202] * 3
            ids = [answer.json()["id"] for answer in asked]
            stopped = time.monotonic()
            while time.monotonic() - stopped < 30:  # billing away for 30 s: nothing decides them
                for enrollment_id in ids:
                    shown = await enrollment.get(
                        f"/internal/enrolments/{enrollment_id}", params={"account_id": account_id}
                    )
                    assert shown.json()["status"] == "pending", shown.text
                await asyncio.sleep(2)
        finally:
            await asyncio.to_thread(system.start, ("billing",))
        for enrollment_id in ids:
            await status_until(enrollment, enrollment_id, account_id, "confirmed")
        assert await balance(system, account_id) == 0


async def test_a_purchase_orders_sessions_are_enrolled_in_once_its_tokens_are_credited(system) -> None:  # type: ignore[no-untyped-def]
    gateway, enrollment = clients(system)
    async with gateway, enrollment:
        account_id = await funded_account(system, gateway, 1)  # verified, nothing left after the probe
        other = await funded_account(system, gateway, 2)
        wanted = await new_session(system, enrollment, price_tokens=2)
        full = await new_session(system, enrollment, capacity=1)
        filled = await ask(enrollment, other, full)
        assert filled.status_code == 202, filled.text
        email = unique_email("saga-po")
        headers = {"X-Internal-Token": system.internal_token}
        async with httpx.AsyncClient(base_url=system.url("billing"), headers=headers, timeout=30) as billing:
            notice = {"email": email, "name": "Claire", "language": "fr"}
            body = purchase_order_of(2, notice=notice, enrol_session_ids=[wanted, full])
            order = await billing.post(f"/internal/accounts/{account_id}/orders", json=body)
            assert order.status_code == 201, order.text
            assert order.json()["enrol_session_ids"] == [wanted, full]
            await asyncio.sleep(1)
            listed = await enrollment.get(f"/internal/accounts/{account_id}/enrolments", params={"when": "upcoming"})
            assert listed.json()["items"] == []  # nothing is requested before the tokens are there
            validated = await billing.post(f"/internal/orders/{order.json()['id']}/validation", json={})
            assert validated.status_code == 200, validated.text

        async def both() -> dict[str, Any]:
            answer = await enrollment.get(f"/internal/accounts/{account_id}/enrolments", params={"when": "upcoming"})
            return {item["session"]["id"]: item for item in answer.json()["items"]}

        await wait_for(lambda: _has_two(both), timeout=30, what="the purchase order's enrolments")
        items = await both()
        confirmed = await status_until(enrollment, items[wanted]["id"], account_id, "confirmed")
        assert confirmed["tokens"] == 2 and await balance(system, account_id) == 0
        assert (items[full]["status"], items[full]["reason"]) == ("rejected", "session_full")
        events = await enrolment_events(system, items[full]["id"])
        assert [(type(e).__name__, e.reason) for e in events] == [("EnrollmentRejected", "session_full")]
        assert events[0].notice is not None and events[0].notice.email == email
        await wait_for_mail(system.stack.mail_api, email, subject_contains="Inscription non retenue")
        await status_until(enrollment, filled.json()["id"], other, "confirmed")


async def _has_two(items: Any) -> bool:
    return len(await items()) == 2
