"""The organisers' back-office JSON API (docs/portal.md, "Back-office"): for now, the notifier's delivery log.

Organisers only: anyone else signed in gets `403 organisers_only` (a security event), anonymous callers 401."""

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Response, get
from litestar.params import Parameter

from gateway.openapi import BEARER, problems
from gateway.upstream import Upstream, relay
from servicekit.http import ProblemError
from servicekit.inputs import EmailInput, Offset, checked_query, text
from servicekit.logs import security_event


def ensure_organiser(identity: dict[str, Any], what: str) -> None:
    if not identity.get("is_organiser"):
        security_event("access_denied", outcome="organisers_only", user_id=identity.get("user_id"), path=what)
        raise ProblemError(403, "organisers_only", "Forbidden", "Only organisers can do this.")


class BackOfficeApi(Controller):
    path = "/api/v1/back-office"
    tags = ["back-office"]

    @get(
        "/deliveries",
        summary="The mails sent, being tried and given up, newest first, with counts per status (organisers)",
        description="`recipient` matches the whole address, `recipient_prefix` its beginning (both ignore case); "
        "`event_id` gives every message one event caused, `template` one message, `channel` one channel; "
        "`counts` are those of the filters other than `status`, `total` that of every filter. A mail's content and "
        "links are never shown; `last_error` is the mail server's refusal or the error of the last attempt.",
        responses=problems(401, 403),
        security=BEARER,
    )
    async def deliveries(
        self,
        identity: dict[str, Any],
        notifier: Upstream,
        recipient: EmailInput | None = None,
        recipient_prefix: Annotated[text(320), Parameter(description="the address's beginning")] | None = None,
        status: Literal["pending", "sent", "failed", "skipped"] | None = None,
        event_id: uuid.UUID | None = None,
        template: Annotated[text(100), Parameter(description="the message, e.g. password_reset")] | None = None,
        channel: Literal["email", "sms", "webhook"] | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/deliveries")
        filters = {
            "recipient": checked_query("recipient", recipient, EmailInput),
            "recipient_prefix": checked_query("recipient_prefix", recipient_prefix, text(320)),
            "status": status,
            "event_id": event_id,
            "template": checked_query("template", template, text(100)),
            "channel": channel,
        }
        query = urlencode(
            {name: value for name, value in filters.items() if value} | {"limit": limit, "offset": offset}
        )
        return relay(await notifier.call("GET", f"/internal/deliveries?{query}"))
