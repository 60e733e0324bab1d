"""The public planning pages (docs/portal.md, "Planning"), for anyone, signed in or not.

- `/planning`: a month of the published planning, as a calendar (a table: weeks in rows, days Monday first in
  columns, each session in its day's cell; on a narrow screen the style sheet turns it into a list of the days that
  have sessions) or as a list (`view=list`, 20 sessions a page); filters by theme, audience, words and places left;
  links to the months before and after, the filters kept.
- `/planning/sessions/{id}`: one session: its theme, description, date and time, duration, animator, places left,
  price, whether it can be privatised, agenda; a banner when it is cancelled; a link to add it to one's calendar
  (`.../calendar.ics`, the session's event alone) and one to subscribe to the whole planning (`/planning.ics`).

Times are shown in the viewer's zone: the `tz` query parameter (an IANA name, offered as a list of the zones of
French-speaking places), else the gateway's own zone (`GATEWAY_TIMEZONE`); the page says which. A session whose
own zone is another is also shown in its own zone. The month is a month of the viewer's zone (the catalogue picks
the sessions by it). The pages only read (GET forms, no CSRF needed) and ask the catalogue the same questions as
the JSON API (gateway.catalogue); what a visitor types in the query is checked first and a wrong value is shown
next to its field (400), never sent on."""

import calendar
import math
import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import babel.dates
from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from gateway import i18n
from gateway.catalogue import MONTH_FORMAT, calendar_answer, known_zone, planning_sessions
from gateway.i18n import N_, gettext, ngettext
from gateway.member_pages import page_number
from gateway.portal import page
from gateway.upstream import Upstream
from gateway.web import current_account
from servicekit.http import ProblemError

PAGE_SIZE = 20
GRID_LIMIT = 1000  # sessions of one month drawn in the calendar at most (the catalogue is asked 200 at a time)
MAX_TEXT = 200
# The zones offered in the picker: France and its overseas, the French-speaking neighbours, UTC. Any other IANA
# zone given in the query is shown too.
ZONES = (
    "Europe/Paris",
    "Europe/Brussels",
    "Europe/Luxembourg",
    "Europe/Zurich",
    "Europe/London",
    "America/Guadeloupe",
    "America/Martinique",
    "America/Cayenne",
    "America/Miquelon",
    "America/Toronto",
    "Indian/Reunion",
    "Indian/Mayotte",
    "Pacific/Noumea",
    "Pacific/Tahiti",
    "Pacific/Wallis",
    "Africa/Casablanca",
    "Africa/Algiers",
    "Africa/Tunis",
    "Africa/Dakar",
    "Africa/Abidjan",
    "UTC",
)


@dataclass(frozen=True)
class Filters:
    """What the planning page shows, as checked from its query."""

    month: date  # its first day
    zone: ZoneInfo
    theme_id: str | None = None
    audience: str = ""
    q: str = ""
    available: bool = False
    view: str = "grid"  # or "list"
    page: int = 1

    def url(self, **changes: Any) -> str:
        """This page of the planning, or another (`changes`), with only what differs from the defaults."""
        shown = replace(self, **changes)
        query: dict[str, str] = {"month": f"{shown.month:%Y-%m}"}
        if shown.zone.key != i18n.timezone.key:
            query["tz"] = shown.zone.key
        if shown.theme_id:
            query["theme_id"] = shown.theme_id
        if shown.audience:
            query["audience"] = shown.audience
        if shown.q:
            query["q"] = shown.q
        if shown.available:
            query["available"] = "1"
        if shown.view != "grid":
            query["view"] = shown.view
        if shown.page > 1:
            query["page"] = str(shown.page)
        return f"/planning?{urlencode(query)}"

    def catalogue_filters(self) -> dict[str, Any]:
        return {
            "month": f"{self.month:%Y-%m}",
            "tz": self.zone.key,
            "theme_id": self.theme_id,
            "audience": self.audience or None,
            "q": self.q or None,
            "available": self.available,
        }


def viewer_zone(value: str | None) -> tuple[ZoneInfo, str | None]:
    """The zone asked for (the gateway's own when none), and the error to show when it is not one."""
    if not value:
        return i18n.timezone, None
    if not known_zone(value):
        return i18n.timezone, gettext(N_("Choisissez un fuseau horaire de la liste."))
    return ZoneInfo(value), None


def _checked_text(value: str | None) -> tuple[str, str | None]:
    text = (value or "").strip()
    if len(text) > MAX_TEXT or any(unicodedata.category(character) in ("Cc", "Cs") for character in text):
        error = gettext(N_("%(max)d caractères au plus, sans caractère de contrôle.")) % {"max": MAX_TEXT}
        return "", error
    return text, None


def parse_filters(query: dict[str, str | None], now: datetime) -> tuple[Filters, dict[str, str]]:
    """The filters of the page's query, and an error per field that is wrong (that field then left out)."""
    errors: dict[str, str] = {}
    zone, error = viewer_zone(query.get("tz"))
    if error:
        errors["tz"] = error
    month = now.astimezone(zone).date().replace(day=1)
    if query.get("month"):
        if MONTH_FORMAT.fullmatch(query["month"] or ""):
            month = date(int(query["month"][:4]), int(query["month"][5:7]), 1)  # type: ignore[index]
        else:
            errors["month"] = gettext(N_("Indiquez un mois sous la forme AAAA-MM, par exemple 2027-03."))
    theme_id = query.get("theme_id") or None
    if theme_id is not None:
        try:
            theme_id = str(uuid.UUID(theme_id))
        except ValueError:
            errors["theme_id"] = gettext(N_("Choisissez un thème de la liste."))
            theme_id = None
    audience, error = _checked_text(query.get("audience"))
    if error:
        errors["audience"] = error
    words, error = _checked_text(query.get("q"))
    if error:
        errors["q"] = error
    filters = Filters(
        month=month,
        zone=zone,
        theme_id=theme_id,
        audience=audience,
        q=words,
        available=query.get("available") in ("1", "true", "on"),
        view="list" if query.get("view") == "list" else "grid",
        page=page_number(query.get("page") or 1),
    )
    return filters, errors


# -- what a session shows -----------------------------------------------------------------------------------------


def _language() -> str:
    return i18n.current_language.get()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def time_label(moment: datetime) -> str:
    return babel.dates.format_time(moment, "short", locale=_language())


def day_label(day: date | datetime) -> str:
    return babel.dates.format_date(day, "full", locale=_language())


def month_label(month: date) -> str:
    label = babel.dates.format_date(month, "LLLL yyyy", locale=_language())
    return label[:1].upper() + label[1:]


def zone_label(zone: ZoneInfo, when: datetime) -> str:
    """`Europe/Paris (UTC+01:00)`: the name, and its offset at that moment."""
    offset = babel.dates.get_timezone_gmt(when.astimezone(zone), "long", locale="en").replace("GMT", "UTC")
    return f"{zone.key} ({offset})"


def duration_label(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return gettext(N_("%(minutes)d min")) % {"minutes": rest}
    if not rest:
        return gettext(N_("%(hours)d h")) % {"hours": hours}
    return gettext(N_("%(hours)d h %(minutes)02d")) % {"hours": hours, "minutes": rest}


def places_label(session: dict[str, Any]) -> str:
    left = session.get("places_left")
    if left is None:
        return gettext(N_("Places illimitées"))
    if left <= 0:
        return gettext(N_("Complet"))
    return ngettext("%(num)d place restante", "%(num)d places restantes", left) % {"num": left}


def shown_session(session: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """The catalogue's session with its times in the viewer's zone, and in its own when that is another."""
    starts, ends = _instant(session["starts_at"]).astimezone(zone), _instant(session["ends_at"]).astimezone(zone)
    own = ZoneInfo(session["timezone"])
    shown = {
        **session,
        "day": starts.date(),
        "day_label": day_label(starts),
        "start_label": time_label(starts),
        "end_label": time_label(ends),
        "ends_another_day": ends.date() != starts.date(),
        "end_day_label": day_label(ends),
        "zone": zone_label(zone, starts),
        "places_label": places_label(session),
        "duration_label": duration_label(session["duration_minutes"]),
        "own_zone": None,
        "page_url": f"/planning/sessions/{session['id']}" + _zone_query(zone),
    }
    if own.key != zone.key:
        own_starts, own_ends = starts.astimezone(own), ends.astimezone(own)
        shown["own_zone"] = {
            "day_label": day_label(own_starts),
            "start_label": time_label(own_starts),
            "end_label": time_label(own_ends),
            "zone": zone_label(own, own_starts),
        }
    return shown


def _zone_query(zone: ZoneInfo) -> str:
    """The query that keeps the viewer's zone on the next page, when it is not the gateway's own."""
    return "" if zone.key == i18n.timezone.key else f"?{urlencode({'tz': zone.key})}"


def month_grid(month: date, sessions: list[dict[str, Any]], today: date) -> list[list[dict[str, Any]]]:
    """The month's weeks (Monday first), each day with its sessions; days of the months around it are marked."""
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for session in sessions:
        by_day[session["day"]].append(session)
    weeks = calendar.Calendar(firstweekday=calendar.MONDAY).monthdatescalendar(month.year, month.month)
    return [
        [
            {
                "date": day,
                "label": day_label(day),
                "in_month": day.month == month.month,
                "today": day == today,
                "sessions": by_day.get(day, []) if day.month == month.month else [],
            }
            for day in week
        ]
        for week in weeks
    ]


def weekday_names() -> list[dict[str, str]]:
    wide = babel.dates.get_day_names("wide", locale=_language())
    short = babel.dates.get_day_names("abbreviated", locale=_language())
    return [{"wide": wide[day], "short": short[day]} for day in range(7)]


def zone_choices(zone: ZoneInfo, now: datetime) -> list[dict[str, Any]]:
    names = list(ZONES) if zone.key in ZONES else [zone.key, *ZONES]
    return [{"value": name, "label": zone_label(ZoneInfo(name), now), "selected": name == zone.key} for name in names]


def _month_after(month: date, step: int) -> date:
    index = month.year * 12 + month.month - 1 + step
    return date(index // 12, index % 12 + 1, 1)


# -- the catalogue's answers, read for a page ---------------------------------------------------------------------


async def _themes(catalogue: Upstream) -> list[dict[str, Any]] | None:
    try:
        answer = await catalogue.call("GET", "/internal/themes")
    except ProblemError:
        return None
    items: list[dict[str, Any]] = answer.json()["items"] if answer.status_code == 200 else []
    return items


async def _planning(catalogue: Upstream, filters: Filters) -> tuple[list[Any], int] | None:
    """The sessions to show and how many match: the whole month for the calendar, one page for the list; None
    when the catalogue did not answer or refused."""
    if filters.view == "list":
        limit, offset = PAGE_SIZE, (filters.page - 1) * PAGE_SIZE
    else:
        limit, offset = GRID_LIMIT, 0
    try:
        listed = await planning_sessions(catalogue, filters.catalogue_filters(), limit, offset)
    except ProblemError:
        return None
    return None if isinstance(listed, Response) else listed


class PlanningPages(Controller):
    include_in_schema = False

    @get("/planning")
    async def planning(
        self,
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        catalogue: Upstream,
        month: str | None = None,
        tz: str | None = None,
        theme_id: str | None = None,
        audience: str | None = None,
        q: str | None = None,
        available: str | None = None,
        view: str | None = None,
    ) -> Template:
        now = datetime.now(UTC)
        query = {"month": month, "tz": tz, "theme_id": theme_id, "audience": audience, "q": q}
        query |= {"available": available, "view": view, "page": request.query_params.get("page")}
        filters, errors = parse_filters(query, now)
        themes = await _themes(catalogue)
        context: dict[str, Any] = {
            "filters": filters,
            "errors": errors,
            "themes": themes or [],
            "audiences": sorted({theme["audience"] for theme in themes or [] if theme["audience"]}),
            # the offsets of the month shown (mid-month), which is what the visitor compares
            "zones": zone_choices(filters.zone, datetime.combine(filters.month.replace(day=15), time(12), UTC)),
            "zone": filters.zone.key,
            "month_label": month_label(filters.month),
            "previous_month": filters.url(month=_month_after(filters.month, -1), page=1),
            "next_month": filters.url(month=_month_after(filters.month, 1), page=1),
            "previous_label": month_label(_month_after(filters.month, -1)),
            "next_label": month_label(_month_after(filters.month, 1)),
            "clear_url": Filters(month=filters.month, zone=filters.zone, view=filters.view).url(),
            "grid_url": filters.url(view="grid", page=1),
            "list_url": filters.url(view="list", page=1),
            "weekdays": weekday_names(),
        }
        if errors:
            return page("planning.html", visitor, 400, **context, state="refused")
        planning = None if themes is None else await _planning(catalogue, filters)
        if planning is None:
            return page("planning.html", visitor, 503, **context, state="unavailable")
        items, total = planning
        sessions = [shown_session(session, filters.zone) for session in items]
        today = now.astimezone(filters.zone).date()
        pages = max(1, math.ceil(total / PAGE_SIZE))
        context |= {
            "sessions": sessions,
            "total": total,
            "weeks": month_grid(filters.month, sessions, today),
            "pages": pages,
            "truncated": filters.view == "grid" and total > len(sessions),
            "previous_page": filters.url(page=filters.page - 1) if filters.page > 1 else None,
            "next_page": filters.url(page=filters.page + 1) if filters.page < pages else None,
        }
        return page("planning.html", visitor, state="shown", **context)

    @get("/planning/sessions/{session_id:uuid}")
    async def session(
        self,
        session_id: uuid.UUID,
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        catalogue: Upstream,
        billing: Upstream,
        tz: str | None = None,
    ) -> Template:
        return await session_page(request, visitor, catalogue, billing, session_id, tz)

    @get("/planning/sessions/{session_id:uuid}/calendar.ics")
    async def session_calendar(self, session_id: uuid.UUID, catalogue: Upstream) -> Response[Any]:
        """The session alone as an iCalendar file, to add to one's calendar (404 for a session that is not public)."""
        answer = await catalogue.call("GET", f"/internal/sessions/{session_id}/calendar.ics")
        if answer.status_code == 404:
            raise NotFoundException
        return calendar_answer(answer, f"visiopass-{session_id}.ics", "attachment")

    @get("/planning.ics")
    async def calendar(self, catalogue: Upstream, theme_id: uuid.UUID | None = None) -> Response[Any]:
        """The planning's feed, to subscribe to (the same as `GET /api/v1/planning.ics`)."""
        path = "/internal/planning.ics" + (f"?{urlencode({'theme_id': theme_id})}" if theme_id else "")
        return calendar_answer(await catalogue.call("GET", path), "visiopass-planning.ics")


async def session_page(
    request: Request[Any, Any, Any],
    visitor: dict[str, Any] | None,
    catalogue: Upstream,
    billing: Upstream,
    session_id: uuid.UUID,
    tz: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Template:
    """One session's public page with, for a manager of the institution shown, the enrolment form ("S'inscrire")
    and the institution's token balance; `extra`: the form as typed and its refusal (gateway.enrolment_pages)."""
    now = datetime.now(UTC)
    zone, error = viewer_zone(tz)
    errors = {"tz": error} if error else {}
    context = {
        "zones": zone_choices(zone, now), "errors": errors, "session_id": session_id, "enrol_typed": {},
        "enrol_errors": {}, **await enrolment_context(request, visitor, billing), **extra,
    }  # fmt: skip
    try:
        answer = await catalogue.call("GET", f"/internal/sessions/{session_id}")
    except ProblemError:
        return page("session_page.html", visitor, 503, session=None, **context)
    if answer.status_code == 404:
        raise NotFoundException
    if answer.status_code != 200:
        return page("session_page.html", visitor, 503, session=None, **context)
    session = shown_session(answer.json(), zone)
    context["zones"] = zone_choices(zone, _instant(session["starts_at"]))  # the offsets on the session's day
    month = session["day"].replace(day=1)
    back = Filters(month=month, zone=zone).url()
    theme = Filters(month=month, zone=zone, theme_id=session["theme_id"]).url()
    feed = str(request.base_url).rstrip("/") + "/planning.ics"
    if errors and status_code == 200:
        status_code = 400
    return page(
        "session_page.html", visitor, status_code, session=session, back_url=back, theme_url=theme, feed_url=feed,
        **context,
    )  # fmt: skip


async def enrolment_context(
    request: Request[Any, Any, Any], visitor: dict[str, Any] | None, billing: Upstream
) -> dict[str, Any]:
    """Who may enrol from the session page: `enrol_role` ("manager", "member", or None for a visitor of no
    institution or not logged in) for the institution shown, and its balance (`wallet`, None when unknown)."""
    if visitor is None:
        return {"enrol_role": None, "wallet": None}
    account_id = current_account(request, visitor)
    if account_id is None:
        return {"enrol_role": None, "wallet": None}
    role = visitor.get("memberships", {}).get(str(account_id))
    wallet = None
    if role == "manager":
        try:
            answer = await billing.call("GET", f"/internal/accounts/{account_id}/wallet", actor=visitor["user_id"])
            wallet = answer.json() if answer.status_code == 200 else None
        except ProblemError:
            wallet = None
    return {"enrol_role": role, "wallet": wallet}
