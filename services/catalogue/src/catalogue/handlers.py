"""Kafka subscribers of catalogue: thin. What enrollment says of enrolments keeps each session's enrolled count
(places left, and the rules that hold once an institution is enrolled), in the consumer's transaction."""

from sqlalchemy.ext.asyncio import AsyncSession

from catalogue import service
from contracts import Envelope
from contracts.events.enrollment import Enrolled, EnrollmentCancelled

ENROLLMENT_EVENTS = (Enrolled, EnrollmentCancelled)


async def on_enrollment_event(session: AsyncSession, envelope: Envelope) -> None:
    event = envelope.event
    if isinstance(event, Enrolled):
        await service.enrolment_confirmed(session, event.enrollment_id, event.session_id, event.account_id)
    elif isinstance(event, EnrollmentCancelled):
        await service.enrolment_cancelled(session, event.enrollment_id, event.session_id)
