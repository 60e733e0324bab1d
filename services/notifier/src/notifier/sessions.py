"""The notifier's copy of the published sessions, from `catalogue.session`: what an enrolment's mails say of a
session (its title, its start and end in its own zone) without asking catalogue when a mail is planned, and the
SEQUENCE of its calendar invitations (notifier.invitations): 0 when published, one more each time its time changes
(a reschedule, or an update that moved it) and when it is cancelled, so that a calendar program takes each
invitation over the one before (RFC 5545: the higher SEQUENCE wins) and a CANCEL is above the last REQUEST.

A session's events come in order (one partition per session, the inbox applying each once): the copy follows them
as they are. A session the notifier never heard of being published (a cancellation without SessionScheduled) is
not invented."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.catalogue import SessionCancelled, SessionRescheduled, SessionScheduled, SessionUpdated
from notifier.models import sessions

SESSION_EVENTS = (SessionScheduled, SessionUpdated, SessionRescheduled, SessionCancelled)


async def apply(session: AsyncSession, event: Any, at: datetime) -> None:
    """Bring the copy of `event`'s session up to date; `at`: when the event happened."""
    copy = sessions.c
    if isinstance(event, SessionScheduled | SessionUpdated):
        terms = {
            "title": event.title,
            "starts_at": event.starts_at,
            "duration_minutes": event.duration_minutes,
            "timezone": event.timezone,
        }
        moved = (copy.starts_at != event.starts_at) | (copy.duration_minutes != event.duration_minutes)
        await session.execute(
            insert(sessions)
            .values(session_id=event.session_id, **terms)
            .on_conflict_do_update(
                index_elements=[copy.session_id],
                set_={
                    **terms,
                    "invitation_sequence": copy.invitation_sequence + moved.cast(sessions.c.invitation_sequence.type),
                    "updated_at": at,
                },
            )
        )
    elif isinstance(event, SessionRescheduled):
        await session.execute(
            update(sessions)
            .where(copy.session_id == event.session_id)
            .values(
                starts_at=event.starts_at,
                duration_minutes=event.duration_minutes,
                timezone=event.timezone,
                invitation_sequence=copy.invitation_sequence + 1,
                updated_at=at,
            )
        )
    elif isinstance(event, SessionCancelled):
        await session.execute(
            update(sessions)
            .where(copy.session_id == event.session_id, copy.status != "cancelled")
            .values(
                status="cancelled",
                cancel_reason=event.reason,
                invitation_sequence=copy.invitation_sequence + 1,
                updated_at=at,
            )
        )


async def session_of(session: AsyncSession, session_id: uuid.UUID) -> Row[Any] | None:
    return (await session.execute(select(sessions).where(sessions.c.session_id == session_id))).one_or_none()
