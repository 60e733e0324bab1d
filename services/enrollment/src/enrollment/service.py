"""Enrolment rules: the saga's two ends, cancellation, capacity, the waiting list and privatisation.

Guarantees (each has a test):
- Every decision about a session's places (enrol, privatise, join or leave its waiting list, take an offered place,
  cancel, billing's refusal, the hold job, the session's cancellation) first locks the session copy's row
  (`lock_session`; a request, in the database's function that decides it, `request_enrolment`). Such decisions
  run one after the other per session, so the count of places taken (pending + confirmed + places held for the
  waiting list) is exact, and a privatisation and an ordinary enrolment never both pass. The partial unique
  indexes (models) hold whatever the code does: one active enrolment per institution and session, one active
  privatisation per session.
- A refusal decided here raises EnrolmentRefused and writes nothing (no row, no event): the caller hears it at
  once. Billing's refusals arrive as TokenDebitRejected and become EnrollmentRejected.
- Billing's answers change a pending enrolment only, so a redelivered answer changes nothing.
- A cancelled pending enrolment is sent EnrollmentCancelled(refund=True) at once: it follows EnrollmentRequested
  on the enrolment's key, so billing has debited (or refused) it before it refunds.

Functions take the caller's session and return the events to publish (outbox, same transaction; a request writes
its own); they never commit."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Event
from contracts.base import Notice
from contracts.events.billing import TokenPurchased
from contracts.events.catalogue import SessionTerms
from contracts.events.enrollment import (
    Enrolled,
    EnrollmentCancelled,
    EnrollmentRejected,
    EnrollmentRequested,
    WaitingListPlaceOffered,
)
from enrollment import links
from enrollment.models import ACTIVE, WAITING, enrolments, sessions, waiting_list
from servicekit.outbox import Outbox


@dataclass(frozen=True)
class Rules:
    close_before: timedelta = timedelta(minutes=60)  # enrolments close this long before the start
    cancel_before: timedelta = timedelta(hours=48)  # cancellations (refunded) until this long before
    hold: timedelta = timedelta(hours=24)  # how long a place offered from the waiting list is kept

    @classmethod
    def from_settings(cls, settings: Any) -> "Rules":
        return cls(
            close_before=timedelta(minutes=settings.close_minutes_before),
            cancel_before=timedelta(hours=settings.cancel_hours_before),
            hold=timedelta(minutes=settings.waitlist_hold_minutes),
        )


class EnrolmentRefused(Exception):
    """A request refused at once, with a stable code (the API's problem `code`)."""

    def __init__(self, code: str, detail: str, status: int = 409) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


@dataclass(frozen=True)
class Application:
    """What an institution sends to enrol or to join a waiting list."""

    account_id: uuid.UUID
    session_id: uuid.UUID
    expected_participants: int
    questions: str | None = None
    requested_by: uuid.UUID | None = None
    privatisation: bool = False
    notice: Notice | None = None  # who asked, told of the outcome by mail (kept with the enrolment or entry)
    enrollment_id: uuid.UUID | None = None  # given when the request must be idempotent (a purchase order's)
    institution_name: str | None = None  # the account's name (from the gateway), printed on certificates


CONTACT = ("contact_email", "contact_name", "contact_language")


def contact(notice: Notice | None) -> dict[str, Any]:
    """The contact columns of an enrolment or a waiting-list entry."""
    if notice is None:
        return dict.fromkeys(CONTACT)
    return {"contact_email": notice.email, "contact_name": notice.name, "contact_language": notice.language}


def notice_of(row: Any) -> Notice | None:
    """The events' `notice` from a row's contact columns; None when the request named nobody."""
    if not row.contact_email:
        return None
    return Notice(email=row.contact_email, name=row.contact_name or "", language=row.contact_language or "fr")


@dataclass(frozen=True)
class Occupancy:
    """A session's places as seen under its lock, and where one account stands."""

    taken: int  # pending + confirmed enrolments
    privatised: bool
    enrolled: bool  # the account has an active enrolment
    offered: int  # places held for waiting institutions
    waiting: int  # active entries (waiting or offered)
    waiting_for_account: bool

    def free(self, capacity: int | None) -> int | None:
        return None if capacity is None else capacity - self.taken - self.offered


# --- the session copy (catalogue.session) ---------------------------------------------------------------------


async def session_terms(session: AsyncSession, event: SessionTerms, rules: Rules, now: datetime) -> list[Event]:
    """SessionScheduled / SessionUpdated: the copy created or refreshed (never a cancelled one); more capacity may
    free places for the waiting list."""
    values = {
        "theme_id": event.theme_id,
        "title": event.title,
        "theme_title": event.theme_title,
        "starts_at": event.starts_at,
        "ends_at": event.starts_at + timedelta(minutes=event.duration_minutes),
        "timezone": event.timezone,
        "capacity": event.capacity,
        "price_tokens": event.price_tokens,
        "premium_price_tokens": event.premium_price_tokens,
        "access": event.access,
        "updated_at": now,
    }
    await session.execute(
        pg_insert(sessions)
        .values(id=event.session_id, status="published", **values)
        .on_conflict_do_update(index_elements=[sessions.c.id], set_=values, where=sessions.c.status != "cancelled")
    )
    row = await lock_session(session, event.session_id)
    return await offer_free_places(session, row, rules, now)


async def session_moved(
    session: AsyncSession, session_id: uuid.UUID, starts_at: datetime, ends_at: datetime, now: datetime
) -> None:
    """SessionRescheduled (enrolments keep) and SessionStarting (its times, as catalogue has them)."""
    await session.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.status != "cancelled")
        .values(starts_at=starts_at, ends_at=ends_at, updated_at=now)
    )


async def session_status(session: AsyncSession, session_id: uuid.UUID, status: str, after: str, now: datetime) -> None:
    """Move a session from status `after` to `status` (published → started → ended), never backwards."""
    await session.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.status == after)
        .values(status=status, updated_at=now)
    )


async def session_cancelled(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> list[Event]:
    """Every active enrolment cancelled and refunded (reason session_cancelled), the waiting list cleared."""
    if await lock_session(session, session_id) is None:
        return []
    await session.execute(
        update(sessions).where(sessions.c.id == session_id).values(status="cancelled", updated_at=now)
    )
    cancelled = await session.execute(
        update(enrolments)
        .where(enrolments.c.session_id == session_id, enrolments.c.status.in_(ACTIVE))
        .values(status="cancelled", reason="session_cancelled", refund=True, updated_at=now)
        .returning(enrolments.c.id, enrolments.c.account_id, *[enrolments.c[name] for name in CONTACT])
    )
    await session.execute(
        update(waiting_list)
        .where(waiting_list.c.session_id == session_id, waiting_list.c.status.in_(WAITING))
        .values(status="cleared", hold_until=None, updated_at=now)
    )
    return [
        EnrollmentCancelled(
            enrollment_id=row.id,
            account_id=row.account_id,
            session_id=session_id,
            refund=True,
            reason="session_cancelled",
            notice=notice_of(row),
        )
        for row in sorted(cancelled.all(), key=lambda row: row.id)
    ]


async def lock_session(session: AsyncSession, session_id: uuid.UUID) -> Any:
    """The session copy's row, locked until the transaction ends (None when unknown). Taken before any decision
    about the session's places: it orders every enrolment, cancellation, offer and privatisation of the session."""
    result = await session.execute(select(sessions).where(sessions.c.id == session_id).with_for_update())
    return result.one_or_none()


async def lock_sessions(session: AsyncSession, session_ids: list[uuid.UUID]) -> None:
    """Several sessions locked in one order (a consumer's batch): two batches never deadlock."""
    ids = sorted(set(session_ids))
    if ids:
        await session.execute(
            select(sessions.c.id).where(sessions.c.id.in_(ids)).order_by(sessions.c.id).with_for_update()
        )


# --- enrolling ------------------------------------------------------------------------------------------------


# The database's answers to a request (migration 0005) that refuse it, as the API tells them.
REFUSALS = {
    "session_unavailable": ("session_unavailable", "The session is not open for enrolment."),
    "enrolment_closed": ("enrolment_closed", "Enrolments for this session are closed."),
    "already_enrolled": ("already_enrolled", "The institution is already enrolled in this session."),
    "session_privatised": ("session_privatised", "The session is privatised by another institution."),
    "already_waiting": (
        "already_waiting",
        "The institution is on this session's waiting list: take the place when offered.",
    ),
    "not_privatisable": ("privatisation_unavailable", "This session cannot be privatised."),
    "others_enrolled": (
        "privatisation_unavailable",
        "Other institutions are enrolled in this session or waiting for it.",
    ),
    "session_full": ("session_full", "The session is full; the institution may join its waiting list."),
    "price_changed": ("price_changed", "The session's price changed while the request was decided: ask again."),
}


async def request_enrolment(
    session: AsyncSession, application: Application, rules: Rules, now: datetime, outbox: Outbox
) -> Any:
    """A pending enrolment written with its EnrollmentRequested, or EnrolmentRefused.

    The decision is the database's function request_enrolment (migration 0005, where its rules are): it locks the
    session's row, counts the places and writes the enrolment and its event in one statement. On a session that
    everyone wants, requests queue on that lock: in a session without a transaction (Database.autocommit, the
    API) each one holds it only for the database's own time, however busy this process is."""
    enrollment_id = application.enrollment_id or uuid.uuid4()
    for _ in range(3):  # the price read here is checked under the lock; changed meanwhile, it is read again
        prices = (
            await session.execute(
                select(sessions.c.price_tokens, sessions.c.premium_price_tokens).where(
                    sessions.c.id == application.session_id
                )
            )
        ).one_or_none()
        if prices is None:
            answer = "session_unavailable"
            break
        tokens = prices.premium_price_tokens if application.privatisation else prices.price_tokens
        if tokens is None:
            answer = "not_privatisable"
            break
        wanted = _pending(application, enrollment_id, tokens, now)
        event = outbox.row(_requested(wanted))
        answer = await session.scalar(
            text("SELECT request_enrolment(:wanted, :close_before, :event_id, :topic, :key, :value, :headers)"),
            {
                "wanted": json.dumps(wanted, default=str),
                "close_before": rules.close_before,
                **event,
                "headers": json.dumps(event["headers"]),
            },
        )
        if answer == "pending":
            return SimpleNamespace(**wanted, reason=None, refund=None)
        if answer != "price_changed":
            break
    raise EnrolmentRefused(*REFUSALS[answer])


async def _new_enrolment(
    session: AsyncSession, application: Application, tokens: int, now: datetime
) -> tuple[Any, list[Event]]:
    """An offered place taken: its pending enrolment and EnrollmentRequested (the place was counted already)."""
    values = _pending(application, uuid.uuid4(), tokens, now)
    row = (await session.execute(insert(enrolments).values(**values).returning(*enrolments.c))).one()
    return row, [_requested(values)]


def _pending(application: Application, enrollment_id: uuid.UUID, tokens: int, now: datetime) -> dict[str, Any]:
    """The row of a pending enrolment."""
    return {
        "id": enrollment_id,
        "account_id": application.account_id,
        "session_id": application.session_id,
        "status": "pending",
        "privatisation": application.privatisation,
        "tokens": tokens,
        "expected_participants": application.expected_participants,
        "questions": application.questions or None,
        "requested_by": application.requested_by,
        "institution_name": application.institution_name,
        **contact(application.notice),
        "created_at": now,
        "updated_at": now,
    }


def _requested(pending: dict[str, Any]) -> EnrollmentRequested:
    return EnrollmentRequested(
        enrollment_id=pending["id"],
        account_id=pending["account_id"],
        session_id=pending["session_id"],
        privatisation=pending["privatisation"],
        tokens=pending["tokens"],
    )


def _check_open(row: Any, rules: Rules, now: datetime) -> None:
    if row is None or row.status != "published":
        raise EnrolmentRefused(*REFUSALS["session_unavailable"])
    if now >= row.starts_at - rules.close_before:
        raise EnrolmentRefused(*REFUSALS["enrolment_closed"])


async def occupancy(session: AsyncSession, session_id: uuid.UUID, account_id: uuid.UUID | None = None) -> Occupancy:
    """The database's session_occupancy (migration 0005: one definition for this and request_enrolment); exact
    when the session's row was locked by an earlier statement of the transaction."""
    found = await session.execute(
        text("SELECT * FROM session_occupancy(:session_id, :account_id)"),
        {"session_id": session_id, "account_id": account_id},
    )
    return Occupancy(*found.one())


# --- billing's answers ----------------------------------------------------------------------------------------


async def tokens_debited(session: AsyncSession, enrollment_ids: Sequence[uuid.UUID], now: datetime) -> list[Event]:
    """TokensDebited (a consumer's batch of them, in a few statements whatever its size): each pending enrolment
    is confirmed (Enrolled) and gets its participation link. Anything else (unknown, already confirmed, cancelled
    meanwhile: its refund follows the debit on billing's side) changes nothing."""
    if not enrollment_ids:
        return []
    rows = (
        await session.execute(
            update(enrolments)
            .where(enrolments.c.id.in_(enrollment_ids), enrolments.c.status == "pending")
            .values(status="confirmed", updated_at=now)
            .returning(
                enrolments.c.id,
                enrolments.c.account_id,
                enrolments.c.session_id,
                enrolments.c.privatisation,
                *[enrolments.c[name] for name in CONTACT],
            )
        )
    ).all()
    enrolled: list[Event] = [
        Enrolled(
            enrollment_id=row.id,
            account_id=row.account_id,
            session_id=row.session_id,
            privatisation=row.privatisation,
            notice=notice_of(row),
        )
        for row in rows
    ]
    # their participation links, made with the confirmation (mailed at once when J-2 is already reached)
    confirmed = [links.Confirmed(row.id, row.account_id, row.session_id) for row in rows]
    return enrolled + await links.issue_on_confirmation(session, confirmed, links.link_rules(), now)


async def debit_rejected(
    session: AsyncSession, enrollment_id: uuid.UUID, session_id: uuid.UUID, reason: str, rules: Rules, now: datetime
) -> list[Event]:
    """TokenDebitRejected: a pending enrolment is rejected with billing's reason; its place goes to the waiting
    list."""
    session_row = await lock_session(session, session_id)
    row = (
        await session.execute(
            update(enrolments)
            .where(enrolments.c.id == enrollment_id, enrolments.c.status == "pending")
            .values(status="rejected", reason=reason, updated_at=now)
            .returning(enrolments.c.account_id, enrolments.c.session_id, *[enrolments.c[name] for name in CONTACT])
        )
    ).one_or_none()
    if row is None:
        return []
    rejected = EnrollmentRejected(
        enrollment_id=enrollment_id,
        account_id=row.account_id,
        session_id=row.session_id,
        reason=reason,  # type: ignore[arg-type]
        notice=notice_of(row),
    )
    return [rejected, *await offer_free_places(session, session_row, rules, now)]


# --- sessions named by a purchase order -----------------------------------------------------------------------


async def enrol_for_order(
    session: AsyncSession, credit: TokenPurchased, rules: Rules, now: datetime, outbox: Outbox
) -> list[Event]:
    """TokenPurchased naming sessions (a purchase order's, once its tokens are credited): each enrolment requested as
    the institution would (same rules, one participant expected). Nobody waits for an answer here, so a local
    refusal is kept as a rejected enrolment with EnrollmentRejected (the orderer is mailed); a session the
    institution is already enrolled in is left as it is. Each enrolment's id derives from the order and the session:
    the same credit applied again requests and tells nothing more."""
    events: list[Event] = []
    for session_id in sorted(set(credit.enrol_session_ids)):  # the sessions' locks in one order
        application = Application(
            account_id=credit.account_id,
            session_id=session_id,
            expected_participants=1,
            notice=credit.notice,
            enrollment_id=uuid.uuid5(credit.order_id, str(session_id)),
        )
        if await session.scalar(select(enrolments.c.id).where(enrolments.c.id == application.enrollment_id)):
            continue
        try:
            await request_enrolment(session, application, rules, now, outbox)
        except EnrolmentRefused as refused:
            if refused.code != "already_enrolled":
                events.append(await _rejected_at_once(session, application, refused.code, now))
    return events


async def _rejected_at_once(session: AsyncSession, application: Application, reason: str, now: datetime) -> Event:
    """A refused automatic request, stored rejected (unless the session is unknown here) and told."""
    enrollment_id = application.enrollment_id or uuid.uuid4()
    tokens = await session.scalar(select(sessions.c.price_tokens).where(sessions.c.id == application.session_id))
    if tokens is not None:
        await session.execute(
            insert(enrolments).values(
                id=enrollment_id,
                account_id=application.account_id,
                session_id=application.session_id,
                status="rejected",
                reason=reason,
                privatisation=False,
                tokens=tokens,
                expected_participants=application.expected_participants,
                **contact(application.notice),
                created_at=now,
                updated_at=now,
            )
        )
    return EnrollmentRejected(
        enrollment_id=enrollment_id,
        account_id=application.account_id,
        session_id=application.session_id,
        reason=reason,  # type: ignore[arg-type]
        notice=application.notice,
    )


# --- cancelling -----------------------------------------------------------------------------------------------


async def cancel_enrolment(
    session: AsyncSession, enrollment_id: uuid.UUID, account_id: uuid.UUID, rules: Rules, now: datetime
) -> tuple[Any, list[Event]]:
    """The institution cancels before the cut-off: refunded (EnrollmentCancelled refund=True), its place offered to
    the waiting list. Cancelling a cancelled enrolment again answers it as it is."""
    found = await find_enrolment(session, enrollment_id, account_id)
    if found is None:
        raise EnrolmentRefused("not_found", "No such enrolment.", status=404)
    session_row = await lock_session(session, found.session_id)
    row = (await session.execute(select(enrolments).where(enrolments.c.id == enrollment_id).with_for_update())).one()
    if row.status == "cancelled":
        return row, []
    if row.status == "rejected":
        raise EnrolmentRefused("not_cancellable", "A rejected enrolment cannot be cancelled.")
    if now >= session_row.starts_at - rules.cancel_before:
        raise EnrolmentRefused(
            "cancellation_closed",
            f"Cancellations close {_hours(rules.cancel_before)} hours before the start of the session.",
        )
    row = (
        await session.execute(
            update(enrolments)
            .where(enrolments.c.id == enrollment_id)
            .values(status="cancelled", reason="requested", refund=True, updated_at=now)
            .returning(*enrolments.c)
        )
    ).one()
    cancelled = EnrollmentCancelled(
        enrollment_id=enrollment_id,
        account_id=account_id,
        session_id=row.session_id,
        refund=True,
        reason="requested",
        notice=notice_of(row),
    )
    return row, [cancelled, *await offer_free_places(session, session_row, rules, now)]


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


async def find_enrolment(session: AsyncSession, enrollment_id: uuid.UUID, account_id: uuid.UUID) -> Any:
    """The account's enrolment; None when it does not exist or is another account's."""
    result = await session.execute(
        select(enrolments).where(enrolments.c.id == enrollment_id, enrolments.c.account_id == account_id)
    )
    return result.one_or_none()


# --- the waiting list -----------------------------------------------------------------------------------------


async def join_waiting_list(
    session: AsyncSession, application: Application, rules: Rules, now: datetime
) -> tuple[Any, list[Event]]:
    """An entry at the end of a full session's waiting list (no token taken)."""
    row = await lock_session(session, application.session_id)
    _check_open(row, rules, now)
    places = await occupancy(session, application.session_id, application.account_id)
    if places.enrolled:
        raise EnrolmentRefused(*REFUSALS["already_enrolled"])
    if places.privatised:
        raise EnrolmentRefused(*REFUSALS["session_privatised"])
    if places.waiting_for_account:
        raise EnrolmentRefused("already_waiting", "The institution is already on this session's waiting list.")
    free = places.free(row.capacity)
    if free is None or free > 0:
        raise EnrolmentRefused("places_available", "The session has places left: enrol directly.")
    entry = (
        await session.execute(
            insert(waiting_list)
            .values(
                id=uuid.uuid4(),
                session_id=application.session_id,
                account_id=application.account_id,
                requested_by=application.requested_by,
                **contact(application.notice),
                expected_participants=application.expected_participants,
                questions=application.questions or None,
                status="waiting",
                created_at=now,
                updated_at=now,
            )
            .returning(*waiting_list.c)
        )
    ).one()
    return entry, []


async def leave_waiting_list(
    session: AsyncSession, session_id: uuid.UUID, account_id: uuid.UUID, rules: Rules, now: datetime
) -> list[Event]:
    """The account leaves the waiting list; a place it was offered goes to the next in line."""
    session_row = await lock_session(session, session_id)
    left = (
        await session.execute(
            update(waiting_list)
            .where(
                waiting_list.c.session_id == session_id,
                waiting_list.c.account_id == account_id,
                waiting_list.c.status.in_(WAITING),
            )
            .values(status="left", hold_until=None, updated_at=now)
            .returning(waiting_list.c.id)
        )
    ).one_or_none()
    if left is None:
        raise EnrolmentRefused("not_found", "The institution is not on this session's waiting list.", status=404)
    return await offer_free_places(session, session_row, rules, now)


async def take_offered_place(
    session: AsyncSession,
    entry_id: uuid.UUID,
    account_id: uuid.UUID,
    rules: Rules,
    now: datetime,
    institution_name: str | None = None,
) -> tuple[Any, list[Event]]:
    """The institution takes the place held for it: a pending enrolment (EnrollmentRequested), as a request would
    make. Taking it twice answers the same enrolment."""
    found = (
        await session.execute(
            select(waiting_list.c.session_id).where(
                waiting_list.c.id == entry_id, waiting_list.c.account_id == account_id
            )
        )
    ).one_or_none()
    if found is None:
        raise EnrolmentRefused("not_found", "No such waiting-list entry.", status=404)
    session_row = await lock_session(session, found.session_id)
    entry = (await session.execute(select(waiting_list).where(waiting_list.c.id == entry_id).with_for_update())).one()
    if entry.status == "taken":
        taken = (await session.execute(select(enrolments).where(enrolments.c.id == entry.enrollment_id))).one()
        return taken, []
    if entry.status != "offered" or entry.hold_until <= now:
        raise EnrolmentRefused("no_place_offered", "No place is held for the institution (or its hold has expired).")
    _check_open(session_row, rules, now)
    application = Application(
        account_id=account_id,
        session_id=entry.session_id,
        expected_participants=entry.expected_participants,
        questions=entry.questions,
        requested_by=entry.requested_by,
        notice=notice_of(entry),
        institution_name=institution_name,
    )
    # the held place becomes the enrolment's: the count of places taken does not change
    row, events = await _new_enrolment(session, application, session_row.price_tokens, now)
    await session.execute(
        update(waiting_list)
        .where(waiting_list.c.id == entry_id)
        .values(status="taken", hold_until=None, enrollment_id=row.id, updated_at=now)
    )
    return row, events


async def offer_free_places(session: AsyncSession, session_row: Any, rules: Rules, now: datetime) -> list[Event]:
    """Offer every free place to the first in line, each held for `rules.hold` (the session's row must be locked).
    Nothing is offered once enrolments are closed."""
    if session_row is None or session_row.status != "published" or now >= session_row.starts_at - rules.close_before:
        return []
    free = (await occupancy(session, session_row.id)).free(session_row.capacity)
    if free is not None and free <= 0:
        return []
    first = (
        select(waiting_list.c.id)
        .where(waiting_list.c.session_id == session_row.id, waiting_list.c.status == "waiting")
        .order_by(waiting_list.c.position)
    )
    if free is not None:
        first = first.limit(free)
    hold_until = now + rules.hold
    offered = await session.execute(
        update(waiting_list)
        .where(waiting_list.c.id.in_(first.scalar_subquery()))
        .values(status="offered", offered_at=now, hold_until=hold_until, updated_at=now)
        .returning(
            waiting_list.c.id,
            waiting_list.c.account_id,
            waiting_list.c.position,
            *[waiting_list.c[name] for name in CONTACT],
        )
    )
    return [
        WaitingListPlaceOffered(
            entry_id=row.id,
            account_id=row.account_id,
            session_id=session_row.id,
            offered_at=now,
            hold_until=hold_until,
            notice=notice_of(row),
        )
        for row in sorted(offered.all(), key=lambda row: row.position)
    ]


async def pass_on_expired_holds(session: AsyncSession, rules: Rules, now: datetime, limit: int = 100) -> list[Event]:
    """One pass of the hold job: each session with an expired hold, locked with SKIP LOCKED (a session another
    replica or a request is deciding on is left to the next pass), its expired holds ended by a conditional
    update and their places offered to the next in line. The session lock makes each hold expire once."""
    due = (
        await session.execute(
            select(waiting_list.c.session_id)
            .where(waiting_list.c.status == "offered", waiting_list.c.hold_until <= now)
            .group_by(waiting_list.c.session_id)
            .order_by(func.min(waiting_list.c.hold_until))
            .limit(limit)
        )
    ).scalars()
    events: list[Event] = []
    for session_id in sorted(due):
        row = (
            await session.execute(select(sessions).where(sessions.c.id == session_id).with_for_update(skip_locked=True))
        ).one_or_none()
        if row is None:
            continue
        await session.execute(
            update(waiting_list)
            .where(
                waiting_list.c.session_id == session_id,
                waiting_list.c.status == "offered",
                waiting_list.c.hold_until <= now,
            )
            .values(status="expired", hold_until=None, updated_at=now)
        )
        events += await offer_free_places(session, row, rules, now)
    return events
