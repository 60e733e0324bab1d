"""The organisers' sessions ("Séances", docs/portal.md, "Back-office: catalogue"): the list with its filters, the
month calendar, a session's page and form, publish, the confirmation steps of a reschedule and a cancellation
(gateway.back_office_catalogue), and the animator's way into a published session's room, as its moderator."""

import asyncio
import calendar
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import babel.dates
from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Redirect, Template

from gateway import i18n
from gateway.back_office_catalogue import (
    STATUSES,
    catalogue_page,
    confirm_page,
    done,
    items_of,
    one,
    read,
    terms_form_page,
    wall_clock,
)
from gateway.back_office_catalogue_api import BACK_OFFICE
from gateway.back_office_catalogue_forms import (
    CANCEL_FIELDS,
    RESCHEDULE_FIELDS,
    SESSION_FIELDS,
    CancelForm,
    JoinForm,
    RescheduleForm,
    SessionForm,
    day_of,
    problem_of,
    refusal_errors,
    refusal_text,
)
from gateway.back_office_pages import organiser
from gateway.i18n import N_, gettext
from gateway.portal import FORM, clip, form_status
from gateway.upstream import Upstream
from servicekit.http import ProblemError

PAGE_SIZE = 50
CALENDAR_AT_MOST = 1000  # sessions read for one month's grid (pages of 200)
ROOM_LEAD = timedelta(hours=1)  # a session's room opens this long before its start (the catalogue's `lead`)


def offset_of(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 10 else 0


@dataclass(frozen=True)
class SessionSearch:
    """The sessions list's filters, as typed (kept in the form) and as the catalogue is asked."""

    status: str
    theme_id: str
    q: str
    starts_from: str
    starts_to: str
    offset: int
    errors: dict[str, str]

    @classmethod
    def of(cls, status: str, theme_id: str, q: str, starts_from: str, starts_to: str, offset: int) -> "SessionSearch":
        errors = {}
        for name, value in (("from", starts_from), ("to", starts_to)):
            if value.strip() and day_of(value) is None:
                errors[name] = gettext(N_("Une date, par exemple 2027-03-18."))
        try:
            theme = str(uuid.UUID(theme_id)) if theme_id else ""
        except ValueError:
            theme = ""
        return cls(
            status if status in STATUSES else "",
            theme,
            "".join(char for char in clip(q) if char.isprintable()).strip()[:100],
            starts_from.strip()[:10],
            starts_to.strip()[:10],
            offset,
            errors,
        )

    def query(self) -> dict[str, Any]:
        starts_from, starts_to = day_of(self.starts_from), day_of(self.starts_to)
        return {
            "status": self.status,
            "theme_id": self.theme_id,
            "q": self.q,
            "from": starts_from.isoformat() if starts_from else None,
            "to": starts_to.isoformat() if starts_to else None,
            "offset": self.offset,
        }

    def link(self, offset: int) -> str:
        kept = {"status": self.status, "theme_id": self.theme_id, "q": self.q, "from": self.starts_from}
        kept["to"] = self.starts_to
        return "?" + urlencode({name: value for name, value in kept.items() if value} | {"offset": offset})


# -- the calendar ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    in_month: bool
    sessions: list[dict[str, Any]]


@dataclass(frozen=True)
class Month:
    first: date
    weeks: list[list[Day]]
    weekday_names: list[str]

    @property
    def previous(self) -> str:
        return (self.first - timedelta(days=1)).strftime("%Y-%m")

    @property
    def next(self) -> str:
        return (self.first + timedelta(days=31)).strftime("%Y-%m")

    @property
    def title(self) -> str:
        return babel.dates.format_date(self.first, "LLLL y", locale=i18n.current_language.get())


def month_of(value: str) -> date:
    """The first day of the month asked (`YYYY-MM`), this month in the portal's zone otherwise."""
    try:
        asked = datetime.strptime(value.strip(), "%Y-%m").date()
        if 2000 <= asked.year <= 2100:
            return asked
    except ValueError:
        pass
    return datetime.now(UTC).astimezone(i18n.timezone).date().replace(day=1)


def month_grid(first: date, sessions: list[dict[str, Any]]) -> Month:
    """Weeks from Monday to Sunday covering the month; each day with its sessions by their own wall clock."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for session in sorted(sessions, key=lambda s: (s["local_start"], s["title"])):
        by_day.setdefault(date.fromisoformat(session["local_start"][:10]), []).append(session)
    weeks = [
        [Day(day, day.month == first.month, by_day.get(day, [])) for day in week]
        for week in calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    ]
    names = babel.dates.get_day_names("wide", locale=i18n.current_language.get())
    return Month(first, weeks, [names[index] for index in range(7)])


# -- the animator's way in ------------------------------------------------------------------------------------------


def join_refusal(answer: Any, session: dict[str, Any], now: datetime | None = None) -> str:
    """Why the catalogue did not let the animator in, in the reader's language: a room not open yet says when it
    opens (an hour before the start, by the session's own wall clock), one already closed says so."""
    problem = problem_of(answer)
    code = problem.get("code")
    if code == "room_not_open":
        try:
            opens = datetime.fromisoformat(session["starts_at"]) - ROOM_LEAD
            zone = zoneinfo.ZoneInfo(session["timezone"])
        except (KeyError, TypeError, ValueError, zoneinfo.ZoneInfoNotFoundError):
            return refusal_text(problem)
        if (now or datetime.now(UTC)) < opens:
            return gettext(
                N_("La salle n'est pas encore ouverte : elle ouvrira le %(when)s (%(zone)s), une heure avant le début.")
            ) % {"when": wall_clock(opens.astimezone(zone).strftime("%Y-%m-%dT%H:%M")), "zone": session["timezone"]}
        return gettext(N_("La séance est passée : sa salle est fermée."))
    if code == "not_found" and session.get("status") != "published":
        return gettext(N_("Seule une séance publiée a une salle : publiez-la d'abord."))
    return refusal_text(problem)


# -- the pages ----------------------------------------------------------------------------------------------------


class BackOfficeSessionPages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    # -- the list, the calendar ------------------------------------------------------------------------------------

    @get("/sessions")
    async def sessions(
        self,
        organiser: dict[str, Any],
        catalogue: Upstream,
        status: str = "",
        theme_id: str = "",
        q: str = "",
        starts_from: Annotated[str, Parameter(query="from")] = "",
        starts_to: Annotated[str, Parameter(query="to")] = "",
        offset: str = "0",
    ) -> Template:
        search = SessionSearch.of(status, theme_id, q, starts_from, starts_to, offset_of(offset))
        actor = organiser["user_id"]
        found = await read(catalogue, f"{BACK_OFFICE}/sessions", actor, **search.query(), limit=PAGE_SIZE)
        themes = items_of(await read(catalogue, f"{BACK_OFFICE}/themes", actor)) or []
        total = found["total"] if found else 0
        return catalogue_page(
            "back_office_catalogue_sessions.html",
            organiser,
            400 if search.errors else 200,
            found=found,
            themes=themes,
            search=search,
            previous_link=search.link(max(0, search.offset - PAGE_SIZE)) if search.offset > 0 else None,
            next_link=search.link(search.offset + PAGE_SIZE) if search.offset + PAGE_SIZE < total else None,
        )

    @get("/sessions/calendar")
    async def month_calendar(self, organiser: dict[str, Any], catalogue: Upstream, month: str = "") -> Template:
        first = month_of(month)
        last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        sessions: list[dict[str, Any]] | None = []
        # a day either side: the catalogue bounds days in UTC or its zone, the grid shows each session's wall clock
        query = {"from": (first - timedelta(days=1)).isoformat(), "to": (last + timedelta(days=1)).isoformat()}
        while sessions is not None and len(sessions) < CALENDAR_AT_MOST:
            found = await read(
                catalogue, f"{BACK_OFFICE}/sessions", organiser["user_id"], **query, limit=200, offset=len(sessions)
            )
            if found is None:
                sessions = None
                break
            sessions += found["items"]
            if not found["items"] or len(sessions) >= found["total"]:
                break
        in_month = [s for s in sessions or () if s["local_start"][:7] == first.strftime("%Y-%m")]
        return catalogue_page(
            "back_office_catalogue_calendar.html",
            organiser,
            month=month_grid(first, in_month),
            count=len(in_month),
            unavailable=sessions is None,
            today=datetime.now(UTC).astimezone(i18n.timezone).date(),
        )

    # -- one session -----------------------------------------------------------------------------------------------

    @get("/sessions/new")
    async def new_session(self, organiser: dict[str, Any], catalogue: Upstream, theme_id: str = "") -> Template:
        return await self._session_form(catalogue, organiser, None, SessionForm.blank(theme_id[:36]))

    @post("/sessions")
    async def create_session(
        self, data: Annotated[SessionForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        body, errors = data.checked()
        if errors:
            return await self._session_form(catalogue, organiser, None, data, errors, 400)
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/sessions", body, actor=organiser["user_id"])
        if answer.status_code in (200, 201):
            return done(f"/back-office/sessions/{answer.json()['id']}", "created")
        errors = refusal_errors(answer, SESSION_FIELDS, data.typed_start())
        return await self._session_form(catalogue, organiser, None, data, errors, form_status(answer.status_code))

    @get("/sessions/{session_id:uuid}")
    async def session(
        self,
        session_id: uuid.UUID,
        organiser: dict[str, Any],
        catalogue: Upstream,
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Template:
        session, enrolments, outcomes = await asyncio.gather(
            self._session(catalogue, organiser, session_id),
            session_enrolments(enrollment, accounts, session_id, organiser["user_id"]),
            session_outcomes(enrollment, session_id),
        )
        return self._shown(organiser, session, enrolments=enrolments, **outcomes)

    @get("/sessions/{session_id:uuid}/edit")
    async def edit_session(self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return await self._session_form(catalogue, organiser, session, SessionForm.of(session))

    @post("/sessions/{session_id:uuid}")
    async def change_session(
        self,
        session_id: uuid.UUID,
        data: Annotated[SessionForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        session = await self._session(catalogue, organiser, session_id)
        body, errors = data.checked()
        if errors:
            return await self._session_form(catalogue, organiser, session, data, errors, 400)
        path = f"{BACK_OFFICE}/sessions/{session_id}"
        answer = await catalogue.call("PUT", path, body, actor=organiser["user_id"])
        if answer.status_code == 200:
            return done(f"/back-office/sessions/{session_id}", "updated")
        errors = refusal_errors(answer, SESSION_FIELDS, data.typed_start())
        return await self._session_form(catalogue, organiser, session, data, errors, form_status(answer.status_code))

    @post("/sessions/{session_id:uuid}/publish")
    async def publish_session(
        self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        path = f"{BACK_OFFICE}/sessions/{session_id}/publish"
        answer = await catalogue.call("POST", path, {}, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/sessions/{session_id}", "published")
        errors = refusal_errors(answer)
        return await self._session_page(catalogue, organiser, session_id, errors, form_status(answer.status_code))

    @post("/sessions/{session_id:uuid}/join")
    async def join_session(
        self,
        session_id: uuid.UUID,
        data: Annotated[JoinForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        """The animator's way into the room of a published session, as its moderator: a redirect (303) to a fresh
        URL of the conferencing provider, or the session's page again saying why not."""
        body, errors = data.checked()
        if errors:
            return await self._session_page(catalogue, organiser, session_id, errors, 400, data.kept())
        path = f"{BACK_OFFICE}/sessions/{session_id}/join"
        answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code == 200:
            return Redirect(answer.json()["url"], status_code=303)
        session = await self._session(catalogue, organiser, session_id)
        errors = {"_form": join_refusal(answer, session)}
        return self._shown(organiser, session, errors, form_status(answer.status_code), data.kept())

    @get("/sessions/{session_id:uuid}/reschedule")
    async def reschedule_page(self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return confirm_page(organiser, "reschedule", session, RescheduleForm.of(session))

    @post("/sessions/{session_id:uuid}/reschedule")
    async def reschedule(
        self,
        session_id: uuid.UUID,
        data: Annotated[RescheduleForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        session = await self._session(catalogue, organiser, session_id)
        body, errors = data.checked()
        if errors:
            return confirm_page(organiser, "reschedule", session, data, errors, 400)
        path = f"{BACK_OFFICE}/sessions/{session_id}/reschedule"
        answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/sessions/{session_id}", "rescheduled")
        typed = (data.local_date, data.local_time, data.timezone)
        errors = refusal_errors(answer, RESCHEDULE_FIELDS, typed)
        return confirm_page(organiser, "reschedule", session, data, errors, form_status(answer.status_code))

    @get("/sessions/{session_id:uuid}/cancel")
    async def cancel_page(self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return confirm_page(organiser, "cancel", session, CancelForm())

    @post("/sessions/{session_id:uuid}/cancel")
    async def cancel(
        self, session_id: uuid.UUID, data: Annotated[CancelForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        session = await self._session(catalogue, organiser, session_id)
        body, errors = data.checked()
        if errors:
            return confirm_page(organiser, "cancel", session, data, errors, 400)
        path = f"{BACK_OFFICE}/sessions/{session_id}/cancel"
        answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/sessions/{session_id}", "cancelled")
        errors = refusal_errors(answer, CANCEL_FIELDS)
        return confirm_page(organiser, "cancel", session, data, errors, form_status(answer.status_code))

    async def _session(self, catalogue: Upstream, organiser: dict[str, Any], session_id: uuid.UUID) -> dict[str, Any]:
        return await one(catalogue, f"{BACK_OFFICE}/sessions/{session_id}", organiser["user_id"])

    async def _session_page(
        self,
        catalogue: Upstream,
        organiser: dict[str, Any],
        session_id: uuid.UUID,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
        join_form: JoinForm | None = None,
    ) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return self._shown(organiser, session, errors, status_code, join_form)

    def _shown(
        self,
        organiser: dict[str, Any],
        session: dict[str, Any],
        errors: dict[str, str] | None = None,
        status_code: int = 200,
        join_form: JoinForm | None = None,
        enrolments: dict[str, Any] | None = None,
        **outcomes: Any,
    ) -> Template:
        """The session's page: its terms, its actions, once published the animator's way into its room, and its
        enrolments and waiting list (`enrolments`: enrollment's answer with institution names; None: not shown),
        its attendance and its feedback (`outcomes`: see `session_outcomes`)."""
        return catalogue_page(
            "back_office_catalogue_session.html",
            organiser,
            status_code,
            session=session,
            errors=errors or {},
            join_form=join_form or JoinForm.of(organiser),
            enrolments=enrolments,
            **outcomes,
        )

    async def _session_form(
        self,
        catalogue: Upstream,
        organiser: dict[str, Any],
        session: dict[str, Any] | None,
        form: SessionForm,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        template = "back_office_catalogue_session_form.html"
        return await terms_form_page(template, catalogue, organiser, form, errors, status_code, session=session)


async def session_enrolments(
    enrollment: Upstream, accounts: Upstream, session_id: uuid.UUID, actor: str
) -> dict[str, Any] | None:
    """The session's enrolments and waiting list as enrollment keeps them, each with its institution's name (from
    accounts; its id when accounts does not say); `{"unavailable": True}` when enrollment did not answer; None for
    a session enrollment does not know (a draft: nobody can enrol yet)."""
    try:
        answer = await enrollment.call("GET", f"/internal/sessions/{session_id}/enrolments?limit=1000", actor=actor)
    except ProblemError:
        return {"unavailable": True}
    if answer.status_code == 404:
        return None
    if answer.status_code != 200:
        return {"unavailable": True}
    shown: dict[str, Any] = answer.json()
    ids = sorted({row["account_id"] for row in [*shown["items"], *shown["waiting_list"]]})

    async def name_of(account_id: str) -> tuple[str, str]:
        try:
            found = await accounts.call("GET", f"/internal/accounts/{account_id}/profile", actor=actor)
        except ProblemError:
            return account_id, account_id
        return account_id, (found.json().get("name") if found.status_code == 200 else None) or account_id

    names = dict(await asyncio.gather(*map(name_of, ids)))
    for row in [*shown["items"], *shown["waiting_list"]]:
        row["institution"] = names[row["account_id"]]
    return shown


async def session_outcomes(enrollment: Upstream, session_id: uuid.UUID) -> dict[str, Any]:
    """The session's attendance per enrolment and its feedback, as enrollment keeps them (`attendance`, `feedback`:
    None when enrollment did not answer or does not know the session)."""

    async def read_one(what: str) -> Any:
        try:
            answer = await enrollment.call("GET", f"/internal/sessions/{session_id}/{what}")
        except ProblemError:
            return None
        return answer.json() if answer.status_code == 200 else None

    attendance, feedback = await asyncio.gather(read_one("attendance"), read_one("feedback"))
    return {"attendance": attendance, "feedback": feedback}
