"""Enrolment rules on a real PostgreSQL (enrollment.service through its consumers' handlers): the session copy, the
saga's ends, refusals, cancellation, the waiting list and its holds, privatisation, and the races for places."""

import asyncio
import importlib.util
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from contracts.events.billing import TokenDebitRejected, TokenPurchased, TokensDebited
from contracts.events.catalogue import (
    SessionCancelled,
    SessionEnded,
    SessionRescheduled,
    SessionStarting,
    SessionUpdated,
)
from contracts.examples import PRICE
from enrollment import jobs, service
from enrollment.models import enrolments, sessions
from enrollment.service import EnrolmentRefused
from servicekit.db import Database
from servicekit.migrations import upgrade

_spec = importlib.util.spec_from_file_location("enrollment_tests_world", Path(__file__).with_name("world.py"))
assert _spec and _spec.loader
w = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(w)
NOW, RULES, OUTBOX = w.NOW, w.RULES, w.OUTBOX


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=40)
    await upgrade(database, "enrollment")
    yield database
    await database.dispose()


async def session_row(db: Database, session_id: uuid.UUID):  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        return (await session.execute(select(sessions).where(sessions.c.id == session_id))).one()


async def refused(coro) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(EnrolmentRefused) as caught:
        await coro
    return caught.value.code


def debited(row) -> TokensDebited:  # type: ignore[no-untyped-def]
    return TokensDebited(
        account_id=row.account_id,
        enrollment_id=row.id,
        session_id=row.session_id,
        lot_id=uuid.uuid4(),
        tokens=row.tokens,
        balance_after=0,
    )


def rejected(row, reason: str = "insufficient_balance") -> TokenDebitRejected:  # type: ignore[no-untyped-def]
    return TokenDebitRejected(account_id=row.account_id, enrollment_id=row.id, session_id=row.session_id, reason=reason)


# --- the session copy -----------------------------------------------------------------------------------------


async def test_the_session_copy_follows_catalogue_and_a_cancelled_session_stays_cancelled(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=12)
    row = await session_row(db, session_id)
    assert (row.status, row.capacity, row.price_tokens, row.premium_price_tokens) == ("published", 12, 1, 5)
    assert row.ends_at - row.starts_at == timedelta(minutes=60)
    update = w.scheduled(session_id, capacity=30, title="Pronote avancé", premium_price_tokens=None)
    await w.on_session_event(db, SessionUpdated(**update.model_dump(exclude={"type"})))
    later = w.STARTS_AT + timedelta(days=1)
    await w.on_session_event(
        db,
        SessionRescheduled(session_id=session_id, previous_starts_at=w.STARTS_AT, starts_at=later, duration_minutes=90),
    )
    row = await session_row(db, session_id)
    assert (row.title, row.capacity, row.premium_price_tokens) == ("Pronote avancé", 30, None)
    assert (row.starts_at, row.ends_at) == (later, later + timedelta(minutes=90))
    starting = SessionStarting(session_id=session_id, offset="open", starts_at=later, ends_at=row.ends_at)
    await w.on_session_event(db, starting)
    assert (await session_row(db, session_id)).status == "started"
    await w.on_session_event(db, SessionEnded(session_id=session_id, ended_at=row.ends_at))
    assert (await session_row(db, session_id)).status == "ended"

    other = await w.new_session(db)
    await w.on_session_event(db, SessionCancelled(session_id=other, reason="Animateur malade", cancelled_at=NOW))
    await w.on_session_event(db, SessionUpdated(**w.scheduled(other).model_dump(exclude={"type"})))
    assert (await session_row(db, other)).status == "cancelled"


# --- the saga -------------------------------------------------------------------------------------------------


async def test_a_request_is_pending_with_its_event_then_confirmed_once(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, price_tokens=2)
    row = await w.enrol(db, session_id, questions="Peut-on voir l'export ?", expected_participants=12)
    assert (row.status, row.tokens, row.privatisation) == ("pending", 2, False)
    (requested,) = await w.published(db)
    assert requested["type"] == "EnrollmentRequested"
    assert (requested["enrollment_id"], requested["tokens"]) == (str(row.id), 2)
    await w.on_wallet_event(db, debited(row))
    await w.on_wallet_event(db, debited(row))  # a redelivery under another event id
    assert (await w.enrolment(db, row.id)).status == "confirmed"
    assert [e["type"] for e in await w.published(db)] == ["EnrollmentRequested", "Enrolled"]
    await w.on_wallet_event(db, rejected(row))  # a late, contradictory answer changes nothing
    assert (await w.enrolment(db, row.id)).status == "confirmed"


async def test_billing_refusal_rejects_with_its_reason_and_frees_the_institution_to_ask_again(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db)
    account_id = uuid.uuid4()
    row = await w.enrol(db, session_id, account_id=account_id)
    await w.on_wallet_event(db, rejected(row, "account_unverified"))
    after = await w.enrolment(db, row.id)
    assert (after.status, after.reason) == ("rejected", "account_unverified")
    last = (await w.published(db))[-1]
    assert (last["type"], last["reason"]) == ("EnrollmentRejected", "account_unverified")
    again = await w.enrol(db, session_id, account_id=account_id)
    assert again.status == "pending" and again.id != row.id


async def test_refusals_decided_at_once_write_nothing(db) -> None:  # type: ignore[no-untyped-def]
    account_id = uuid.uuid4()
    assert await refused(w.enrol(db, uuid.uuid4())) == "session_unavailable"
    session_id = await w.new_session(db, capacity=1, premium_price_tokens=None)
    closing = w.STARTS_AT - RULES.close_before
    assert await refused(w.enrol(db, session_id, now=closing)) == "enrolment_closed"
    await w.enrol(db, session_id, account_id=account_id, now=closing - timedelta(seconds=1))
    assert await refused(w.enrol(db, session_id, account_id=account_id)) == "already_enrolled"
    assert await refused(w.enrol(db, session_id)) == "session_full"
    open_one = await w.new_session(db, premium_price_tokens=None)
    assert await refused(w.enrol(db, open_one, privatisation=True)) == "privatisation_unavailable"
    cancelled = await w.new_session(db)
    await w.on_session_event(db, SessionCancelled(session_id=cancelled, reason="x", cancelled_at=NOW))
    assert await refused(w.enrol(db, cancelled)) == "session_unavailable"
    assert [e["type"] for e in await w.published(db)] == ["EnrollmentRequested"]


async def test_a_price_read_before_the_decision_is_checked_under_the_lock(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, price_tokens=2)
    stale = {
        "id": str(uuid.uuid4()),
        "account_id": str(uuid.uuid4()),
        "session_id": str(session_id),
        "status": "pending",
        "privatisation": False,
        "tokens": 1,  # the price read before catalogue changed it
        "expected_participants": 1,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }
    async with db.autocommit() as session:
        answer = await session.scalar(
            text("SELECT request_enrolment(:wanted, :close_before, :event_id, 't', 'k', 'v', '[]')"),
            {"wanted": json.dumps(stale), "close_before": RULES.close_before, "event_id": uuid.uuid4()},
        )
    assert answer == "price_changed"
    assert await w.published(db) == []
    row = await w.enrol(db, session_id, as_the_api=True)  # read again, decided at the right price
    assert (row.status, row.tokens) == ("pending", 2)
    assert [(e["type"], e["tokens"]) for e in await w.published(db)] == [("EnrollmentRequested", 2)]


async def test_the_database_refuses_a_second_active_enrolment_and_a_second_privatisation(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db)
    account_id = uuid.uuid4()

    def row(account: uuid.UUID, status: str = "pending", privatisation: bool = False) -> dict:  # type: ignore[type-arg]
        return {
            "id": uuid.uuid4(),
            "account_id": account,
            "session_id": session_id,
            "status": status,
            "privatisation": privatisation,
            "tokens": 1,
            "expected_participants": 1,
            "created_at": NOW,
            "updated_at": NOW,
        }

    async with db.transaction() as session:
        await session.execute(insert(enrolments).values([row(account_id, "rejected"), row(account_id, "cancelled")]))
        await session.execute(insert(enrolments).values(row(account_id, "confirmed")))
    for second in (row(account_id), row(uuid.uuid4(), privatisation=True), row(uuid.uuid4(), privatisation=True)):
        try:
            async with db.transaction() as session:
                if second["privatisation"]:
                    await session.execute(insert(enrolments).values(row(uuid.uuid4(), privatisation=True)))
                await session.execute(insert(enrolments).values(second))
        except IntegrityError:
            continue
        raise AssertionError(f"accepted {second}")


# --- cancellation ---------------------------------------------------------------------------------------------


async def test_cancelling_before_the_cut_off_refunds_and_after_it_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db)
    row = await w.enrol(db, session_id)
    await w.on_wallet_event(db, debited(row))
    cut_off = w.STARTS_AT - RULES.cancel_before
    async with db.transaction() as session:
        with pytest.raises(EnrolmentRefused) as caught:
            await service.cancel_enrolment(session, row.id, row.account_id, RULES, cut_off)
    assert caught.value.code == "cancellation_closed"
    async with db.transaction() as session:
        with pytest.raises(EnrolmentRefused) as caught:
            await service.cancel_enrolment(session, row.id, uuid.uuid4(), RULES, NOW)  # another account's
    assert caught.value.status == 404
    for _ in range(2):  # a second cancellation answers the same, once cancelled
        async with db.transaction() as session:
            after, events = await service.cancel_enrolment(
                session, row.id, row.account_id, RULES, cut_off - timedelta(seconds=1)
            )
            await OUTBOX.add_all(session, events)
        assert (after.status, after.reason, after.refund) == ("cancelled", "requested", True)
    cancellations = [e for e in await w.published(db) if e["type"] == "EnrollmentCancelled"]
    assert [(e["refund"], e["reason"]) for e in cancellations] == [(True, "requested")]


async def test_a_pending_enrolment_may_be_cancelled_and_a_late_debit_does_not_confirm_it(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db)
    row = await w.enrol(db, session_id)
    async with db.transaction() as session:
        _, events = await service.cancel_enrolment(session, row.id, row.account_id, RULES, NOW)
        await OUTBOX.add_all(session, events)
    await w.on_wallet_event(db, debited(row))  # billing debits first, then refunds: the cancel follows on the key
    assert (await w.enrolment(db, row.id)).status == "cancelled"
    assert [e["type"] for e in await w.published(db)] == ["EnrollmentRequested", "EnrollmentCancelled"]


async def test_a_cancelled_session_cancels_and_refunds_every_enrolment_and_clears_its_waiting_list(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=2)
    first, second = await w.enrol(db, session_id), await w.enrol(db, session_id)
    await w.on_wallet_event(db, debited(first))
    waiting = await w.wait(db, session_id)
    event = SessionCancelled(session_id=session_id, reason="Animateur malade", cancelled_at=NOW)
    await w.on_session_event(db, event)
    await w.on_session_event(db, event)  # again: nothing more
    for row in (first, second):
        after = await w.enrolment(db, row.id)
        assert (after.status, after.reason, after.refund) == ("cancelled", "session_cancelled", True)
    assert (await w.entry(db, waiting.id)).status == "cleared"
    cancellations = [e for e in await w.published(db) if e["type"] == "EnrollmentCancelled"]
    assert sorted(e["enrollment_id"] for e in cancellations) == sorted([str(first.id), str(second.id)])
    assert {e["reason"] for e in cancellations} == {"session_cancelled"}


# --- the waiting list -----------------------------------------------------------------------------------------


async def test_a_freed_place_is_offered_in_turn_and_taken_within_its_hold(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=1)
    assert await refused(w.wait(db, session_id)) == "places_available"
    holder = await w.enrol(db, session_id)
    await w.on_wallet_event(db, debited(holder))
    first, second = await w.wait(db, session_id), await w.wait(db, session_id, questions="Q ?")
    assert await refused(w.wait(db, session_id, account_id=first.account_id)) == "already_waiting"
    assert await refused(w.enrol(db, session_id, account_id=first.account_id)) == "already_waiting"
    async with db.transaction() as session:
        _, events = await service.cancel_enrolment(session, holder.id, holder.account_id, RULES, NOW)
        await OUTBOX.add_all(session, events)
    offered = await w.entry(db, first.id)
    assert (offered.status, offered.hold_until) == ("offered", NOW + RULES.hold)
    assert (await w.entry(db, second.id)).status == "waiting"
    last = (await w.published(db))[-1]
    assert (last["type"], last["entry_id"]) == ("WaitingListPlaceOffered", str(first.id))
    assert await refused(w.enrol(db, session_id)) == "session_full"  # the held place is not for anyone else
    async with db.transaction() as session:
        with pytest.raises(EnrolmentRefused) as caught:
            await service.take_offered_place(session, second.id, second.account_id, RULES, NOW)
    assert caught.value.code == "no_place_offered"
    for _ in range(2):  # taking it twice answers the same enrolment
        async with db.transaction() as session:
            row, events = await service.take_offered_place(
                session, first.id, first.account_id, RULES, NOW, "Lycée Jean Moulin"
            )
            await OUTBOX.add_all(session, events)
        assert row.status == "pending" and row.account_id == first.account_id
        assert row.institution_name == "Lycée Jean Moulin"  # printed on its certificates
    assert (await w.entry(db, first.id)).enrollment_id == row.id
    assert [e["type"] for e in await w.published(db)].count("EnrollmentRequested") == 2


async def test_an_expired_hold_passes_to_the_next_once_whatever_the_replicas(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=1)
    holder = await w.enrol(db, session_id)
    first, second = await w.wait(db, session_id), await w.wait(db, session_id)
    await reject_at(db, holder, NOW)  # billing's refusal frees the place too
    assert (await w.entry(db, first.id)).status == "offered"
    later = NOW + RULES.hold
    async with db.transaction() as session:
        assert await service.pass_on_expired_holds(session, RULES, later - timedelta(seconds=1)) == []
    passes = await asyncio.gather(*(_pass(db, later) for _ in range(4)))  # four replicas at once
    assert sum(passes) == 1
    assert (await w.entry(db, first.id)).status == "expired"
    assert (await w.entry(db, second.id)).status == "offered"
    async with db.transaction() as session:
        with pytest.raises(EnrolmentRefused):
            await service.take_offered_place(session, first.id, first.account_id, RULES, later)
    offers = [e["entry_id"] for e in await w.published(db) if e["type"] == "WaitingListPlaceOffered"]
    assert offers == [str(first.id), str(second.id)]


async def reject_at(db: Database, row, now) -> None:  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        events = await service.debit_rejected(session, row.id, row.session_id, "insufficient_balance", RULES, now)
        await OUTBOX.add_all(session, events)


async def _pass(db: Database, now) -> int:  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        events = await service.pass_on_expired_holds(session, RULES, now)
        await OUTBOX.add_all(session, events)
    return len(events)


async def test_the_hold_job_runs_a_pass(db) -> None:  # type: ignore[no-untyped-def]
    assert await jobs.pass_on_expired_holds(db, OUTBOX, RULES) == 0


async def test_leaving_with_a_place_offered_passes_it_on(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=1)
    holder = await w.enrol(db, session_id)
    first, second = await w.wait(db, session_id), await w.wait(db, session_id)
    await reject_at(db, holder, NOW)
    async with db.transaction() as session:
        events = await service.leave_waiting_list(session, session_id, first.account_id, RULES, NOW)
        await OUTBOX.add_all(session, events)
    assert [(await w.entry(db, e.id)).status for e in (first, second)] == ["left", "offered"]


# --- privatisation --------------------------------------------------------------------------------------------


async def test_privatisation_costs_the_premium_price_and_shuts_everyone_else_out(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=1, premium_price_tokens=7)
    row = await w.enrol(db, session_id, privatisation=True)
    assert (row.tokens, row.privatisation) == (7, True)
    assert await refused(w.enrol(db, session_id)) == "session_privatised"
    assert await refused(w.wait(db, session_id)) == "session_privatised"
    await w.on_wallet_event(db, debited(row))
    assert (await w.published(db))[-1] == (await w.published(db))[-1] | {"type": "Enrolled", "privatisation": True}

    busy = await w.new_session(db, capacity=1)
    await w.enrol(db, busy)
    assert await refused(w.enrol(db, busy, privatisation=True)) == "privatisation_unavailable"
    waited = await w.new_session(db, capacity=1)
    first = await w.enrol(db, waited)
    await w.wait(db, waited)
    async with db.transaction() as session:
        await service.cancel_enrolment(session, first.id, first.account_id, RULES, NOW)  # the waiter holds a place
    assert await refused(w.enrol(db, waited, privatisation=True)) == "privatisation_unavailable"


async def _race(db: Database, session_id: uuid.UUID, privatisations: list[bool]) -> Counter[str]:
    async def one(privatisation: bool, as_the_api: bool) -> str:
        try:
            row = await w.enrol(db, session_id, privatisation=privatisation, as_the_api=as_the_api)
        except EnrolmentRefused as exc:
            return exc.code
        return "private" if row.privatisation else row.status

    # requests outside a transaction (the API's) racing requests inside one (purchase orders')
    return Counter(await asyncio.gather(*(one(p, i % 2 == 0) for i, p in enumerate(privatisations))))


async def test_two_hundred_institutions_race_for_the_last_ten_places(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=50)
    for _ in range(40):
        await w.enrol(db, session_id)
    outcome = await _race(db, session_id, [False] * 200)
    assert outcome == {"pending": 10, "session_full": 190}
    places = await _occupancy(db, session_id)
    assert places.taken == 50


async def test_privatisations_racing_each_other_and_ordinary_enrolments_leave_one_winner(db) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        session_id = await w.new_session(db, capacity=30)
        outcome = await _race(db, session_id, [True] * 10 + [False] * 10)
        places = await _occupancy(db, session_id)
        if outcome["private"]:  # the privatisation came first: nobody else
            assert outcome == {"private": 1, "session_privatised": 19}
            assert (places.taken, places.privatised) == (1, True)
        else:  # an ordinary enrolment came first: every privatisation refused
            assert outcome == {"pending": 10, "privatisation_unavailable": 10}
            assert (places.taken, places.privatised) == (10, False)


async def _occupancy(db: Database, session_id: uuid.UUID) -> service.Occupancy:
    async with db.transaction() as session:
        return await service.occupancy(session, session_id)


# --- who is told (the events' notice) -------------------------------------------------------------------------


async def test_the_requesters_contact_is_kept_and_told_in_each_event(db) -> None:  # type: ignore[no-untyped-def]
    from contracts.base import Notice

    claire = Notice(email="claire@example.fr", name="Claire Martin", language="en")
    paul = Notice(email="paul@example.fr", name="Paul", language="fr")
    told = {"email": "claire@example.fr", "name": "Claire Martin", "language": "en"}
    session_id = await w.new_session(db, capacity=1)
    row = await w.enrol(db, session_id, notice=claire)
    assert (row.contact_email, row.contact_name, row.contact_language) == ("claire@example.fr", "Claire Martin", "en")
    await w.on_wallet_event(db, debited(row))
    waiting = await w.wait(db, session_id, notice=paul)
    assert waiting.contact_email == "paul@example.fr"
    async with db.transaction() as session:
        _, events = await service.cancel_enrolment(session, row.id, row.account_id, RULES, NOW)
        await OUTBOX.add_all(session, events)
    async with db.transaction() as session:
        taken, events = await service.take_offered_place(session, waiting.id, waiting.account_id, RULES, NOW)
        await OUTBOX.add_all(session, events)
    assert taken.contact_email == "paul@example.fr"  # the enrolment made from the entry keeps its contact
    await w.on_wallet_event(db, rejected(taken))
    anonymous = await w.enrol(db, session_id)
    await w.on_wallet_event(db, debited(anonymous))
    notices = {(e["type"], e.get("enrollment_id") or e["entry_id"]): e.get("notice") for e in await w.published(db)}
    assert notices[("Enrolled", str(row.id))] == told
    assert notices[("EnrollmentCancelled", str(row.id))] == told
    assert notices[("WaitingListPlaceOffered", str(waiting.id))]["email"] == "paul@example.fr"
    assert notices[("EnrollmentRejected", str(taken.id))] == {
        "email": "paul@example.fr",
        "name": "Paul",
        "language": "fr",
    }
    assert notices[("Enrolled", str(anonymous.id))] is None  # a request naming nobody: no mail
    async with db.transaction() as session:
        events = await service.session_cancelled(session, session_id, NOW)
    assert [(e.enrollment_id, e.notice) for e in events] == [(anonymous.id, None)]


# --- sessions named by a purchase order -----------------------------------------------------------------------


async def test_a_purchase_orders_sessions_are_requested_once_credited_and_local_refusals_are_told(db) -> None:  # type: ignore[no-untyped-def]
    account_id, claire = uuid.uuid4(), {"email": "claire@example.fr", "name": "Claire", "language": "fr"}
    open_one, already = await w.new_session(db, price_tokens=2), await w.new_session(db)
    full = await w.new_session(db, capacity=1)
    await w.enrol(db, full)
    closing = await w.new_session(db, starts_at=datetime.now(UTC) + RULES.close_before / 2)
    await w.enrol(db, already, account_id=account_id)
    unknown = uuid.uuid4()
    credit = TokenPurchased(
        account_id=account_id,
        order_id=uuid.uuid4(),
        lot_id=uuid.uuid4(),
        tokens=5,
        amounts=PRICE,
        payment_method="purchase_order",
        expires_at=NOW + timedelta(days=700),
        balance_after=5,
        enrol_session_ids=[open_one, already, full, closing, unknown],
        notice=claire,  # type: ignore[arg-type]
    )
    before = len(await w.published(db))
    await w.on_wallet_event(db, credit)
    told = {e["session_id"]: e for e in (await w.published(db))[before:]}
    assert told.keys() == {str(open_one), str(full), str(closing), str(unknown)}  # already enrolled: left as it is
    assert (told[str(open_one)]["type"], told[str(open_one)]["tokens"]) == ("EnrollmentRequested", 2)
    reasons = {k: (e["type"], e.get("reason"), e["notice"]) for k, e in told.items() if k != str(open_one)}
    assert reasons == {
        str(full): ("EnrollmentRejected", "session_full", claire),
        str(closing): ("EnrollmentRejected", "enrolment_closed", claire),
        str(unknown): ("EnrollmentRejected", "session_unavailable", claire),
    }
    stored = await w.enrolment(db, uuid.UUID(told[str(full)]["enrollment_id"]))
    assert (stored.status, stored.reason, stored.contact_email) == ("rejected", "session_full", "claire@example.fr")
    pending = await w.enrolment(db, uuid.UUID(told[str(open_one)]["enrollment_id"]))
    assert (pending.status, pending.account_id, pending.contact_email) == ("pending", account_id, "claire@example.fr")
    await w.on_wallet_event(db, credit)  # the same credit again (another event id): nothing more is requested or told
    assert len(await w.published(db)) == before + len(told) + 1  # but for the unknown session, which has no row


async def test_the_business_gauges_count_enrolments_by_status(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=5)
    confirmed, pending = await w.enrol(db, session_id), await w.enrol(db, session_id)
    async with db.transaction() as session:
        await service.tokens_debited(session, [confirmed.id], NOW)
    await jobs.measure(db)
    gauge = {status: REGISTRY.get_sample_value("visiopass_enrolments", {"status": status}) for status in jobs.STATUSES}
    assert gauge == {"pending": 1, "confirmed": 1, "rejected": 0, "cancelled": 0}
    assert pending.status == "pending"
    assert REGISTRY.get_sample_value("visiopass_attendances") == 0
