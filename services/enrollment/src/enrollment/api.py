"""Internal HTTP API of enrollment, called by the gateway, which authorises the caller first (an account's people
for the routes naming an account, organisers for a session's enrolments). An enrolment or an entry asked for with
another account's id is 404, as if it did not exist. Refusals are 409 problems with a stable `code`
(enrollment.service.EnrolmentRefused); the saga's outcome is read from the enrolment's status."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import Parameter
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from contracts.base import Notice
from enrollment import feedback as feedback_of
from enrollment import links
from enrollment import service as rules_of
from enrollment.links import LinkRules
from enrollment.models import WAITING, enrolments, feedback, sessions, waiting_list
from enrollment.service import Application, EnrolmentRefused, Rules
from enrollment.settings import EnrollmentSettings
from servicekit.http import ProblemError, problem_response
from servicekit.inputs import Offset, text
from servicekit.runtime import Service

Limit = Annotated[int, Parameter(ge=1, le=200)]
Participants = Annotated[int, Field(ge=1, le=1000)]
Questions = text(2000, multiline=True)


class EnrolmentInput(BaseModel):
    account_id: uuid.UUID
    session_id: uuid.UUID
    requested_by: uuid.UUID | None = None
    expected_participants: Participants
    questions: Questions | None = None  # type: ignore[valid-type]
    privatisation: bool = False
    notice: Notice | None = None  # who asks (the gateway's logged-in person), told of the outcome by mail
    institution_name: text(200) | None = None  # type: ignore[valid-type]  # the account's name, for certificates


class WaitingInput(BaseModel):
    account_id: uuid.UUID
    requested_by: uuid.UUID | None = None
    expected_participants: Participants
    questions: Questions | None = None  # type: ignore[valid-type]
    notice: Notice | None = None  # who asks, told by mail when a place is offered


class AccountInput(BaseModel):
    account_id: uuid.UUID


class OfferTaken(AccountInput):
    institution_name: text(200) | None = None  # type: ignore[valid-type]  # printed on certificates


def _rules(service: Service) -> Rules:
    settings: EnrollmentSettings = service.settings
    return Rules.from_settings(settings)


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value else None


def refused_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, EnrolmentRefused)
    return problem_response(request, ProblemError(exc.status, exc.code, _TITLES.get(exc.code, "Refused"), exc.detail))


_TITLES = {
    "not_found": "Not found",
    "session_unavailable": "Session unavailable",
    "enrolment_closed": "Enrolments closed",
    "session_full": "Session full",
    "already_enrolled": "Already enrolled",
    "already_waiting": "Already on the waiting list",
    "session_privatised": "Session privatised",
    "privatisation_unavailable": "Privatisation unavailable",
    "places_available": "Places available",
    "price_changed": "Price changed",
    "cancellation_closed": "Cancellation closed",
    "not_cancellable": "Not cancellable",
    "no_place_offered": "No place offered",
    "not_confirmed": "Not confirmed",
    "session_not_ended": "Session not ended",
    "feedback_already_given": "Feedback already given",
    "not_an_attendee": "Not an attendee",
    "feedback_link_not_found": "Feedback link not found",
    "certificate_not_found": "Certificate not found",
}
EXCEPTION_HANDLERS = {EnrolmentRefused: refused_response}


def shown_enrolment(row: Any, session_row: Any = None) -> dict[str, Any]:
    shown = {
        "id": str(row.id),
        "account_id": str(row.account_id),
        "session_id": str(row.session_id),
        "status": row.status,
        "privatisation": row.privatisation,
        "tokens": row.tokens,
        "expected_participants": row.expected_participants,
        "questions": row.questions,
        "requested_by": _id(row.requested_by),
        "reason": row.reason,
        "refund": row.refund,
        "created_at": _stamp(row.created_at),
        "updated_at": _stamp(row.updated_at),
    }
    if session_row is not None:
        shown["session"] = shown_session(session_row)
    return shown


def shown_session(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "title": row.title,
        "status": row.status,
        "starts_at": _stamp(row.starts_at),
        "ends_at": _stamp(row.ends_at),
        "timezone": row.timezone,
    }


def shown_entry(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "account_id": str(row.account_id),
        "session_id": str(row.session_id),
        "status": row.status,
        "position": row.position,
        "expected_participants": row.expected_participants,
        "questions": row.questions,
        "requested_by": _id(row.requested_by),
        "offered_at": _stamp(row.offered_at),
        "hold_until": _stamp(row.hold_until),
        "enrollment_id": _id(row.enrollment_id),
        "created_at": _stamp(row.created_at),
    }


def _accepted(row: Any) -> Response[dict[str, Any]]:
    return Response({"id": str(row.id), "status": row.status}, status_code=202)


class EnrolmentApi(Controller):
    path = "/internal/enrolments"

    @post("/")
    async def ask(self, data: EnrolmentInput, service: Service) -> Response[dict[str, Any]]:
        application = Application(**data.model_dump(exclude={"notice"}), notice=data.notice)
        async with service.db.autocommit() as session:  # the request is one statement (rules_of.request_enrolment)
            row = await rules_of.request_enrolment(session, application, _rules(service), _now(), service.outbox)
        return _accepted(row)

    @get("/{enrollment_id:uuid}")
    async def enrolment(self, enrollment_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            row = await rules_of.find_enrolment(session, enrollment_id, account_id)
            if row is None:
                raise EnrolmentRefused("not_found", "No such enrolment.", status=404)
            session_row = (await session.execute(select(sessions).where(sessions.c.id == row.session_id))).one()
            outcomes = await feedback_of.outcomes_of(session, [row.id])
            rating = await session.scalar(  # the institution's own rating (its people's are apart)
                select(feedback.c.rating).where(feedback.c.enrollment_id == row.id, feedback.c.attendance_id.is_(None))
            )
        return shown_enrolment(row, session_row) | outcomes[row.id] | {"feedback_rating": rating}

    @post("/{enrollment_id:uuid}/cancellation", status_code=200)
    async def cancel(self, enrollment_id: uuid.UUID, data: AccountInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            row, events = await rules_of.cancel_enrolment(
                session, enrollment_id, data.account_id, _rules(service), _now()
            )
            await service.outbox.add_all(session, events)
        return shown_enrolment(row)


class AccountEnrolmentApi(Controller):
    path = "/internal/accounts/{account_id:uuid}/enrolments"

    @get("/")
    async def enrolments(
        self,
        account_id: uuid.UUID,
        service: Service,
        when: Literal["upcoming", "past"] = "upcoming",
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Upcoming (not ended yet, soonest first) or past (latest first) enrolments, whatever their status, and
        the account's places on waiting lists."""
        now = _now()
        upcoming = when == "upcoming"
        condition = [
            enrolments.c.account_id == account_id,
            sessions.c.ends_at > now if upcoming else sessions.c.ends_at <= now,
        ]
        order = sessions.c.starts_at.asc() if upcoming else sessions.c.starts_at.desc()
        joined = enrolments.join(sessions, sessions.c.id == enrolments.c.session_id)
        async with service.db.transaction() as session:
            total = await session.scalar(select(func.count()).select_from(joined).where(*condition))
            rows = (
                await session.execute(
                    select(enrolments, *[c.label(f"s_{c.name}") for c in sessions.c])
                    .select_from(joined)
                    .where(*condition)
                    .order_by(order, enrolments.c.created_at)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            waiting = (
                await session.execute(
                    select(waiting_list)
                    .where(waiting_list.c.account_id == account_id, waiting_list.c.status.in_(WAITING))
                    .order_by(waiting_list.c.created_at)
                )
            ).all()
            outcomes = await feedback_of.outcomes_of(session, [row.id for row in rows])
            # its valid link ({path, opens_at} or null) and attendance ({joins, people})
            access = await links.listed(
                session, [row.id for row in rows], LinkRules.from_settings(service.settings), now
            )
        cut_off = _rules(service).cancel_before  # until when the institution may cancel (and be refunded)
        items = [
            shown_enrolment(row, _SessionOf(row))
            | outcomes[row.id]
            | access[row.id]
            | {"cancellable_until": _stamp(row.s_starts_at - cut_off)}
            for row in rows
        ]
        return {
            "items": items,
            "total": total or 0,
            "limit": limit,
            "offset": offset,
            "waiting_list": [shown_entry(row) for row in waiting],
        }


class _SessionOf:
    """The session columns of a joined row (labelled s_<name>)."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, f"s_{name}")


class SessionEnrolmentApi(Controller):
    path = "/internal/sessions/{session_id:uuid}"

    @post("/waiting-list")
    async def join(self, session_id: uuid.UUID, data: WaitingInput, service: Service) -> Response[dict[str, Any]]:
        application = Application(session_id=session_id, **data.model_dump(exclude={"notice"}), notice=data.notice)
        async with service.db.transaction() as session:
            entry, events = await rules_of.join_waiting_list(session, application, _rules(service), _now())
            await service.outbox.add_all(session, events)
        return Response(shown_entry(entry), status_code=201)

    @delete("/waiting-list", status_code=204)
    async def leave(self, session_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> None:
        async with service.db.transaction() as session:
            events = await rules_of.leave_waiting_list(session, session_id, account_id, _rules(service), _now())
            await service.outbox.add_all(session, events)

    @get("/enrolments")
    async def enrolments(
        self,
        session_id: uuid.UUID,
        service: Service,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 200,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """For organisers: the session's enrolments (active first) with participants and questions, its waiting
        list in order, and the counts."""
        async with service.db.transaction() as session:
            session_row = (await session.execute(select(sessions).where(sessions.c.id == session_id))).one_or_none()
            if session_row is None:
                raise EnrolmentRefused("not_found", "No such session.", status=404)
            places = await rules_of.occupancy(session, session_id)
            total = await session.scalar(select(func.count()).where(enrolments.c.session_id == session_id))
            rows = (
                await session.execute(
                    select(enrolments)
                    .where(enrolments.c.session_id == session_id)
                    .order_by(enrolments.c.status.in_(("pending", "confirmed")).desc(), enrolments.c.created_at)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            waiting = (
                await session.execute(
                    select(waiting_list)
                    .where(waiting_list.c.session_id == session_id, waiting_list.c.status.in_(WAITING))
                    .order_by(waiting_list.c.position)
                )
            ).all()
        return {
            "session": shown_session(session_row) | {"capacity": session_row.capacity},
            "places_taken": places.taken,
            "places_held": places.offered,
            "privatised": places.privatised,
            "items": [shown_enrolment(row) for row in rows],
            "total": total or 0,
            "limit": limit,
            "offset": offset,
            "waiting_list": [shown_entry(row) for row in waiting],
        }


class WaitingListApi(Controller):
    path = "/internal/waiting-list"

    @post("/{entry_id:uuid}/confirmation")
    async def confirm(self, entry_id: uuid.UUID, data: OfferTaken, service: Service) -> Response[dict[str, Any]]:
        async with service.db.transaction() as session:
            row, events = await rules_of.take_offered_place(
                session, entry_id, data.account_id, _rules(service), _now(), data.institution_name
            )
            await service.outbox.add_all(session, events)
        return _accepted(row)


CONTROLLERS = [EnrolmentApi, AccountEnrolmentApi, SessionEnrolmentApi, WaitingListApi]
