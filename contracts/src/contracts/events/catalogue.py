"""Events of the catalogue service, on topic `catalogue.session` keyed by session id.

Catalogue published none of them before the catalogue issue, so their first versions were reshaped then
(durations other than 60/90, unlimited capacity, prices, the J-7 and room-opening offsets)."""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Event, NonEmptyStr, UtcDatetime

Provider = Literal["bbb", "jitsi"]
Access = Literal["open", "code"]
Offset = Literal["J-7", "J-2", "H-1", "open"]


class SessionEvent(Event):
    topic: ClassVar[str] = "catalogue.session"
    key_field: ClassVar[str] = "session_id"

    session_id: uuid.UUID = Field(description="Id of the session; the Kafka key.")


class SessionTerms(SessionEvent):
    """What other services need to know of a published session to enrol, bill and remind."""

    theme_id: uuid.UUID = Field(description="Id of the session's theme.")
    title: NonEmptyStr = Field(max_length=200, description="Title shown to institutions.")
    theme_title: str | None = Field(
        None, max_length=200, description="Title of the session's theme (for certificates and statistics)."
    )
    starts_at: UtcDatetime = Field(description="Start (UTC).")
    duration_minutes: int = Field(ge=15, le=480, description="Length in minutes (60 or 90 usually).")
    timezone: NonEmptyStr = Field("Europe/Paris", description="IANA time zone the session is shown in.")
    capacity: int | None = Field(
        ge=1, le=100_000, description="Maximum number of enrolled institutions; null: no limit."
    )
    price_tokens: int = Field(1, ge=1, le=1000, description="Tokens one enrolment costs.")
    premium_price_tokens: int | None = Field(
        None, ge=1, le=1000, description="Tokens a privatisation costs; null: the session cannot be privatised."
    )
    access: Access = Field("open", description="open: any verified account; code: an entry code is asked at the door.")
    provider: Provider = Field(description="Conferencing provider (BigBlueButton or Jitsi).")


class SessionScheduled(SessionTerms):
    """A session was published: it is on the planning and open for enrolment."""

    type: Literal["SessionScheduled"] = "SessionScheduled"


class SessionUpdated(SessionTerms):
    """A published session's terms changed (title, capacity, access...); its time did not (see SessionRescheduled)."""

    type: Literal["SessionUpdated"] = "SessionUpdated"


class SessionRescheduled(SessionEvent):
    """A session moved to another time; its enrolments keep."""

    type: Literal["SessionRescheduled"] = "SessionRescheduled"
    previous_starts_at: UtcDatetime = Field(description="Former start (UTC).")
    starts_at: UtcDatetime = Field(description="New start (UTC).")
    duration_minutes: int = Field(ge=15, le=480, description="Length in minutes.")
    timezone: NonEmptyStr = Field("Europe/Paris", description="IANA time zone the session is shown in.")


class SessionCancelled(SessionEvent):
    """A session was cancelled; its enrolments are cancelled and refunded."""

    type: Literal["SessionCancelled"] = "SessionCancelled"
    reason: NonEmptyStr = Field(description="Reason given to the institutions, in plain words.")
    cancelled_at: UtcDatetime = Field(description="When the session was cancelled (UTC).")


class SessionStarting(SessionEvent):
    """The scheduler reached an offset before a session: J-7 and H-1 (reminders), J-2 (participation links go out),
    open (the room opens, 15 minutes before the start)."""

    type: Literal["SessionStarting"] = "SessionStarting"
    offset: Offset = Field(description="Which offset before the start was reached.")
    starts_at: UtcDatetime = Field(description="Start of the session (UTC).")
    ends_at: UtcDatetime = Field(description="End of the session (UTC).")


class SessionEnded(SessionEvent):
    """A session is over; attendance is final and certificates can be issued."""

    type: Literal["SessionEnded"] = "SessionEnded"
    ended_at: UtcDatetime = Field(description="When the session ended (UTC).")
