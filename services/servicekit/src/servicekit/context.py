"""Per-request / per-event context carried into logs and into the envelopes of the events it causes."""

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

from contracts import Envelope

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
event_id: ContextVar[str | None] = ContextVar("event_id", default=None)
# The address of the person's client, as the gateway decided it (for security events); None outside a request.
client_address: ContextVar[str | None] = ContextVar("client_address", default=None)

CORRELATION_HEADER = "X-Correlation-ID"
CLIENT_ADDRESS_HEADER = "X-Client-Address"  # gateway -> internal APIs only


def current_correlation_id() -> str:
    """The correlation id in force, minted when a flow starts without one."""
    value = correlation_id.get()
    if value is None:
        value = str(uuid.uuid4())
        correlation_id.set(value)
    return value


@contextlib.contextmanager
def handling(envelope: Envelope) -> Iterator[None]:
    """Logs and events written while handling `envelope` carry its correlation id and cause."""
    correlation_id.set(envelope.correlation_id)
    causation_id.set(str(envelope.id))
    event_id.set(str(envelope.id))
    try:
        yield
    finally:
        event_id.set(None)
        causation_id.set(None)
