"""The organisers' catalogue back-office, JSON API (docs/portal.md, "Back-office: catalogue"): themes, sessions
(publish, reschedule, cancel, the animator's way into the room), series of sessions and permanent rooms (open,
join as moderator, close).

Organisers only: anyone else signed in gets `403 organisers_only` (gateway.backoffice.ensure_organiser, a security
event), anonymous callers 401; the catalogue is asked nothing for them. Each call relays the catalogue's internal
back-office API (docs/catalogue.md, "Internal API") with the organiser as `X-Actor-Id`; the catalogue keeps its
rules and says what to fix with a stable code (`nonexistent_local_time`, `start_in_past`, `price_locked`...).
Input is checked here first, as every route of the gateway does (servicekit.inputs): lengths, control characters,
ranges, a wall-clock time written `YYYY-MM-DDTHH:MM`."""

import uuid
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post, put
from litestar.params import Parameter
from pydantic import BaseModel, Field

from gateway import pagination
from gateway.backoffice import ensure_organiser
from gateway.idempotency import IDEMPOTENT
from gateway.openapi import BEARER, problems
from gateway.upstream import Upstream, relay
from servicekit.inputs import Offset, checked_query, text

PageSize = Annotated[int, Parameter(ge=1, le=200, description="how many at most (1 to 200)")]
LOCAL_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$"
LocalTime = Annotated[text(16, min_length=16), Field(pattern=LOCAL_TIME, description="wall clock, YYYY-MM-DDTHH:MM")]
TimeZone = Annotated[text(64, min_length=1), Field(description="an IANA time zone, e.g. Europe/Paris")]
Provider = Literal["bbb", "jitsi"]
Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
SessionStatus = Literal["draft", "published", "cancelled", "finished"]
# The catalogue's own bounds (catalogue.api), so that the edge refuses what the catalogue would.
MAX_TOKENS = 1000
MAX_CAPACITY = 100_000
ENTRY_CODE_LENGTH = 64
DESCRIPTION_LENGTH = 10_000  # a theme's or a session's description
NOTE_LENGTH = 2000  # a theme's prerequisites, a waiting-room message, a room's description
AGENDA_LENGTH = 5000


class ThemeInput(BaseModel):
    title: text(200, min_length=1)
    description: text(DESCRIPTION_LENGTH, multiline=True) = ""
    audience: text(200) = Field("", description="who it is for, e.g. secrétariats de collège")
    prerequisites: text(NOTE_LENGTH, multiline=True) = ""
    image_url: Annotated[text(500), Field(pattern=r"^https?://[^\s]+$")] | None = Field(None, description="a URL")
    tags: list[text(40, min_length=1)] = Field(default_factory=list, max_length=10)


class SessionTerms(BaseModel):
    """What a session and a series' template have in common."""

    title: text(200, min_length=1)
    description: text(DESCRIPTION_LENGTH, multiline=True) = ""
    animator: text(200) = ""
    timezone: TimeZone = "Europe/Paris"
    duration_minutes: int = Field(60, ge=15, le=480, description="15 to 480 minutes")
    capacity: int | None = Field(None, ge=1, le=MAX_CAPACITY, description="institutions; null: unlimited")
    price_tokens: int = Field(1, ge=1, le=MAX_TOKENS)
    premium_price_tokens: int | None = Field(
        None, ge=1, le=MAX_TOKENS, description="the price of privatising it; null: it cannot be privatised"
    )
    access: Literal["open", "code"] = Field("open", description="open to every verified account, or with a code")
    entry_code: text(ENTRY_CODE_LENGTH) | None = Field(
        None, description="write-only; required when access is code and none is set"
    )
    waiting_message: text(NOTE_LENGTH, multiline=True) = ""
    agenda: text(AGENDA_LENGTH, multiline=True) = ""
    provider: Provider | None = Field(None, description="the conferencing provider; the catalogue's default if null")


class SessionInput(SessionTerms):
    theme_id: uuid.UUID
    local_start: LocalTime
    local_end: LocalTime | None = Field(None, description="sets the duration instead of duration_minutes")


class RecurrenceInput(BaseModel):
    frequency: Literal["daily", "weekly", "monthly"]
    interval: int = Field(1, ge=1, le=99)
    weekdays: list[Weekday] = Field(default_factory=list, max_length=7)
    monthly_position: Literal[1, 2, 3, 4, -1] | None = Field(None, description="the n-th weekday, -1 the last")
    count: int | None = Field(None, ge=1, le=500)
    until: date | None = Field(None, description="the last day of the series (local), included")


class SeriesInput(BaseModel):
    theme_id: uuid.UUID = Field(description="on a change, the series keeps its theme")
    recurrence: RecurrenceInput
    local_start: LocalTime = Field(description="the first session's wall clock, in the template's time zone")
    template: SessionTerms


class Reschedule(BaseModel):
    local_start: LocalTime
    timezone: TimeZone = "Europe/Paris"
    duration_minutes: int | None = Field(None, ge=15, le=480)


class Cancellation(BaseModel):
    reason: text(500, min_length=1, multiline=True) = Field(description="told to the enrolled institutions")


class RoomInput(BaseModel):
    name: text(200, min_length=1)
    description: text(NOTE_LENGTH, multiline=True) = ""
    provider: Provider | None = None
    entry_code: text(ENTRY_CODE_LENGTH) | None = Field(
        None, description="asked of everyone who joins; none: open to the link"
    )


class JoinInput(BaseModel):
    name: text(200, min_length=1) = Field(description="the name the others in the room see")


def query_of(**values: Any) -> str:
    wanted = urlencode({name: value for name, value in values.items() if value is not None and value != ""})
    return f"?{wanted}" if wanted else ""


def body_of(data: BaseModel) -> dict[str, Any]:
    """What the client sent, as sent: a field left out takes the catalogue's default."""
    return data.model_dump(mode="json", exclude_unset=True)


BACK_OFFICE = "/internal/back-office"


class BackOfficeCatalogueApi(Controller):
    path = "/api/v1/back-office"
    tags = ["back-office"]
    security = BEARER

    async def _relay(
        self, identity: dict[str, Any], catalogue: Upstream, method: str, path: str, body: Any = None
    ) -> Response[Any]:
        ensure_organiser(identity, f"/api/v1/back-office{path.split('?')[0]}")
        return relay(await catalogue.call(method, BACK_OFFICE + path, body, actor=identity["user_id"]))

    # -- themes --------------------------------------------------------------------------------------------------

    @get(
        "/themes",
        summary="Every theme, archived ones too unless a status is asked (organisers)",
        responses=problems(401, 403),
    )
    async def themes(
        self, identity: dict[str, Any], catalogue: Upstream, status: Literal["active", "archived"] | None = None
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "GET", "/themes" + query_of(status=status))

    @post(
        "/themes",
        status_code=201,
        summary="Create a theme (organisers)",
        responses=problems(401, 403, 413),
        **IDEMPOTENT,
    )
    async def create_theme(self, data: ThemeInput, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", "/themes", body_of(data))

    @put("/themes/{theme_id:uuid}", summary="Change a theme (organisers)", responses=problems(401, 403, 404, 413))
    async def change_theme(
        self, theme_id: uuid.UUID, data: ThemeInput, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "PUT", f"/themes/{theme_id}", body_of(data))

    @post(
        "/themes/{theme_id:uuid}/archive",
        status_code=200,
        summary="Archive a theme: no new session on it, its sessions stay (organisers)",
        responses=problems(401, 403, 404),
    )
    async def archive_theme(self, theme_id: uuid.UUID, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/themes/{theme_id}/archive", {})

    @post(
        "/themes/{theme_id:uuid}/restore",
        status_code=200,
        summary="Make an archived theme active again (organisers)",
        responses=problems(401, 403, 404),
    )
    async def restore_theme(self, theme_id: uuid.UUID, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/themes/{theme_id}/restore", {})

    # -- sessions ------------------------------------------------------------------------------------------------

    @get(
        "/sessions",
        summary="Sessions of every status, soonest first (organisers)",
        description="`from` and `to` bound the start's day in Europe/Paris (both included); `q` matches a part of "
        "the title.",
        responses=problems(401, 403),
    )
    async def sessions(
        self,
        request: Request[Any, Any, Any],
        identity: dict[str, Any],
        catalogue: Upstream,
        starts_from: Annotated[date | None, Parameter(query="from", description="first day")] = None,
        starts_to: Annotated[date | None, Parameter(query="to", description="last day")] = None,
        status: SessionStatus | None = None,
        theme_id: uuid.UUID | None = None,
        series_id: uuid.UUID | None = None,
        q: Annotated[text(200), Parameter(description="a part of the title")] | None = None,
        limit: PageSize = 50,
        offset: Offset = 0,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/sessions")
        query = query_of(
            status=status,
            theme_id=theme_id,
            series_id=series_id,
            q=checked_query("q", q, text(200)),
            limit=limit,
            offset=offset,
            **{"from": starts_from, "to": starts_to},
        )
        answer = await catalogue.call("GET", f"{BACK_OFFICE}/sessions{query}", actor=identity["user_id"])
        relayed = relay(answer)
        if answer.status_code == 200 and (link := pagination.links(request, answer.json()["total"], limit, offset)):
            relayed.headers["Link"] = link
        return relayed

    @get(
        "/sessions/{session_id:uuid}",
        summary="A session, whatever its status (organisers)",
        responses=problems(401, 403, 404),
    )
    async def session(self, session_id: uuid.UUID, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "GET", f"/sessions/{session_id}")

    @post(
        "/sessions",
        status_code=201,
        summary="Create a session, as a draft (organisers)",
        description="The start is a wall clock in the session's zone: `400 unknown_time_zone`, "
        "`nonexistent_local_time` (skipped by the clocks), `start_in_past`, `ends_before_start`; "
        "`409 theme_archived`, `400 unknown_theme`, `entry_code_required`.",
        responses=problems(401, 403, 409, 413),
        **IDEMPOTENT,
    )
    async def create_session(self, data: SessionInput, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", "/sessions", body_of(data))

    @put(
        "/sessions/{session_id:uuid}",
        summary="Change a session's terms and time (organisers); a series occurrence leaves its series",
        description="Once an institution is enrolled: `409 price_locked`, `duration_locked`, "
        "`capacity_below_enrolments`; a cancelled or finished session: `409 session_cancelled`, `session_finished`.",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def change_session(
        self, session_id: uuid.UUID, data: SessionInput, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "PUT", f"/sessions/{session_id}", body_of(data))

    @post(
        "/sessions/{session_id:uuid}/publish",
        status_code=200,
        summary="Publish a draft session: it appears in the planning (organisers)",
        description="`409 not_draft` when it is published already.",
        responses=problems(401, 403, 404, 409),
    )
    async def publish_session(
        self, session_id: uuid.UUID, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/sessions/{session_id}/publish", {})

    @post(
        "/sessions/{session_id:uuid}/reschedule",
        status_code=200,
        summary="Move a session; its enrolments keep (organisers)",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def reschedule_session(
        self, session_id: uuid.UUID, data: Reschedule, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/sessions/{session_id}/reschedule", body_of(data))

    @post(
        "/sessions/{session_id:uuid}/cancel",
        status_code=200,
        summary="Cancel a session with a reason; enrolled institutions are refunded and told (organisers)",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def cancel_session(
        self, session_id: uuid.UUID, data: Cancellation, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/sessions/{session_id}/cancel", body_of(data))

    @post(
        "/sessions/{session_id:uuid}/join",
        status_code=200,
        summary="The animator's way into a published session's room, as its moderator (organisers)",
        description='Answers `{"url", "pin"}`: a fresh URL of the conferencing provider for that name, and the '
        "dial-in PIN. `409 room_not_open` outside the room's window (it opens 1 hour before the start and closes "
        "after the end plus a grace); `404 not_found` for a session that is unknown or not published.",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def join_session(
        self, session_id: uuid.UUID, data: JoinInput, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/sessions/{session_id}/join", body_of(data))

    # -- series --------------------------------------------------------------------------------------------------

    @get("/series", summary="Every series of sessions (organisers)", responses=problems(401, 403))
    async def every_series(self, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "GET", "/series")

    @get(
        "/series/{series_id:uuid}",
        summary="A series: its rule, its template and its occurrences (organisers)",
        responses=problems(401, 403, 404),
    )
    async def one_series(self, series_id: uuid.UUID, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "GET", f"/series/{series_id}")

    @post(
        "/series",
        status_code=201,
        summary="Create a series and its occurrences, as drafts (organisers)",
        description="The rule: daily, weekly on `weekdays`, or monthly (on the first start's day, or the "
        "`monthly_position`-th of `weekdays[0]`), every `interval`, for `count` sessions or `until` a day. Its "
        "refusals are `400 series_*` (e.g. `series_count_or_until`), and those of a session.",
        responses=problems(401, 403, 409, 413),
        **IDEMPOTENT,
    )
    async def create_series(self, data: SeriesInput, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", "/series", body_of(data))

    @put(
        "/series/{series_id:uuid}",
        summary="Change a series' rule and template (organisers)",
        description="Its occurrences still to come follow, but those edited on their own; enrolled ones keep "
        "their time.",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def change_series(
        self, series_id: uuid.UUID, data: SeriesInput, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "PUT", f"/series/{series_id}", body_of(data))

    @post(
        "/series/{series_id:uuid}/publish",
        status_code=200,
        summary="Publish every draft occurrence of a series still to come (organisers)",
        responses=problems(401, 403, 404, 409),
    )
    async def publish_series(
        self, series_id: uuid.UUID, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/series/{series_id}/publish", {})

    @post(
        "/series/{series_id:uuid}/cancel",
        status_code=200,
        summary="Cancel every occurrence of a series still to come, with a reason (organisers)",
        responses=problems(401, 403, 404, 409, 413),
    )
    async def cancel_series(
        self, series_id: uuid.UUID, data: Cancellation, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/series/{series_id}/cancel", body_of(data))

    # -- permanent rooms -----------------------------------------------------------------------------------------

    @get("/rooms", summary="The permanent rooms, open and closed (organisers)", responses=problems(401, 403))
    async def rooms(self, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "GET", "/rooms")

    @post(
        "/rooms",
        status_code=201,
        summary="Open a permanent room: a perpetual link (`/rooms/{link_token}`) and a dial-in PIN (organisers)",
        responses=problems(401, 403, 413),
        **IDEMPOTENT,
    )
    async def open_room(self, data: RoomInput, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", "/rooms", body_of(data))

    @post(
        "/rooms/{room_id:uuid}/join",
        status_code=200,
        summary="An organiser's way into an open permanent room, as its moderator, no entry code asked (organisers)",
        description='Answers `{"url", "pin"}`: a fresh URL of the conferencing provider for that name, and the '
        "dial-in PIN. `404 not_found` for a room that is closed or unknown.",
        responses=problems(401, 403, 404, 413),
    )
    async def join_room(
        self, room_id: uuid.UUID, data: JoinInput, identity: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/rooms/{room_id}/join", body_of(data))

    @post(
        "/rooms/{room_id:uuid}/close",
        status_code=200,
        summary="Close a permanent room: its link no longer opens it (organisers)",
        responses=problems(401, 403, 404, 409),
    )
    async def close_room(self, room_id: uuid.UUID, identity: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._relay(identity, catalogue, "POST", f"/rooms/{room_id}/close", {})
