"""The public side of the catalogue (docs/api.md, "Planning"): the published planning by month with its filters,
one session, the active themes, and the planning as an iCalendar feed.

Anyone may read them, signed in or not: they need no identity, so they are rate-limited per client address as
reads (gateway.limits). Each query parameter is checked here before the catalogue is asked (a month, a time zone
the machine's database knows, a theme's id, short texts without control characters), so that bad input is a 400
problem naming the parameter, never a failure further in. The catalogue's answers pass through as they are: it
shows published, cancelled and finished sessions only, and a draft is `404 not_found` there as an unknown id is.
Without the catalogue the routes answer `503 upstream_unavailable`."""

import re
import uuid
from collections.abc import Mapping
from functools import cache, partial
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, available_timezones

from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from gateway import i18n, pagination
from gateway.openapi import problems
from gateway.upstream import Upstream, relay
from servicekit.http import ProblemError
from servicekit.inputs import checked_query, text
from servicekit.read_cache import ReadCache

# The planning is the same for every visitor: its answers are kept a moment (GATEWAY_PLANNING_CACHE_SECONDS, set in
# main.py) and visitors who ask together share one call (servicekit.read_cache).
PLANNING_ANSWERS = ReadCache(ttl=2.0)
CATALOGUE_PAGE = 200  # the catalogue gives at most this many sessions a call; a larger page is asked in several
MONTH = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"  # YYYY-MM, years 2000 to 2099
MONTH_FORMAT = re.compile(MONTH)
MAX_ZONE_NAME = 64
CALENDAR = "text/calendar"
SearchText = text(200)

Month = Annotated[str, Parameter(pattern=MONTH, description="a month in the viewer's zone, YYYY-MM")]
ZoneName = Annotated[
    str, Parameter(max_length=MAX_ZONE_NAME, description="the viewer's IANA time zone (default Europe/Paris)")
]
Audience = Annotated[str, Parameter(max_length=200, description="part of the theme's audience, e.g. Direction")]
Search = Annotated[str, Parameter(max_length=200, description="words of the title, description or animator")]


@cache
def _zone_names() -> frozenset[str]:
    # "localtime" may sit in a system zone directory as a link to the machine's own setting: not an IANA zone.
    return frozenset(available_timezones() - {"localtime"})


def known_zone(name: str) -> bool:
    return 0 < len(name) <= MAX_ZONE_NAME and name in _zone_names()


def zone_or_refusal(name: str | None) -> ZoneInfo:
    """The viewer's zone: `name` if it is an IANA zone, the gateway's own when absent; 400 otherwise."""
    if name is None:
        return i18n.timezone
    if not known_zone(name):
        detail = "Query parameter tz: not an IANA time zone (such as Europe/Paris)"
        raise ProblemError(
            400,
            "unknown_time_zone",
            "Unknown time zone",
            detail,
            field="tz",
            errors=[{"key": "tz", "source": "query", "message": detail}],
        )
    return ZoneInfo(name)


def checked_month(month: str | None) -> str | None:
    """A month as YYYY-MM (years 2000 to 2099); 400 naming `month` otherwise."""
    if month is None or MONTH_FORMAT.fullmatch(month):
        return month
    detail = "Query parameter month: a month as YYYY-MM, such as 2027-03"
    errors = [{"key": "month", "source": "query", "message": detail}]
    raise ProblemError(400, "invalid_request", "Invalid request", detail, field="month", errors=errors)


def planning_query(filters: Mapping[str, Any]) -> str:
    """The catalogue's query string for checked filters (None and False left out)."""
    values = {name: value for name, value in filters.items() if value is not None and value is not False}
    return urlencode({name: "true" if value is True else str(value) for name, value in values.items()})


async def planning_sessions(
    catalogue: Upstream, filters: Mapping[str, Any], limit: int, offset: int
) -> tuple[list[Any], int] | Response[Any]:
    """(sessions, total) of one page of the planning, asked in calls of at most CATALOGUE_PAGE; or the catalogue's
    refusal as the answer to give."""
    items: list[Any] = []
    while True:
        size = min(CATALOGUE_PAGE, limit - len(items))
        query = planning_query({**filters, "offset": offset + len(items), "limit": size})
        answer, listed = await PLANNING_ANSWERS.get(query, partial(_planning_answer, catalogue, query))
        if listed is None:
            return relay(answer)
        items += listed["items"]
        total: int = listed["total"]
        if len(items) >= limit or not listed["items"] or offset + len(items) >= total:
            return items, total


async def _planning_answer(catalogue: Upstream, query: str) -> tuple[Any, Any]:
    """The catalogue's answer to a planning query, and its items when it gave them."""
    answer = await catalogue.call("GET", f"/internal/planning?{query}")
    return answer, answer.json() if answer.status_code == 200 else None


def calendar_answer(answer: Any, file_name: str, disposition: str = "inline") -> Response[Any]:
    """The catalogue's calendar as ours (its problem otherwise), named for a download: `inline` for a feed one
    subscribes to, `attachment` for a file one adds."""
    if answer.status_code != 200:
        return relay(answer)
    headers = {"Content-Disposition": f'{disposition}; filename="{file_name}"'}
    return Response(answer.content, media_type=CALENDAR, headers=headers)  # Litestar adds "; charset=utf-8"


class PlanningApi(Controller):
    path = "/api/v1"
    tags = ["planning"]

    @get(
        "/planning",
        summary="The published planning: sessions of a month (or from now on), soonest first, with filters",
        description="Anyone, signed in or not. `month` is a month of the viewer's zone `tz` (an IANA name, "
        "Europe/Paris when absent); without `month`, the sessions still to come. `theme_id` one theme, `audience` "
        "part of the theme's audience, `q` words of the title, description or animator (their beginnings), "
        "`available=true` only sessions with places left. Each item is a session as `GET "
        "/api/v1/planning/sessions/{session_id}` gives it: times in UTC (`starts_at`, `ends_at`) and in the "
        "session's own zone (`local_start`, `local_end`, `timezone`); `places_left` null is unlimited. Cancelled "
        "sessions still to come are listed, with their `status`.",
        responses=problems(404, 429),
    )
    async def planning(
        self,
        request: Request[Any, Any, Any],
        catalogue: Upstream,
        month: Month | None = None,
        tz: ZoneName | None = None,
        theme_id: uuid.UUID | None = None,
        audience: Audience | None = None,
        q: Search | None = None,
        available: bool = False,
        limit: pagination.Limit = pagination.DEFAULT_LIMIT,
        offset: pagination.Offset = 0,
    ) -> Response[Any]:
        filters = {
            "month": checked_month(month),
            "tz": zone_or_refusal(tz).key,
            "theme_id": theme_id,
            "audience": checked_query("audience", audience, SearchText) or None,
            "q": checked_query("q", q, SearchText) or None,
            "available": available,
        }
        listed = await planning_sessions(catalogue, filters, limit, offset)
        if isinstance(listed, Response):
            return listed
        items, total = listed
        return pagination.page(request, {"items": items}, total, limit, offset)

    @get(
        "/planning/sessions/{session_id:uuid}",
        summary="One session of the planning: its terms, times and places left",
        description="Anyone. Published, cancelled (`cancel_reason`) and finished sessions; a session not published "
        "yet is `404 not_found`, as an unknown id.",
        responses=problems(404, 429),
    )
    async def session(self, session_id: uuid.UUID, catalogue: Upstream) -> Response[Any]:
        return relay(await catalogue.call("GET", f"/internal/sessions/{session_id}"))

    @get(
        "/themes",
        summary="The active themes, by title, each with its number of sessions to come",
        responses=problems(429),
    )
    async def themes(self, catalogue: Upstream) -> Response[Any]:
        return relay(await catalogue.call("GET", "/internal/themes"))

    @get(
        "/planning.ics",
        media_type=CALENDAR,
        summary="The published planning as an iCalendar feed (RFC 5545), to subscribe to",
        description="Anyone. From 31 days ago on; one event per session, its UID `<session id>@visiopass` (stable), "
        "times in the session's zone (TZID, with its VTIMEZONE), SEQUENCE raised by each reschedule, "
        "STATUS:CANCELLED for a cancelled session. `theme_id`: one theme's sessions only.",
        responses=problems(429),
    )
    async def calendar(self, catalogue: Upstream, theme_id: uuid.UUID | None = None) -> Response[Any]:
        path = "/internal/planning.ics" + (f"?{urlencode({'theme_id': theme_id})}" if theme_id else "")
        return calendar_answer(await catalogue.call("GET", path), "visiopass-planning.ics")
