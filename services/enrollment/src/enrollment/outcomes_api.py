"""Internal HTTP routes of what a session leaves: certificates (list, PDF, public check of a code), feedback
(institution's, a person's through the link or through their certificate's feedback link, a session's summary)
and the back office's statistics. Behind the internal token, like enrollment.api: the gateway authorises the
caller first; an enrolment or certificate asked for with another account's id is 404. Refusals are problems with
a stable `code` (EnrolmentRefused); every input is checked at the edge (400)."""

import asyncio
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from pydantic import BaseModel, Field
from sqlalchemy import select

from enrollment import certificates as certificates_of
from enrollment import feedback as feedback_of
from enrollment import links
from enrollment.api import _now, _stamp
from enrollment.feedback import Rating
from enrollment.models import sessions
from enrollment.service import EnrolmentRefused, find_enrolment
from enrollment.settings import EnrollmentSettings
from enrollment.statistics import statistics
from servicekit.http import ProblemError
from servicekit.inputs import Name, text
from servicekit.runtime import Service

Stars = Annotated[int, Field(ge=1, le=5)]
Comment = text(2000, multiline=True)
_FEEDBACK_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_STATISTICS_DAYS = 732


class RatingInput(BaseModel):
    rating: Stars
    comment: Comment | None = None  # type: ignore[valid-type]

    def given(self) -> Rating:
        return Rating(self.rating, self.comment)


class InstitutionRatingInput(RatingInput):
    account_id: uuid.UUID


class AttendeeRatingInput(RatingInput):
    token: Annotated[str, Field(max_length=200)]
    name: Name


def shown_certificate(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "participant_name": row.participant_name,
        "code": row.code,
        "duration_minutes": row.duration_minutes,
        "issued_at": _stamp(row.issued_at),
    }


def _created(feedback_id: uuid.UUID) -> Response[dict[str, Any]]:
    return Response({"id": str(feedback_id)}, status_code=201)


def _no_feedback_link() -> EnrolmentRefused:
    return EnrolmentRefused("feedback_link_not_found", "No such feedback link.", status=404)


class CertificateApi(Controller):
    path = "/internal"

    @get("/enrolments/{enrollment_id:uuid}/certificates")
    async def of_enrolment(self, enrollment_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            if await find_enrolment(session, enrollment_id, account_id) is None:
                raise EnrolmentRefused("not_found", "No such enrolment.", status=404)
            rows = await certificates_of.of_enrolment(session, enrollment_id)
        return {"items": [shown_certificate(row) for row in rows]}

    @get("/certificates/{certificate_id:uuid}/pdf", media_type="application/pdf")
    async def pdf(
        self, certificate_id: uuid.UUID, service: Service, account_id: uuid.UUID | None = None
    ) -> Response[bytes]:
        """The PDF; with `account_id` (the gateway, for a logged-in account) only that account's; without it (the
        notifier attaching it) any."""
        async with service.db.transaction() as session:
            row = await certificates_of.find(session, certificate_id, account_id)
        if row is None:
            raise EnrolmentRefused("not_found", "No such certificate.", status=404)
        settings: EnrollmentSettings = service.settings
        content = await asyncio.to_thread(certificates_of.render, row, settings.public_base_url)
        return Response(
            content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="certificate-{certificate_id}.pdf"'},
        )

    @get("/certificates/verification")
    async def verification(self, code: Annotated[str, Parameter(max_length=200)], service: Service) -> dict[str, Any]:
        """Anyone's check of a printed code (the gateway's public page): what the certificate says, or 404."""
        async with service.db.transaction() as session:
            row = await certificates_of.verify(session, code)
        if row is None:
            raise EnrolmentRefused("certificate_not_found", "No certificate bears this code.", status=404)
        return {
            "participant_name": row.participant_name,
            "session_title": row.session_title,
            "theme_title": row.theme_title,
            "session_starts_at": _stamp(row.session_starts_at),
            "timezone": row.timezone,
            "duration_minutes": row.duration_minutes,
            "institution_name": row.institution_name,
            "issued_at": _stamp(row.issued_at),
        }


class FeedbackApi(Controller):
    path = "/internal"

    @post("/enrolments/{enrollment_id:uuid}/feedback")
    async def institution(
        self, enrollment_id: uuid.UUID, data: InstitutionRatingInput, service: Service
    ) -> Response[dict[str, Any]]:
        async with service.db.transaction() as session:
            feedback_id = await feedback_of.from_institution(
                session, enrollment_id, data.account_id, data.given(), _now()
            )
        return _created(feedback_id)

    @post("/join/feedback")
    async def attendee(self, data: AttendeeRatingInput, service: Service) -> Response[dict[str, Any]]:
        """A person's rating on the link's "session over" page: the link must be valid, the name one that joined."""
        async with service.db.transaction() as session:
            found = await links.resolve(session, data.token, links.LinkRules.from_settings(service.settings), _now())
            if found is None:
                raise EnrolmentRefused("link_not_found", "No such link.", status=404)
            feedback_id = await feedback_of.from_attendee(session, found.enrollment_id, data.name, data.given(), _now())
        return _created(feedback_id)

    @get("/feedback/{token:str}")
    async def person_link(self, token: str, service: Service) -> dict[str, Any]:
        if not _FEEDBACK_TOKEN.fullmatch(token):
            raise _no_feedback_link()
        async with service.db.transaction() as session:
            found = await feedback_of.by_token(session, token)
        if found is None:
            raise _no_feedback_link()
        return {"participant_name": found.participant_name, "session_title": found.session_title, "given": found.given}

    @post("/feedback/{token:str}")
    async def person(self, token: str, data: RatingInput, service: Service) -> Response[dict[str, Any]]:
        if not _FEEDBACK_TOKEN.fullmatch(token):
            raise _no_feedback_link()
        async with service.db.transaction() as session:
            feedback_id = await feedback_of.from_certificate_link(session, token, data.given(), _now())
        return _created(feedback_id)

    @get("/sessions/{session_id:uuid}/feedback")
    async def of_session(self, session_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            if await session.scalar(select(sessions.c.id).where(sessions.c.id == session_id)) is None:
                raise EnrolmentRefused("not_found", "No such session.", status=404)
            return await feedback_of.of_session(session, session_id)


def _period(start: date | None, end: date | None) -> tuple[datetime, datetime]:
    """[from, to) as UTC instants; by default the year up to today included."""
    end = end or _now().date() + timedelta(days=1)
    start = start or end - timedelta(days=365)
    if not timedelta(days=1) <= end - start <= timedelta(days=MAX_STATISTICS_DAYS):
        raise ProblemError(
            400,
            "invalid_request",
            "Invalid request",
            f"`from` must come before `to`, at most {MAX_STATISTICS_DAYS} days apart.",
            field="to",
        )
    return datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)


class StatisticsApi(Controller):
    path = "/internal/statistics"

    @get("/")
    async def statistics(
        self,
        service: Service,
        from_: Annotated[date | None, Parameter(query="from")] = None,
        to: date | None = None,
        theme_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """Per session, per theme and in total, for the sessions starting in [from, to) (dates, UTC)."""
        start, end = _period(from_, to)
        async with service.db.transaction() as session:
            shown = await statistics(session, start, end, theme_id)
        return {"from": start.date().isoformat(), "to": end.date().isoformat()} | shown


CONTROLLERS = [CertificateApi, FeedbackApi, StatisticsApi]
