"""Seals the single-use tokens that accounts writes into events (the links the notifier mails), so that
nobody who reads Kafka, its dead letters, the outbox table or a log of them can use one (contracts.secrets).

The keyring is ACCOUNTS_EVENT_SECRET_KEYS; the notifier holds the same keys (NOTIFIER_EVENT_SECRET_KEYS). Each
sealed value is bound to its event, field and account: it opens nowhere else."""

import uuid
from functools import cache

from accounts.settings import AccountsSettings
from contracts.base import Event
from contracts.secrets import Keyring, SecretError, seal, secret_context


@cache
def keyring() -> Keyring:
    """The service's keyring, read once from the environment; SecretError when unset or unreadable."""
    value = AccountsSettings().event_secret_keys
    if value is None or not value.get_secret_value().strip():
        raise SecretError("ACCOUNTS_EVENT_SECRET_KEYS is not set: accounts cannot seal the tokens of its events")
    return Keyring.parse(value.get_secret_value())


def sealed(token: str, event: type[Event], field: str, account_id: uuid.UUID) -> str:
    """`token` sealed for `field` of `event` about `account_id`, as that event's field takes it."""
    if field not in event.model_fields:
        raise ValueError(f"{event.__name__} has no field {field}")
    return seal(token, keyring(), secret_context(event, field, account_id))
