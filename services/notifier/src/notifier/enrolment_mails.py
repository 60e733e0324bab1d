"""The mails of an enrolment's life: confirmed (with its calendar invitation), rejected, cancelled (the invitation
withdrawn), a waiting-list place offered; and, for each active enrolment of a session, the session rescheduled (the
invitation updated) and the J-7 and H-1 reminders.

Whom: each enrollment event names the person who asked for the enrolment in its `notice` (the gateway's logged-in
person, in their language); an event without one plans no mail. Session-wide mails go to each active enrolment's
contact, from the notifier's copy of the enrolments (`enrolments`, kept here from `enrollment.enrollment`: an
enrolment is copied when confirmed, marked cancelled when cancelled).

What of the session: the notifier's own copy (notifier.sessions: title, start, length and zone, the invitations'
SEQUENCE), so that a mail never asks catalogue. Times are written in the session's own zone and the reader's
language. A confirmation for a session the notifier never heard of raises (the consumer tries the event again):
the enrollment service enrols only in sessions it copied from the same topic, so the copy follows soon.

Invitations (notifier.invitations): the planned delivery keeps what to build it from (`INVITATION`: UID from the
enrolment, the SEQUENCE, the times), and the delivery loop makes and attaches it when it sends the mail. A REQUEST
carries the session's current SEQUENCE; a CANCEL one above it, unless the session itself was cancelled (its copy
already counted the cancellation). An enrolment whose session was cancelled is told the organiser's reason when
the copy has it (the session's cancellation and the enrolments' come on two topics: read in either order, the mail
still says the organiser cancelled the session).

The participation events (the link issued or shared, the certificates) are built by notifier.participation_mails
from the same copies, in the same consumer."""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.base import Event, Notice
from contracts.events.catalogue import SessionRescheduled, SessionStarting
from contracts.events.enrollment import (
    Enrolled,
    EnrollmentCancelled,
    EnrollmentEvent,
    EnrollmentRejected,
    WaitingListPlaceOffered,
)
from contracts.secrets import Keyring
from notifier import service as notifier
from notifier import sessions, webhooks
from notifier.handlers import Mail
from notifier.models import enrolments
from notifier.participation_mails import PARTICIPATION_EVENTS, participation_mails
from notifier.settings import NotifierSettings

log = logging.getLogger(__name__)

ENROLMENT_EVENTS = [Enrolled, EnrollmentRejected, EnrollmentCancelled, WaitingListPlaceOffered, *PARTICIPATION_EVENTS]
# The scheduler's offsets that remind each enrolled institution, and their mails (reminders: bulk, opt-out).
REMINDER_TEMPLATES = {"J-7": "session_reminder_j7", "H-1": "session_reminder_h1"}
SESSION_MAIL_EVENTS = [*sessions.SESSION_EVENTS, SessionStarting]
WEBVISIO_PAGE = "/account/webvisio"


def _mail(template: str, notice: Notice, variables: dict[str, Any]) -> Mail:
    return Mail(template=template, language=notice.language, recipient=notice.email, variables=variables)


def _session_terms(session_row: Row[Any] | None, language: str) -> dict[str, str]:
    """What a mail says of the session: its title and start in its own zone, and its length."""
    if session_row is None:
        return {"title": "", "starts_at": "", "duration": ""}
    return {
        "title": session_row.title,
        "starts_at": notifier.local_datetime(session_row.starts_at, language, session_row.timezone),
        "duration": str(session_row.duration_minutes),
    }


def invitation_terms(
    enrollment_id: uuid.UUID, session_row: Row[Any], *, method: str, sequence: int, url: str
) -> dict[str, Any]:
    """What the delivery loop builds an invitation from (notifier.delivery.invitation_of), as JSON."""
    return {
        "enrollment_id": str(enrollment_id),
        "session_id": str(session_row.session_id),
        "title": session_row.title,
        "starts_at": session_row.starts_at.isoformat(),
        "ends_at": (session_row.starts_at + timedelta(minutes=session_row.duration_minutes)).isoformat(),
        "timezone": session_row.timezone,
        "url": url,
        "sequence": sequence,
        "method": method,
    }


def _variables(notice: Notice, session_row: Row[Any] | None, settings: NotifierSettings) -> dict[str, Any]:
    return {
        "name": notice.name,
        **_session_terms(session_row, notice.language),
        "link": f"{settings.public_base_url}{WEBVISIO_PAGE}",
    }


def enrolled_mails(event: Enrolled, session_row: Row[Any] | None, settings: NotifierSettings) -> list[Mail]:
    if event.notice is None:
        return []
    if session_row is None:
        raise LookupError(f"the notifier has no copy of session {event.session_id} yet")
    variables = _variables(event.notice, session_row, settings)
    variables[notifier.INVITATION] = invitation_terms(
        event.enrollment_id,
        session_row,
        method="REQUEST",
        sequence=session_row.invitation_sequence,
        url=variables["link"],
    )
    return [_mail("enrolment_confirmed", event.notice, variables)]


def rejected_mails(event: EnrollmentRejected, session_row: Row[Any] | None, settings: NotifierSettings) -> list[Mail]:
    if event.notice is None:
        return []
    variables = _variables(event.notice, session_row, settings) | {
        "reason": event.reason,
        "tokens_link": f"{settings.public_base_url}/account/tokens",
        "planning_link": f"{settings.public_base_url}/planning",
    }
    return [_mail("enrolment_rejected", event.notice, variables)]


def cancelled_mails(
    event: EnrollmentCancelled,
    session_row: Row[Any] | None,
    settings: NotifierSettings,
    *,
    notice: Notice | None,
    invited: bool,
) -> list[Mail]:
    """`notice`: the event's, else the copy's contact; `invited`: the enrolment was confirmed (an invitation was
    sent, to withdraw)."""
    if notice is None:
        return []
    variables = _variables(notice, session_row, settings) | {
        "reason": event.reason,
        "refund": "yes" if event.refund else "",
        "cancel_reason": (session_row.cancel_reason or "") if session_row is not None else "",
        "planning_link": f"{settings.public_base_url}/planning",
    }
    if invited and session_row is not None:
        cancelled = session_row.status == "cancelled"  # the copy already counted the session's cancellation
        variables[notifier.INVITATION] = invitation_terms(
            event.enrollment_id,
            session_row,
            method="CANCEL",
            sequence=session_row.invitation_sequence + (0 if cancelled else 1),
            url=variables["link"],
        )
    return [_mail("enrolment_cancelled", notice, variables)]


def offered_mails(
    event: WaitingListPlaceOffered, session_row: Row[Any] | None, settings: NotifierSettings
) -> list[Mail]:
    if event.notice is None:
        return []
    zone = session_row.timezone if session_row is not None else None
    variables = _variables(event.notice, session_row, settings) | {
        "hold_until": notifier.local_datetime(event.hold_until, event.notice.language, zone),
    }
    return [_mail("waiting_list_place_offered", event.notice, variables)]


def _contact(enrolment: Row[Any]) -> Notice:
    return Notice(email=enrolment.email, name=enrolment.name or "", language=enrolment.language)


def rescheduled_mails(
    event: SessionRescheduled, session_row: Row[Any], active: list[Row[Any]], settings: NotifierSettings
) -> list[tuple[Row[Any], Mail]]:
    """To each active enrolment's contact: the new time, and the invitation taken over (REQUEST, the higher
    SEQUENCE the copy now holds)."""
    mails = []
    for enrolment in active:
        notice = _contact(enrolment)
        variables = _variables(notice, session_row, settings) | {
            "previous_starts_at": notifier.local_datetime(
                event.previous_starts_at, notice.language, session_row.timezone
            ),
        }
        variables[notifier.INVITATION] = invitation_terms(
            enrolment.enrollment_id,
            session_row,
            method="REQUEST",
            sequence=session_row.invitation_sequence,
            url=variables["link"],
        )
        mails.append((enrolment, _mail("session_rescheduled", notice, variables)))
    return mails


def reminder_mails(
    event: SessionStarting, session_row: Row[Any], active: list[Row[Any]], settings: NotifierSettings
) -> list[tuple[Row[Any], Mail]]:
    """J-7 and H-1: a reminder to each active enrolment's contact (the other offsets remind nobody here)."""
    template = REMINDER_TEMPLATES.get(event.offset)
    if template is None:
        return []
    return [
        (enrolment, _mail(template, _contact(enrolment), _variables(_contact(enrolment), session_row, settings)))
        for enrolment in active
    ]


# --- the copy of the enrolments ---------------------------------------------------------------------------------


async def _copy_of(session: AsyncSession, enrollment_id: uuid.UUID) -> Row[Any] | None:
    found = await session.execute(select(enrolments).where(enrolments.c.enrollment_id == enrollment_id))
    return found.one_or_none()


async def active_enrolments(session: AsyncSession, session_id: uuid.UUID) -> list[Row[Any]]:
    """The session's active enrolments that name someone to tell."""
    found = await session.execute(
        select(enrolments)
        .where(
            enrolments.c.session_id == session_id,
            enrolments.c.status == "active",
            enrolments.c.email.is_not(None),
        )
        .order_by(enrolments.c.enrollment_id)
    )
    return list(found.all())


async def apply(session: AsyncSession, event: Event, at: datetime) -> Row[Any] | None:
    """Bring the copy of `event`'s enrolment up to date; the copy as it was before (None when new)."""
    if isinstance(event, Enrolled):
        before = await _copy_of(session, event.enrollment_id)
        notice = event.notice
        contact = {
            "email": notice.email if notice else None,
            "name": notice.name if notice else None,
            "language": notice.language if notice else "fr",
        }
        await session.execute(
            insert(enrolments)
            .values(
                enrollment_id=event.enrollment_id,
                session_id=event.session_id,
                account_id=event.account_id,
                status="active",
                updated_at=at,
                **contact,
            )
            .on_conflict_do_nothing(index_elements=[enrolments.c.enrollment_id])
        )
        return before
    if isinstance(event, EnrollmentCancelled):
        before = await _copy_of(session, event.enrollment_id)
        await session.execute(
            update(enrolments)
            .where(enrolments.c.enrollment_id == event.enrollment_id)
            .values(status="cancelled", updated_at=at)
        )
        return before
    return None


# --- the handlers ---------------------------------------------------------------------------------------------


async def _plan(session: AsyncSession, event_id: uuid.UUID, mail: Mail, account_id: uuid.UUID) -> None:
    await notifier.plan(
        session,
        event_id=event_id,
        template=mail.template,
        language=mail.language,
        recipient=mail.recipient,
        variables=mail.variables,
        account_id=account_id,
        bulk=mail.bulk,
        channel=mail.channel,
    )


async def enrolment_mails(
    session: AsyncSession, event: Event, at: datetime, settings: NotifierSettings, keyring: Keyring | None = None
) -> list[Mail]:
    """Update the copy with an enrollment event and return the mails it asks for (`keyring` opens the sealed tokens
    of the participation events, notifier.participation_mails)."""
    if type(event) in PARTICIPATION_EVENTS and isinstance(event, EnrollmentEvent):
        copy = await _copy_of(session, event.enrollment_id)
        session_row = await sessions.session_of(session, event.session_id)
        return participation_mails(event, copy, session_row, settings, keyring)
    build: dict[type[Event], Callable[..., list[Mail]]] = {
        Enrolled: enrolled_mails,
        EnrollmentRejected: rejected_mails,
        WaitingListPlaceOffered: offered_mails,
    }
    if type(event) not in (*build, EnrollmentCancelled):
        return []
    before = await apply(session, event, at)
    session_row = await sessions.session_of(session, event.session_id)
    if isinstance(event, EnrollmentCancelled):
        notice = event.notice or (_contact(before) if before is not None and before.email else None)
        invited = before is not None and before.status == "active"
        return cancelled_mails(event, session_row, settings, notice=notice, invited=invited)
    return build[type(event)](event, session_row, settings)


def enrollment_handlers(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    """One consumer of `enrollment.enrollment`: the account's webhooks (notifier.webhooks), then the mails."""
    keyring = settings.keyring()

    async def on_enrollment_event(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.event
        if type(event) in webhooks.ENROLLMENT_WEBHOOKS:
            await webhooks.plan_event(session, envelope, settings.public_base_url, keyring)
        for mail in await enrolment_mails(session, event, envelope.time, settings, keyring):
            await _plan(session, envelope.id, mail, event.account_id)

    return on_enrollment_event


def session_handlers(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    """`catalogue.session`: the copy of the session (notifier.sessions), then the mails to its enrolments."""

    async def on_session_event(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.event
        await sessions.apply(session, event, envelope.time)
        if not isinstance(event, SessionRescheduled | SessionStarting):
            return
        session_row = await sessions.session_of(session, event.session_id)
        if session_row is None or session_row.status == "cancelled":
            return
        active = await active_enrolments(session, event.session_id)
        if isinstance(event, SessionRescheduled):
            planned = rescheduled_mails(event, session_row, active, settings)
        else:
            planned = reminder_mails(event, session_row, active, settings)
        for enrolment, mail in planned:
            await _plan(session, envelope.id, mail, enrolment.account_id)

    return on_session_event
