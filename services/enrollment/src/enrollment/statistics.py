"""Statistics for the back office: per session, per theme and in total, over the sessions starting in a period.

Per session: `enrolments` (confirmed ones, still active), `cancellations` (enrolments cancelled, whoever cancelled),
`attended_enrolments` (confirmed enrolments someone joined through), `attendance_rate` (attended / enrolments, null
without enrolments), `people` (distinct persons: names per enrolment, case and outer spaces aside), and the ratings
(`rating_average` over every rating, institutions' and persons', `rating_count`). Themes and totals add the
sessions' counts up; their average is over all their ratings. Sessions cancelled by catalogue are listed too."""

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from enrollment.models import attendances, enrolments, feedback, sessions

COUNTS = ("enrolments", "cancellations", "attended_enrolments", "people", "rating_count", "rating_sum")


def _rates(counts: dict[str, Any]) -> dict[str, Any]:
    """The counts with their rates, as shown (the ratings' sum stays internal)."""
    shown = {name: value for name, value in counts.items() if name != "rating_sum"}
    enrolled, rated = counts["enrolments"], counts["rating_count"]
    shown["attendance_rate"] = round(counts["attended_enrolments"] / enrolled, 4) if enrolled else None
    shown["rating_average"] = round(counts["rating_sum"] / rated, 2) if rated else None
    return shown


async def statistics(
    session: AsyncSession, start: datetime, end: datetime, theme_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """The sessions starting in [start, end) (of one theme if given), soonest first, and their aggregates."""
    conditions = [sessions.c.starts_at >= start, sessions.c.starts_at < end]
    if theme_id is not None:
        conditions.append(sessions.c.theme_id == theme_id)
    chosen = select(sessions.c.id).where(*conditions).scalar_subquery()
    enrolled = (
        select(
            enrolments.c.session_id,
            func.count().filter(enrolments.c.status == "confirmed").label("enrolments"),
            func.count().filter(enrolments.c.status == "cancelled").label("cancellations"),
        )
        .where(enrolments.c.session_id.in_(chosen))
        .group_by(enrolments.c.session_id)
        .subquery()
    )
    person = func.lower(func.btrim(attendances.c.participant_name))
    attended = (
        select(
            attendances.c.session_id,
            func.count(func.distinct(attendances.c.enrollment_id)).label("attended_enrolments"),
            func.count(func.distinct(func.concat(attendances.c.enrollment_id, "/", person))).label("people"),
        )
        .join(enrolments, enrolments.c.id == attendances.c.enrollment_id)
        .where(attendances.c.session_id.in_(chosen), enrolments.c.status == "confirmed")
        .group_by(attendances.c.session_id)
        .subquery()
    )
    rated = (
        select(
            feedback.c.session_id,
            func.count().label("rating_count"),
            func.sum(feedback.c.rating).label("rating_sum"),
        )
        .where(feedback.c.session_id.in_(chosen))
        .group_by(feedback.c.session_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                sessions,
                *[
                    func.coalesce(column, 0).label(column.name)
                    for column in (
                        enrolled.c.enrolments,
                        enrolled.c.cancellations,
                        attended.c.attended_enrolments,
                        attended.c.people,
                        rated.c.rating_count,
                        rated.c.rating_sum,
                    )
                ],
            )
            .outerjoin(enrolled, enrolled.c.session_id == sessions.c.id)
            .outerjoin(attended, attended.c.session_id == sessions.c.id)
            .outerjoin(rated, rated.c.session_id == sessions.c.id)
            .where(*conditions)
            .order_by(sessions.c.starts_at, sessions.c.id)
        )
    ).all()
    themes: dict[uuid.UUID, dict[str, Any]] = {}
    theme_counts: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    totals = dict.fromkeys(COUNTS, 0)
    shown_sessions = []
    for row in rows:
        counts = {name: int(getattr(row, name)) for name in COUNTS}
        shown_sessions.append(
            {
                "session_id": str(row.id),
                "title": row.title,
                "theme_id": str(row.theme_id),
                "theme_title": row.theme_title,
                "starts_at": row.starts_at.isoformat(),
                "status": row.status,
                "capacity": row.capacity,
            }
            | _rates(counts)
        )
        theme = themes.setdefault(row.theme_id, {"theme_id": str(row.theme_id), "theme_title": None, "sessions": 0})
        theme["theme_title"] = row.theme_title or theme["theme_title"]  # the latest session's title wins
        theme["sessions"] += 1
        for name in COUNTS:
            theme_counts[row.theme_id][name] += counts[name]
            totals[name] += counts[name]
    shown_themes = sorted(
        (theme | _rates(theme_counts[key]) for key, theme in themes.items()),
        key=lambda theme: ((theme["theme_title"] or "").casefold(), theme["theme_id"]),
    )
    return {
        "sessions": shown_sessions,
        "themes": shown_themes,
        "totals": {"sessions": len(rows)} | _rates(totals),
    }
