"""Internal HTTP API of the notifier, called by the gateway (OpenAPI at `/schema`): the delivery log."""

import uuid
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import Parameter

from notifier import delivery_log, preferences_api, webhooks_api
from servicekit.inputs import EmailInput, Offset, checked_query, text
from servicekit.runtime import Service


class DeliveriesController(Controller):
    path = "/internal/deliveries"
    tags = ["deliveries"]

    @get(
        "/",
        summary="The delivery log, newest first, and its counts per status (never a mail's variables)",
        description="`recipient`: the whole address, `recipient_prefix`: its beginning; both ignore case. "
        "`event_id`: every message one event caused; `template`: one message. "
        "`counts` are those of the filters other than `status`.",
    )
    async def log(
        self,
        service: Service,
        recipient: EmailInput | None = None,
        recipient_prefix: Annotated[text(320), Parameter(description="the address's beginning")] | None = None,
        status: delivery_log.Status | None = None,
        event_id: uuid.UUID | None = None,
        template: Annotated[text(100), Parameter(description="the message, e.g. password_reset")] | None = None,
        channel: delivery_log.Channel | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        filters = delivery_log.Filters(
            recipient=checked_query("recipient", recipient, EmailInput),
            recipient_prefix=checked_query("recipient_prefix", recipient_prefix, text(320)),
            status=status,
            event_id=event_id,
            template=checked_query("template", template, text(100)),
            channel=channel,
        )
        async with service.db.transaction() as session:
            return await delivery_log.page(session, filters, limit=limit, offset=offset)


CONTROLLERS = [DeliveriesController, *preferences_api.CONTROLLERS, *webhooks_api.WEBHOOK_CONTROLLERS]
