"""Permanent rooms ("Salles permanentes", docs/portal.md, "Back-office: catalogue"): the organisers' list of them, with
the form to open one, closing one and joining one as its moderator (gateway.back_office_catalogue); and the public
page of a room's perpetual link (`/rooms/{link_token}`), where anyone holding the link joins it."""

import re
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway.back_office_catalogue import catalogue_page, done, items_of, one, read
from gateway.back_office_catalogue_api import BACK_OFFICE
from gateway.back_office_catalogue_forms import (
    ROOM_FIELDS,
    JoinForm,
    RoomForm,
    problem_of,
    refusal_errors,
    refusal_text,
)
from gateway.back_office_pages import organiser
from gateway.i18n import N_, gettext
from gateway.limits import RATE_LIMIT
from gateway.portal import FORM, clip, form_status, page
from gateway.upstream import Upstream

LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


class BackOfficeRoomPages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    @get("/rooms")
    async def rooms(self, request: Request[Any, Any, Any], organiser: dict[str, Any], catalogue: Upstream) -> Template:
        return await self._rooms_page(request, catalogue, organiser)

    @post("/rooms")
    async def open_room(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[RoomForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        body, errors = data.checked()
        if errors:
            return await self._rooms_page(request, catalogue, organiser, data, errors, 400)
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/rooms", body, actor=organiser["user_id"])
        if answer.status_code in (200, 201):
            return Redirect(f"/back-office/rooms?done=opened#room-{answer.json()['id']}", status_code=303)
        errors = refusal_errors(answer, ROOM_FIELDS)
        return await self._rooms_page(request, catalogue, organiser, data, errors, form_status(answer.status_code))

    @post("/rooms/{room_id:uuid}/close")
    async def close_room(
        self, request: Request[Any, Any, Any], room_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/rooms/{room_id}/close", {}, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done("/back-office/rooms", "closed")
        errors = refusal_errors(answer)
        return await self._rooms_page(
            request, catalogue, organiser, RoomForm(), errors, form_status(answer.status_code)
        )

    @post("/rooms/{room_id:uuid}/join")
    async def join_room(
        self,
        request: Request[Any, Any, Any],
        room_id: uuid.UUID,
        data: Annotated[JoinForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        """An organiser into an open permanent room, as its moderator (no entry code asked): a redirect (303) to a
        fresh URL of the conferencing provider, or the rooms again saying why not, next to that room's form."""
        body, errors = data.checked()
        field = f"join_name-{room_id}"  # the name field of that room's form (each room has one)
        if errors:
            errors = {field: errors["name"]}
            status_code = 400
        else:
            path = f"{BACK_OFFICE}/rooms/{room_id}/join"
            answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
            if answer.status_code == 200:
                return Redirect(answer.json()["url"], status_code=303)
            problem = problem_of(answer)
            if problem.get("code") == "not_found":
                errors = {"_form": gettext(N_("Cette salle est fermée : on n'y entre plus."))}
            else:
                errors = {"_form": refusal_text(problem)}
            status_code = form_status(answer.status_code)
        joining = {str(room_id): data.kept().name}
        return await self._rooms_page(request, catalogue, organiser, None, errors, status_code, joining)

    async def _rooms_page(
        self,
        request: Request[Any, Any, Any],
        catalogue: Upstream,
        organiser: dict[str, Any],
        form: RoomForm | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
        joining: dict[str, str] | None = None,
    ) -> Template:
        """The rooms, the form to open one; each open room's form to join it carries the organiser's name, or what
        was typed in the one `joining` ({room id: name})."""
        rooms = items_of(await read(catalogue, f"{BACK_OFFICE}/rooms", organiser["user_id"]))
        return catalogue_page(
            "back_office_catalogue_rooms.html",
            organiser,
            status_code,
            rooms=rooms,
            site=str(request.base_url).rstrip("/"),
            form=(form or RoomForm()).model_copy(update={"entry_code": ""}),
            errors=errors or {},
            join_name=JoinForm.of(organiser).name,
            joining=joining or {},
        )


# -- the public page of a permanent room ---------------------------------------------------------------------------


class JoinRoomForm(BaseModel):
    name: str = ""
    entry_code: str = ""


class RoomPages(Controller):
    """`/rooms/{link_token}`: a permanent room's perpetual link. Anyone holding the link sees the room's name, its
    description and how to join by phone, types their name (and the entry code when the room has one), and is sent
    to a fresh URL of the conferencing provider. The link is the secret: joining is rate-limited per address like
    every form that guesses a secret (`login`), and a wrong code or an unknown link says no more than that."""

    path = "/rooms"
    include_in_schema = False

    @get("/{link_token:str}")
    async def room(self, link_token: str, visitor: dict[str, Any] | None, catalogue: Upstream) -> Template:
        room = await self._room(catalogue, link_token)
        return page("catalogue_room.html", visitor, room=room, link_token=link_token, form=JoinRoomForm(), errors={})

    @post("/{link_token:str}", opt=RATE_LIMIT("login"))
    async def join(
        self,
        link_token: str,
        data: Annotated[JoinRoomForm, FORM],
        visitor: dict[str, Any] | None,
        catalogue: Upstream,
    ) -> Response[Any]:
        room = await self._room(catalogue, link_token)
        name = clip(data.name).strip()
        errors = {}
        if not name or len(name) > 200:
            errors["name"] = gettext(N_("Indiquez votre nom : les autres participants le verront."))
        if room.get("entry_code") and not data.entry_code.strip():
            errors["entry_code"] = gettext(N_("Saisissez le code d'accès de la salle."))
        if not errors:
            body = {"name": name, "entry_code": clip(data.entry_code).strip() or None}
            answer = await catalogue.call("POST", f"/internal/rooms/{link_token}/join", body)
            if answer.status_code == 200:
                return Redirect(answer.json()["url"], status_code=303)
            problem = problem_of(answer)
            if problem.get("code") == "wrong_entry_code":
                errors["entry_code"] = gettext(N_("Ce code d'accès n'est pas le bon."))
            else:
                errors["_form"] = refusal_text(problem)
            status_code = form_status(answer.status_code)
        else:
            status_code = 400
        typed = JoinRoomForm(name=name[:200])
        return page(
            "catalogue_room.html", visitor, status_code, room=room, link_token=link_token, form=typed, errors=errors
        )

    async def _room(self, catalogue: Upstream, link_token: str) -> dict[str, Any]:
        if not LINK_TOKEN.fullmatch(link_token):
            raise NotFoundException
        return await one(catalogue, f"/internal/rooms/{link_token}", None, missing=(404, 410))
