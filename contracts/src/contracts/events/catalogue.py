"""Events of the catalogue service, on topic `catalogue.session` keyed by session id."""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Event, NonEmptyStr, UtcDatetime

DurationMinutes = Literal[60, 90]


class SessionEvent(Event):
    topic: ClassVar[str] = "catalogue.session"
    key_field: ClassVar[str] = "session_id"

    session_id: uuid.UUID = Field(description="Id of the session; the Kafka key.")


class SessionScheduled(SessionEvent):
    """A live session was put on the schedule and is open for enrolment."""

    type: Literal["SessionScheduled"] = "SessionScheduled"
    theme_id: uuid.UUID = Field(description="Id of the session's theme.")
    title: NonEmptyStr = Field(description="Title shown to institutions.")
    starts_at: UtcDatetime = Field(description="Start (UTC).")
    duration_minutes: DurationMinutes = Field(description="Length in minutes.")
    timezone: NonEmptyStr = Field("Europe/Paris", description="IANA time zone the session is shown in.")
    capacity: int = Field(ge=1, description="Maximum number of enrolled institutions.")
    provider: Literal["bbb", "jitsi"] = Field(description="Conferencing provider (BigBlueButton or Jitsi).")


class SessionRescheduled(SessionEvent):
    """A session moved to another time."""

    type: Literal["SessionRescheduled"] = "SessionRescheduled"
    previous_starts_at: UtcDatetime = Field(description="Former start (UTC).")
    starts_at: UtcDatetime = Field(description="New start (UTC).")
    duration_minutes: DurationMinutes = Field(description="Length in minutes.")
    timezone: NonEmptyStr = Field("Europe/Paris", description="IANA time zone the session is shown in.")


class SessionCancelled(SessionEvent):
    """A session was cancelled; its enrolments are cancelled and refunded."""

    type: Literal["SessionCancelled"] = "SessionCancelled"
    reason: NonEmptyStr = Field(description="Reason given to the institutions, in plain words.")
    cancelled_at: UtcDatetime = Field(description="When the session was cancelled (UTC).")


class SessionStarting(SessionEvent):
    """The scheduler reached an offset before a session: J-2 (links), H-1 (reminder) or the start itself."""

    type: Literal["SessionStarting"] = "SessionStarting"
    offset: Literal["J-2", "H-1", "start"] = Field(description="Which offset before the start was reached.")
    starts_at: UtcDatetime = Field(description="Start of the session (UTC).")


class SessionEnded(SessionEvent):
    """A session is over; attendance is final and certificates can be issued."""

    type: Literal["SessionEnded"] = "SessionEnded"
    ended_at: UtcDatetime = Field(description="When the session ended (UTC).")
