"""Feedback on a session, once it is over: one rating (1..5) and an optional comment per institution, and one per
person who attended.

Guarantees (each has a test):
- Only after the end (the session ended, or its end time passed): else `session_not_ended`.
- An institution rates its own confirmed enrolment (`not_confirmed` otherwise), once (`feedback_already_given`).
- A person rates once, whichever way they come: through the institution's link (the name typed must be one that
  joined, case and outer spaces aside: `not_an_attendee` otherwise) or through the feedback link of their
  certificate. Both designate the person's first join, and the database keeps one rating per attendance (a partial
  unique index), so a second one is `feedback_already_given` even when two arrive at once.
- The rating's range is also a CHECK of the table.

Functions take the caller's session; they never commit. Refusals raise EnrolmentRefused (the API's problem)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from enrollment import certificates as certificates_of
from enrollment import links
from enrollment.models import attendances, certificates, enrolments, feedback, sessions
from enrollment.service import EnrolmentRefused, find_enrolment


@dataclass(frozen=True)
class Rating:
    rating: int  # 1..5, checked at the edge and by the table
    comment: str | None = None


def _ended(session_row: Any, now: datetime) -> bool:
    return bool(session_row.status == "ended" or now >= session_row.ends_at)


async def _session_over(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> None:
    row = (await session.execute(select(sessions).where(sessions.c.id == session_id))).one()
    if not _ended(row, now):
        raise EnrolmentRefused("session_not_ended", "Feedback opens once the session is over.")


async def _store(
    session: AsyncSession,
    enrolment: Any,
    given: Rating,
    now: datetime,
    attendance_id: uuid.UUID | None = None,
    respondent_name: str | None = None,
) -> uuid.UUID:
    where = "attendance_id IS NOT NULL" if attendance_id else "attendance_id IS NULL"
    conflict = "attendance_id" if attendance_id else "enrollment_id"
    inserted = await session.execute(
        pg_insert(feedback)
        .values(
            id=uuid.uuid4(),
            session_id=enrolment.session_id,
            enrollment_id=enrolment.id,
            attendance_id=attendance_id,
            respondent_name=respondent_name,
            rating=given.rating,
            comment=given.comment or None,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[conflict], index_where=text(where))
        .returning(feedback.c.id)
    )
    feedback_id: uuid.UUID | None = inserted.scalar_one_or_none()
    if feedback_id is None:
        raise EnrolmentRefused("feedback_already_given", "This feedback was already given.")
    return feedback_id


async def from_institution(
    session: AsyncSession, enrollment_id: uuid.UUID, account_id: uuid.UUID, given: Rating, now: datetime
) -> uuid.UUID:
    """The institution's rating of its enrolment's session."""
    enrolment = await find_enrolment(session, enrollment_id, account_id)
    if enrolment is None:
        raise EnrolmentRefused("not_found", "No such enrolment.", status=404)
    if enrolment.status != "confirmed":
        raise EnrolmentRefused("not_confirmed", "Only a confirmed enrolment can be rated.")
    await _session_over(session, enrolment.session_id, now)
    return await _store(session, enrolment, given, now)


async def from_attendee(
    session: AsyncSession, enrollment_id: uuid.UUID, name: str, given: Rating, now: datetime
) -> uuid.UUID:
    """A person's rating through the institution's link (already resolved to its enrolment): the name must be one
    that joined through it."""
    enrolment = (await session.execute(select(enrolments).where(enrolments.c.id == enrollment_id))).one()
    await _session_over(session, enrolment.session_id, now)
    joins = await session.execute(
        select(attendances.c.id, attendances.c.participant_name)
        .where(attendances.c.enrollment_id == enrollment_id)
        .order_by(attendances.c.joined_at, attendances.c.id)
    )
    who = certificates_of.person(name)
    match = next((row for row in joins if certificates_of.person(row.participant_name) == who), None)
    if match is None:
        raise EnrolmentRefused("not_an_attendee", "Nobody joined the session under this name through this link.")
    return await _store(session, enrolment, given, now, match.id, match.participant_name.strip())


async def by_token(session: AsyncSession, token: str) -> Any:
    """The certificate a person's feedback link designates, and whether they already gave it; None when unknown."""
    query = (
        select(
            certificates.c.id,
            certificates.c.enrollment_id,
            certificates.c.attendance_id,
            certificates.c.participant_name,
            certificates.c.session_title,
            feedback.c.id.is_not(None).label("given"),
        )
        .outerjoin(feedback, feedback.c.attendance_id == certificates.c.attendance_id)
        .where(certificates.c.feedback_token_hash == links.token_hash(token))
    )
    return (await session.execute(query)).one_or_none()


async def from_certificate_link(session: AsyncSession, token: str, given: Rating, now: datetime) -> uuid.UUID:
    """A person's rating through the feedback link of their certificate (issued after the end)."""
    found = await by_token(session, token)
    if found is None:
        raise EnrolmentRefused("feedback_link_not_found", "No such feedback link.", status=404)
    enrolment = (await session.execute(select(enrolments).where(enrolments.c.id == found.enrollment_id))).one()
    return await _store(session, enrolment, given, now, found.attendance_id, found.participant_name)


async def of_session(session: AsyncSession, session_id: uuid.UUID) -> dict[str, Any]:
    """Every rating of a session (newest first), their average and distribution."""
    rows = (
        await session.execute(
            select(feedback, enrolments.c.institution_name)
            .join(enrolments, enrolments.c.id == feedback.c.enrollment_id)
            .where(feedback.c.session_id == session_id)
            .order_by(feedback.c.created_at.desc(), feedback.c.id)
        )
    ).all()
    distribution = dict.fromkeys(range(1, 6), 0)
    for row in rows:
        distribution[row.rating] += 1
    count = len(rows)
    return {
        "average": round(sum(row.rating for row in rows) / count, 2) if count else None,
        "count": count,
        "distribution": {str(rating): n for rating, n in distribution.items()},
        "items": [
            {
                "rating": row.rating,
                "comment": row.comment,
                "respondent": "institution" if row.attendance_id is None else row.respondent_name,
                "institution_name": row.institution_name,
                "created_at": row.created_at.isoformat(),
            }
            for row in rows
        ],
    }


async def given_by_institution(session: AsyncSession, enrollment_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these enrolments the institution already rated."""
    if not enrollment_ids:
        return set()
    result = await session.execute(
        select(feedback.c.enrollment_id).where(
            feedback.c.enrollment_id.in_(enrollment_ids), feedback.c.attendance_id.is_(None)
        )
    )
    return set(result.scalars())


async def outcomes_of(session: AsyncSession, enrollment_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """For "Mes Webvisio": per enrolment, whether the institution rated it and how many certificates it has."""
    rated = await given_by_institution(session, enrollment_ids)
    counted = await session.execute(
        select(certificates.c.enrollment_id, func.count())
        .where(certificates.c.enrollment_id.in_(enrollment_ids))
        .group_by(certificates.c.enrollment_id)
    )
    counts: dict[uuid.UUID, int] = dict(counted.tuples().all())
    return {
        enrollment_id: {"feedback_given": enrollment_id in rated, "certificates": counts.get(enrollment_id, 0)}
        for enrollment_id in enrollment_ids
    }
