"""Seals the tokens that enrollment writes into events (the participation links and feedback links the notifier
sends), so that nobody who reads Kafka, its dead letters, the outbox table or a log of them can use one
(contracts.secrets).

The keyring is ENROLLMENT_EVENT_SECRET_KEYS; the notifier holds the same keys (NOTIFIER_EVENT_SECRET_KEYS). Each
sealed value is bound to its event, field and enrolment: it opens nowhere else."""

import uuid
from functools import cache

from contracts.base import Event
from contracts.secrets import Keyring, SecretError, seal, secret_context
from enrollment.settings import EnrollmentSettings


@cache
def keyring() -> Keyring:
    """The service's keyring, read once from the environment; SecretError when unset or unreadable."""
    value = EnrollmentSettings().event_secret_keys
    if value is None or not value.get_secret_value().strip():
        raise SecretError("ENROLLMENT_EVENT_SECRET_KEYS is not set: enrollment cannot seal the tokens of its events")
    return Keyring.parse(value.get_secret_value())


def sealed(token: str, event: type[Event], field: str, enrollment_id: uuid.UUID) -> str:
    """`token` sealed for `field` of `event` about the enrolment `enrollment_id`, as that event's field takes it."""
    if field not in event.model_fields:
        raise ValueError(f"{event.__name__} has no field {field}")
    return seal(token, keyring(), secret_context(event, field, enrollment_id))
