"""Events of the notifier service, on topic `notifier.delivery` keyed by delivery id."""

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Email, Event, NonEmptyStr, UtcDatetime


class DeliveryEvent(Event):
    topic: ClassVar[str] = "notifier.delivery"
    key_field: ClassVar[str] = "delivery_id"

    delivery_id: uuid.UUID = Field(description="Id of the delivery; the Kafka key.")
    template: NonEmptyStr = Field(description="Name of the message template, e.g. account_verification.")
    recipient: Email = Field(description="Email address the message was sent to.")
    caused_by: uuid.UUID = Field(description="Id (ce_id) of the event that caused the message.")


class NotificationSent(DeliveryEvent):
    """A message was handed to the mail server."""

    type: Literal["NotificationSent"] = "NotificationSent"
    sent_at: UtcDatetime = Field(description="When the mail server accepted the message (UTC).")


class NotificationFailed(DeliveryEvent):
    """A message could not be delivered after all retries."""

    type: Literal["NotificationFailed"] = "NotificationFailed"
    error: NonEmptyStr = Field(description="Last error, in one line.")
    attempts: int = Field(1, ge=1, description="Number of attempts made.")
    failed_at: UtcDatetime = Field(description="When the notifier gave up (UTC).")
