"""Events of the enrollment service, on topic `enrollment.enrollment` keyed by enrolment id."""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Email, Event, NonEmptyStr, Notice, UtcDatetime
from contracts.secrets import SealedSecret

RejectionReason = Literal[
    "insufficient_balance",
    "account_unverified",
    "account_closed",
    "unknown_account",
    "session_full",
    "session_unavailable",
    "enrolment_closed",
    "already_waiting",
    "already_enrolled",
    "session_privatised",
    "privatisation_unavailable",
]


class EnrollmentEvent(Event):
    topic: ClassVar[str] = "enrollment.enrollment"
    key_field: ClassVar[str] = "enrollment_id"

    enrollment_id: uuid.UUID = Field(description="Id of the enrolment; the Kafka key.")
    account_id: uuid.UUID = Field(description="Id of the enrolled institution's account.")
    session_id: uuid.UUID = Field(description="Id of the session.")


class EnrollmentRequested(EnrollmentEvent):
    """An institution asked to enrol in a session; billing is to debit the tokens (saga start)."""

    type: Literal["EnrollmentRequested"] = "EnrollmentRequested"
    privatisation: bool = Field(description="True when the institution books the whole session for itself.")
    tokens: int = Field(1, ge=1, le=1000, description="Tokens the enrolment costs: 1, or the session's premium price.")


class Enrolled(EnrollmentEvent):
    """The enrolment is confirmed: the tokens were debited."""

    type: Literal["Enrolled"] = "Enrolled"
    privatisation: bool = Field(False, description="True when the institution booked the whole session.")
    notice: Notice | None = Field(
        None, description="The person who asked for the enrolment, told of it by mail; None when unknown."
    )


class EnrollmentRejected(EnrollmentEvent):
    """The enrolment was refused; nothing is owed."""

    type: Literal["EnrollmentRejected"] = "EnrollmentRejected"
    reason: RejectionReason = Field(description="Why the enrolment was refused.")
    notice: Notice | None = Field(
        None, description="The person who asked for the enrolment, told of it by mail; None when unknown."
    )


class EnrollmentCancelled(EnrollmentEvent):
    """A confirmed enrolment was cancelled."""

    type: Literal["EnrollmentCancelled"] = "EnrollmentCancelled"
    refund: bool = Field(description="True when billing must give the tokens back (before the cut-off).")
    reason: Literal["requested", "session_cancelled", "organiser"] = Field(
        "requested", description="Who or what cancelled it."
    )
    notice: Notice | None = Field(
        None, description="The person who asked for the enrolment, told of it by mail; None when unknown."
    )


class WaitingListPlaceOffered(Event):
    """A place freed in a full session is offered to the first institution of its waiting list, held for it until
    `hold_until`; confirming it in time starts the enrolment (EnrollmentRequested), else it passes to the next."""

    topic: ClassVar[str] = "enrollment.enrollment"
    key_field: ClassVar[str] = "entry_id"

    type: Literal["WaitingListPlaceOffered"] = "WaitingListPlaceOffered"
    entry_id: uuid.UUID = Field(description="Id of the waiting-list entry (its own aggregate); the Kafka key.")
    account_id: uuid.UUID = Field(description="Id of the waiting institution's account.")
    session_id: uuid.UUID = Field(description="Id of the session.")
    offered_at: UtcDatetime = Field(description="When the place was offered (UTC).")
    hold_until: UtcDatetime = Field(description="Until when the place is kept for this institution (UTC).")
    notice: Notice | None = Field(
        None, description="The person who asked for the enrolment, told of it by mail; None when unknown."
    )


# Superseded by v2 (its token would travel in clear on Kafka); still decodable, never to be produced.
class ParticipationLinkIssuedV1(EnrollmentEvent):
    """The institution's participation link is ready; the notifier sends it to the account manager."""

    type: Literal["ParticipationLinkIssued"] = "ParticipationLinkIssued"
    join_token: NonEmptyStr = Field(description="Unguessable token of the link /join/<join_token>.")


class ParticipationLinkIssued(EnrollmentEvent):
    """The institution's participation link is ready; the notifier sends it to the account manager."""

    type: Literal["ParticipationLinkIssued"] = "ParticipationLinkIssued"
    version: ClassVar[int] = 2
    join_token: SealedSecret = Field(
        description="Unguessable token of the link /join/<join_token>, sealed for the notifier (contracts.secrets) "
        "and bound to this event, field and enrolment."
    )


class AttendanceRecorded(EnrollmentEvent):
    """A participant joined the session through the institution's link."""

    type: Literal["AttendanceRecorded"] = "AttendanceRecorded"
    attendance_id: uuid.UUID = Field(description="Id of this attendance.")
    participant_name: NonEmptyStr = Field(description="Name the participant gave when joining.")
    participant_email: Email | None = Field(None, description="Email the participant gave, if any.")
    joined_at: UtcDatetime = Field(description="When the participant joined (UTC).")


class CertificateIssued(EnrollmentEvent):
    """An attendance certificate was issued for a participant (after the session ended); the notifier sends the
    thank-you mail with the certificate and the person's feedback link."""

    type: Literal["CertificateIssued"] = "CertificateIssued"
    certificate_id: uuid.UUID = Field(description="Id of the certificate.")
    attendance_id: uuid.UUID = Field(description="Id of the attendance it certifies (the person's first join).")
    participant_name: NonEmptyStr = Field(description="Name printed on the certificate.")
    participant_email: Email | None = Field(
        None, description="Where to send it; when absent, it goes to the enrolment's contact (`notice`)."
    )
    pdf_url: NonEmptyStr = Field(
        description="Path of the PDF on the public site, relative to its base URL, e.g. /certificates/<id>.pdf."
    )
    issued_at: UtcDatetime = Field(description="When the certificate was issued (UTC).")
    verification_code: str | None = Field(
        None, max_length=32, description="Code printed on the certificate, checked by anyone at /certificates/verify."
    )
    feedback_token: SealedSecret | None = Field(
        None,
        description="Token of the person's feedback link /feedback/<token>, sealed for the notifier "
        "(contracts.secrets) and bound to this event, field and enrolment.",
    )
    notice: Notice | None = Field(
        None, description="The enrolment's contact, who gets the mail when the participant left no address."
    )


class ParticipationLinkShared(EnrollmentEvent):
    """A manager sent the institution's participation link to a staff member (now or at the time they chose), by
    email or SMS, with a personal message; the notifier delivers it."""

    type: Literal["ParticipationLinkShared"] = "ParticipationLinkShared"
    share_id: uuid.UUID = Field(description="Id of this sending (one per recipient).")
    channel: Literal["email", "sms"] = Field(description="How to send it.")
    recipient: NonEmptyStr = Field(max_length=320, description="Email address, or phone number in E.164 for SMS.")
    recipient_name: str | None = Field(None, max_length=200, description="Name of the recipient, if given.")
    sender_name: str | None = Field(None, max_length=200, description="Name of the manager who shares the link.")
    message: str | None = Field(None, max_length=1000, description="The manager's personal message, as typed.")
    language: Literal["fr", "en"] = Field("fr", description="Language of the mail or SMS.")
    join_token: SealedSecret = Field(
        description="Token of the link /join/<join_token>, sealed for the notifier (contracts.secrets) "
        "and bound to this event, field and enrolment."
    )
