"""Idempotent consumers: the processed event id is written in the same transaction as the handler's effects."""

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import inbox

_CLAIM_ALL = text(
    "INSERT INTO inbox (consumer, event_id) SELECT :consumer, unnest(CAST(:event_ids AS uuid[])) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


async def claim_all(session: AsyncSession, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """The ids, among `event_ids`, that `consumer` sees for the first time; one statement for a whole batch."""
    result = await session.execute(_CLAIM_ALL, {"consumer": consumer, "event_ids": list(dict.fromkeys(event_ids))})
    return set(result.scalars())


async def release(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> None:
    """Forget a claim in this transaction (its handler failed for good): a replay of the event takes effect."""
    await session.execute(delete(inbox).where(inbox.c.consumer == consumer, inbox.c.event_id == event_id))
