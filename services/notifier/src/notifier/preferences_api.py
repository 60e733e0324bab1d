"""Internal HTTP routes of preferences, unsubscribe links and bouncing addresses (notifier.preferences), called by
the gateway, which decides who may see or change what (managers of the account; anyone holding a mailed link)."""

import uuid
from typing import Annotated, Any

from litestar import Controller, delete, get, post, put
from litestar.params import Parameter
from pydantic import BaseModel, ConfigDict, StrictBool

from contracts.base import Email
from notifier import preferences
from servicekit.http import ProblemError
from servicekit.inputs import text
from servicekit.runtime import Service

ActorId = Annotated[uuid.UUID | None, Parameter(header="X-Actor-Id", required=False)]


class PreferencesInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reminders: StrictBool


class UnsubscribeInput(BaseModel):
    token: text(preferences.MAX_TOKEN, min_length=1)  # type: ignore[valid-type]


class BounceInput(BaseModel):
    recipient: Email
    reason: text(1000) = ""  # type: ignore[valid-type]


def _unknown_link() -> ProblemError:
    return ProblemError(404, "unknown_link", "Unknown link", "This unsubscribe link is not one of ours.")


def _links(service: Service) -> preferences.UnsubscribeLinks:
    links = preferences.links(service.settings)  # type: ignore[arg-type]
    if links is None:
        raise _unknown_link()
    return links


class PreferencesController(Controller):
    path = "/internal/accounts/{account_id:uuid}"
    tags = ["preferences"]

    @get("/preferences", summary="What the institution receives: reminders or not (transactional mail always)")
    async def preferences(self, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            return await preferences.preferences_of(session, account_id)

    @put("/preferences", summary="Opt in or out of reminders", status_code=200)
    async def choose(
        self, account_id: uuid.UUID, data: PreferencesInput, service: Service, actor: ActorId = None
    ) -> dict[str, Any]:
        async with service.db.transaction() as session:
            return await preferences.choose(
                session, account_id, reminders=data.reminders, by=str(actor) if actor else "internal"
            )

    @get("/bounces", summary="The account's addresses that bounce (hard bounces), to fix")
    async def bounces(self, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            return {"addresses": await preferences.bouncing_of(session, account_id)}

    @delete("/bounces/{address:str}", summary="Try the address again (it was fixed)", status_code=204)
    async def clear(self, account_id: uuid.UUID, address: str, service: Service) -> None:
        async with service.db.transaction() as session:
            if not await preferences.clear(session, account_id, address[:320]):
                raise ProblemError(404, "not_found", "Not found", "The account has no such bouncing address.")


class UnsubscribeController(Controller):
    path = "/internal/unsubscribe"
    tags = ["preferences"]

    @get("/{token:str}", summary="What a mailed unsubscribe link stops (404 unknown_link for any other token)")
    async def link(self, token: str, service: Service) -> dict[str, Any]:
        read = _links(service).read(token)
        if read is None:
            raise _unknown_link()
        return {"category": read[1]}

    @post("/", summary="Unsubscribe with a mailed link (idempotent)", status_code=200)
    async def unsubscribe(self, data: UnsubscribeInput, service: Service) -> dict[str, Any]:
        read = _links(service).read(data.token)
        if read is None:
            raise _unknown_link()
        account_id, category = read
        async with service.db.transaction() as session:
            await preferences.choose(session, account_id, reminders=False, by=preferences.BY_LINK)
        return {"category": category, "done": True}


class BouncesController(Controller):
    path = "/internal/bounces"
    tags = ["preferences"]

    @post("/", summary="Mark an address as bouncing (a provider's hard-bounce report)", status_code=200)
    async def mark(self, data: BounceInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            await preferences.mark_bouncing(
                session, data.recipient, data.reason or "hard bounce reported", source="report"
            )
        return {"address": data.recipient.lower()}


CONTROLLERS = [PreferencesController, UnsubscribeController, BouncesController]
