"""The delivery log: what was mailed to whom, when, and how it went — for organisers answering "I did not get
the mail", and for a person looking at their own recent mails (both through the gateway).

What it shows of a delivery is its metadata only. Never its `context`: until a mail is sent (or given up)
the context holds the variables of the template, a link's single-use token among them. `last_error` is the
text the delivery loop recorded (`service._record_failure`: the exception's type and message, SMTP replies
in practice), cut to LAST_ERROR_SHOWN characters.

Filters: `recipient` matches the whole address (or number, or webhook endpoint id), `recipient_prefix` its
beginning, both ignoring case (one index serves both, `deliveries_recipient`); `event_id` every message an event
caused; `template` one message; `channel` email, sms or webhook; `status` one of STATUSES. The counts per status
are those of the other filters, so that a page can show each status's count beside its filter."""

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import deliveries

STATUSES = ("pending", "sent", "failed", "skipped")  # skipped: a reminder the institution opted out of
Status = Literal["pending", "sent", "failed", "skipped"]
Channel = Literal["email", "sms", "webhook"]
LAST_ERROR_SHOWN = 300
SHOWN = (
    deliveries.c.id,
    deliveries.c.event_id,
    deliveries.c.channel,
    deliveries.c.recipient,
    deliveries.c.template,
    deliveries.c.language,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.response_status,
    func.left(deliveries.c.last_error, LAST_ERROR_SHOWN).label("last_error"),
    deliveries.c.created_at,
    deliveries.c.sent_at,
    deliveries.c.next_attempt_at,
)


@dataclass(frozen=True)
class Filters:
    recipient: str | None = None
    recipient_prefix: str | None = None
    status: Status | None = None
    event_id: uuid.UUID | None = None  # every message one event caused
    template: str | None = None
    channel: Channel | None = None

    def but_status(self) -> ColumnElement[bool]:
        address = func.lower(deliveries.c.recipient)
        condition: ColumnElement[bool] = true()
        if self.recipient is not None:
            condition = condition & (address == self.recipient.lower())
        if self.recipient_prefix:
            condition = condition & address.startswith(self.recipient_prefix.lower(), autoescape=True)
        if self.event_id is not None:
            condition = condition & (deliveries.c.event_id == self.event_id)
        if self.template:
            condition = condition & (deliveries.c.template == self.template)
        if self.channel:
            condition = condition & (deliveries.c.channel == self.channel)
        return condition


async def page(session: AsyncSession, filters: Filters, *, limit: int, offset: int) -> dict[str, Any]:
    """A page of the log, newest first, and the counts per status of the other filters."""
    but_status = filters.but_status()
    selected = but_status if filters.status is None else but_status & (deliveries.c.status == filters.status)
    rows = await session.execute(
        select(*SHOWN)
        .where(selected)
        .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
        .limit(limit)
        .offset(offset)
    )
    counted = await session.execute(
        select(deliveries.c.status, func.count()).where(but_status).group_by(deliveries.c.status)
    )
    counts = dict.fromkeys(STATUSES, 0) | {status: count for status, count in counted.tuples()}
    return {
        "deliveries": [row._asdict() for row in rows],
        "counts": counts,
        "total": counts[filters.status] if filters.status else sum(counts.values()),
        "limit": limit,
        "offset": offset,
    }
