"""Idempotent consumers: the processed event id is written in the same transaction as the handler's effects."""

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import inbox


async def claim(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> bool:
    """True the first time `consumer` sees `event_id`; False for a redelivery (whose effects are already in)."""
    result = await session.execute(
        insert(inbox).values(consumer=consumer, event_id=event_id).on_conflict_do_nothing().returning(inbox.c.event_id)
    )
    return result.first() is not None
