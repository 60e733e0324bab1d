"""Internal HTTP API of the catalogue (docs/catalogue.md, "Internal API"), called by the gateway, which authorises
first: organisers for /internal/back-office, anyone for the published planning. Thin: inputs are checked here,
the rules live in catalogue.service, and refusals come back as problem details whose `field` names what to fix."""

import secrets
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.params import Parameter
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError

from catalogue import ics, local_time, rooms
from catalogue import service as rules
from catalogue.models import permanent_rooms, series, sessions, themes
from catalogue.rooms import Participant, Room, RoomError, RoomNotOpen, RoomProvider
from catalogue.series import Recurrence, SeriesError
from catalogue.service import CatalogueError, PlanningQuery, SeriesPlan, SessionFields, ThemeFields
from catalogue.settings import CatalogueSettings
from servicekit.http import ProblemError, problem_response
from servicekit.inputs import Name, Offset, checked_query, text
from servicekit.read_cache import ReadCache
from servicekit.runtime import Service

Limit = Annotated[int, Parameter(ge=1, le=200)]
PLANNING_CACHE = ReadCache(ttl=2.0)  # main.py sets the TTL from the settings
MONTH = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"  # 2000 to 2099, as the gateway checks
PERMANENT_ROOM_HOURS = 4  # a permanent room's meeting lasts this long from its first join, then starts again
ICS_HISTORY_DAYS = 31


def _wall_clock(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("a local date and time, YYYY-MM-DDTHH:MM") from None
    if parsed.tzinfo is not None:
        raise ValueError("a wall-clock time without offset: the zone is given apart")
    if not 2000 <= parsed.year <= 2100:
        raise ValueError("a year between 2000 and 2100")
    return parsed.replace(second=0, microsecond=0)


LocalDateTime = Annotated[str, Field(min_length=16, max_length=19), AfterValidator(_wall_clock)]
ZoneName = text(64, min_length=1)
Tokens = Annotated[int, Field(ge=1, le=1000)]


class ThemeInput(BaseModel):
    title: text(200, min_length=1)  # type: ignore[valid-type]
    description: text(10_000, multiline=True) = ""  # type: ignore[valid-type]
    audience: text(200) = ""  # type: ignore[valid-type]
    prerequisites: text(2000, multiline=True) = ""  # type: ignore[valid-type]
    image_url: Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s]+$")] | None = None
    tags: Annotated[list[text(40, min_length=1)], Field(max_length=10)] = []  # type: ignore[valid-type]

    def fields(self) -> ThemeFields:
        return ThemeFields(**(self.model_dump() | {"tags": tuple(self.tags)}))


class TermsInput(BaseModel):
    """What a session and a series' template share."""

    title: text(200, min_length=1)  # type: ignore[valid-type]
    description: text(10_000, multiline=True) = ""  # type: ignore[valid-type]
    animator: text(200) = ""  # type: ignore[valid-type]
    timezone: ZoneName = local_time.DEFAULT_TIME_ZONE  # type: ignore[valid-type]
    duration_minutes: Annotated[int, Field(ge=15, le=480)] = 60
    capacity: Annotated[int, Field(ge=1, le=100_000)] | None = None
    price_tokens: Tokens = 1
    premium_price_tokens: Tokens | None = None
    access: Literal["open", "code"] = "open"
    entry_code: text(64) | None = None  # type: ignore[valid-type]
    waiting_message: text(2000, multiline=True) = ""  # type: ignore[valid-type]
    agenda: text(5000, multiline=True) = ""  # type: ignore[valid-type]
    provider: Literal["bbb", "jitsi"] | None = None

    def terms(self, settings: CatalogueSettings, local_start: datetime, local_end: datetime | None) -> SessionFields:
        values = self.model_dump(include=set(TermsInput.model_fields) - {"provider", "entry_code"})
        return SessionFields(
            **values,
            local_start=local_start,
            local_end=local_end,
            entry_code=self.entry_code or None,
            provider=self.provider or settings.default_provider,
        )


class SessionInput(TermsInput):
    theme_id: uuid.UUID
    local_start: LocalDateTime  # type: ignore[valid-type]
    local_end: LocalDateTime | None = None  # type: ignore[valid-type]

    def session_fields(self, settings: CatalogueSettings) -> SessionFields:
        return self.terms(settings, self.local_start, self.local_end)  # type: ignore[arg-type]


class RescheduleInput(BaseModel):
    local_start: LocalDateTime  # type: ignore[valid-type]
    timezone: ZoneName = local_time.DEFAULT_TIME_ZONE  # type: ignore[valid-type]
    duration_minutes: Annotated[int, Field(ge=15, le=480)] | None = None


class CancelInput(BaseModel):
    reason: text(500, min_length=1, multiline=True)  # type: ignore[valid-type]


class RecurrenceInput(BaseModel):
    frequency: Literal["daily", "weekly", "monthly"]
    interval: Annotated[int, Field(ge=1, le=99)] = 1
    weekdays: Annotated[list[Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]], Field(max_length=7)] = []
    monthly_position: Literal[1, 2, 3, 4, -1] | None = None
    count: Annotated[int, Field(ge=1, le=500)] | None = None
    until: date | None = None

    def recurrence(self) -> Recurrence:
        try:
            return Recurrence(
                frequency=self.frequency,
                interval=self.interval,
                weekdays=tuple(self.weekdays),
                monthly_position=self.monthly_position,
                count=self.count,
                until=self.until,
            )
        except SeriesError as exc:
            raise CatalogueError(400, f"series_{exc.code}", str(exc), "recurrence") from exc


class SeriesInput(BaseModel):
    theme_id: uuid.UUID
    recurrence: RecurrenceInput
    local_start: LocalDateTime  # type: ignore[valid-type]
    template: TermsInput

    def plan(self, settings: CatalogueSettings) -> SeriesPlan:
        local_start: datetime = self.local_start  # type: ignore[assignment]
        return SeriesPlan(self.recurrence.recurrence(), local_start, self.template.terms(settings, local_start, None))


class RoomInput(BaseModel):
    name: text(200, min_length=1)  # type: ignore[valid-type]
    description: text(2000, multiline=True) = ""  # type: ignore[valid-type]
    provider: Literal["bbb", "jitsi"] | None = None
    entry_code: text(64) | None = None  # type: ignore[valid-type]


class JoinInput(BaseModel):
    name: Name  # type: ignore[valid-type]


class ParticipantJoinInput(JoinInput):
    # the person's id in the provider's link (a Jitsi token's `context.user.id`, BigBlueButton's userID): the
    # gateway gives the attendance's id, which the provider's "participant left" webhook then names
    participant_id: uuid.UUID | None = None


class RoomJoinInput(BaseModel):
    name: Name  # type: ignore[valid-type]
    entry_code: text(64) | None = None  # type: ignore[valid-type]


class EntryCodeInput(BaseModel):
    code: text(64, min_length=1)  # type: ignore[valid-type]


def _settings(service: Service) -> CatalogueSettings:
    settings: CatalogueSettings = service.settings
    return settings


def _now() -> datetime:
    return datetime.now(UTC)


def _page(items: list[Any], total: int, offset: int, limit: int) -> dict[str, Any]:
    return {"items": items, "total": total, "offset": offset, "limit": limit}


def _theme_view(row: Any, upcoming: int = 0) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "title": row.title,
        "description": row.description,
        "audience": row.audience,
        "prerequisites": row.prerequisites,
        "image_url": row.image_url,
        "tags": list(row.tags),
        "status": row.status,
        "session_count": upcoming,
    }


async def _themes(db_session: Any, condition: Any, now: datetime) -> list[dict[str, Any]]:
    upcoming = (
        select(func.count())
        .where(sessions.c.theme_id == themes.c.id, sessions.c.status == "published", sessions.c.starts_at > now)
        .scalar_subquery()
    )
    rows = await db_session.execute(
        select(themes, upcoming.label("upcoming")).where(condition).order_by(themes.c.title)
    )
    return [_theme_view(row, row.upcoming) for row in rows]


async def _session_view(db_session: Any, session_id: uuid.UUID, *, public: bool) -> dict[str, Any]:
    query = (
        select(*rules.SHOWN_COLUMNS, themes.c.title.label("theme_title"))
        .join(themes, themes.c.id == sessions.c.theme_id)
        .where(sessions.c.id == session_id)
    )
    if public:
        query = query.where(sessions.c.status.in_(rules.PUBLIC_STATUSES))
    row = (await db_session.execute(query)).one_or_none()
    if row is None:
        raise rules.not_found()
    return rules.shown(row)


class PlanningApi(Controller):
    """The published planning, for anyone (the gateway serves it to visitors)."""

    path = "/internal"

    @get("/planning")
    async def planning(
        self,
        service: Service,
        month: Annotated[str | None, Parameter(pattern=MONTH)] = None,
        tz: Annotated[str, Parameter(max_length=64)] = local_time.DEFAULT_TIME_ZONE,
        theme_id: uuid.UUID | None = None,
        audience: Annotated[str | None, Parameter(max_length=200)] = None,
        q: Annotated[str | None, Parameter(max_length=200)] = None,
        available: bool = False,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> dict[str, Any]:
        query = PlanningQuery(
            month=(int(month[:4]), int(month[5:])) if month else None,
            tz=_zone(tz),
            theme_id=theme_id,
            audience=checked_query("audience", audience, text(200)),
            text=checked_query("q", q, text(200)),
            available=available,
            offset=offset,
            limit=limit,
        )

        async def answer() -> dict[str, Any]:
            async with service.db.transaction() as db_session:
                items, total = await rules.planning(db_session, query, _now())
            return _page(items, total, offset, limit)

        return dict(await PLANNING_CACHE.get(query, answer))

    @get("/planning.ics", media_type="text/calendar")
    async def calendar(self, service: Service, theme_id: uuid.UUID | None = None) -> Response[bytes]:
        conditions = [
            sessions.c.status.in_(("published", "cancelled", "finished")),
            sessions.c.starts_at > _now() - timedelta(days=ICS_HISTORY_DAYS),
        ]
        if theme_id is not None:
            conditions.append(sessions.c.theme_id == theme_id)
        async with service.db.transaction() as db_session:
            rows = (
                await db_session.execute(
                    select(*rules.SHOWN_COLUMNS).where(and_(*conditions)).order_by(sessions.c.starts_at).limit(5000)
                )
            ).all()
        return _calendar(service, rows, "Visiopass — planning")

    @get("/sessions/{session_id:uuid}/calendar.ics", media_type="text/calendar")
    async def session_calendar(self, session_id: uuid.UUID, service: Service) -> Response[bytes]:
        """One session's event, to add to one's calendar."""
        async with service.db.transaction() as db_session:
            rows = (
                await db_session.execute(
                    select(*rules.SHOWN_COLUMNS).where(
                        sessions.c.id == session_id, sessions.c.status.in_(rules.PUBLIC_STATUSES)
                    )
                )
            ).all()
        if not rows:
            raise rules.not_found()
        return _calendar(service, rows, rows[0].title)

    @get("/sessions/{session_id:uuid}")
    async def session(self, session_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            return await _session_view(db_session, session_id, public=True)

    @get("/themes")
    async def themes_list(self, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            return {"items": await _themes(db_session, themes.c.status == "active", _now())}

    @get("/themes/{theme_id:uuid}")
    async def theme(self, theme_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            found = await _themes(db_session, and_(themes.c.id == theme_id, themes.c.status == "active"), _now())
        if not found:
            raise rules.not_found("theme")
        return found[0]

    @post("/sessions/{session_id:uuid}/entry-code", status_code=204)
    async def check_entry_code(self, session_id: uuid.UUID, data: EntryCodeInput, service: Service) -> None:
        async with service.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    select(sessions).where(sessions.c.id == session_id, sessions.c.status.in_(rules.PUBLIC_STATUSES))
                )
            ).one_or_none()
        if row is None:
            raise rules.not_found()
        if not rules.entry_code_matches(row.entry_code_hash if row.access == "code" else None, data.code):
            raise CatalogueError(403, "wrong_entry_code", "This entry code is not the session's.", "code")

    @post("/sessions/{session_id:uuid}/join", status_code=200)
    async def join(
        self, session_id: uuid.UUID, data: ParticipantJoinInput, service: Service, providers: Any
    ) -> dict[str, Any]:
        """A participant's way in (the gateway's join page, once it has checked the participation link)."""
        return await _join_session(
            service, providers, session_id, data.name, moderator=False, participant_id=data.participant_id
        )

    @get("/sessions/{session_id:uuid}/dial-in")
    async def dial_in(self, session_id: uuid.UUID, service: Service) -> dict[str, Any]:
        """How to join a published session by phone: the number to call and the room's PIN (the join page)."""
        async with service.db.transaction() as db_session:
            found = await db_session.scalar(
                select(sessions.c.id).where(sessions.c.id == session_id, sessions.c.status == "published")
            )
        if found is None:
            raise rules.not_found()
        return dial_in_of(_settings(service), session_id)


def dial_in_of(settings: CatalogueSettings, room_id: uuid.UUID) -> dict[str, Any]:
    """`{"phone", "pin"}` of a session's or a permanent room's meeting (`phone` None when no number is set)."""
    return {"phone": settings.dial_in_phone, "pin": rooms.voice_bridge(_room_secret(settings), room_id)}


async def _join_session(
    service: Service,
    providers: dict[str, RoomProvider],
    session_id: uuid.UUID,
    name: str,
    *,
    moderator: bool,
    participant_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async with service.db.transaction() as db_session:
        row = (
            await db_session.execute(
                select(*rules.SHOWN_COLUMNS).where(sessions.c.id == session_id, sessions.c.status == "published")
            )
        ).one_or_none()
    if row is None:
        raise rules.not_found()
    room = _room(_settings(service), row.id, row.title, row.starts_at, row.ends_at)
    return await _join(providers, row.provider, room, name, moderator, participant_id)


async def _join_permanent_room(
    service: Service, providers: dict[str, RoomProvider], row: Any, name: str, *, moderator: bool
) -> dict[str, Any]:
    """A permanent room has no schedule: its meeting lasts PERMANENT_ROOM_HOURS from a join."""
    now = _now()
    room = _room(
        _settings(service), row.id, row.name, now - timedelta(minutes=1), now + timedelta(hours=PERMANENT_ROOM_HOURS)
    )
    return await _join(providers, row.provider, room, name, moderator)


def _room(settings: CatalogueSettings, room_id: uuid.UUID, title: str, starts_at: datetime, ends_at: datetime) -> Room:
    secret = _room_secret(settings)
    return Room.for_session(
        room_id,
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
        max_participants=None,
        end_callback_url=end_callback_url(settings.public_base_url, secret, room_id),
        secret=secret,
    )


def end_callback_url(public_base_url: str, secret: str, room_id: uuid.UUID) -> str:
    """Where BigBlueButton tells that a meeting ended: the gateway's hook, signed (rooms.end_callback_signature)."""
    signature = rooms.end_callback_signature(secret, room_id)
    return f"{public_base_url.rstrip('/')}/hooks/rooms/{room_id}/ended?sig={signature}"


async def _forget_planning(response: Response[Any]) -> Response[Any]:
    """Before any back-office answer leaves (organisers' reads included: they are few), so that the organiser's
    next look at the planning shows the change."""
    PLANNING_CACHE.clear()
    return response


class BackOfficeCatalogueApi(Controller):
    """Organisers' routes: every status, every change (each clears this replica's planning cache)."""

    path = "/internal/back-office"
    after_request = _forget_planning

    @get("/themes")
    async def themes_list(
        self, service: Service, status: Literal["active", "archived"] | None = None
    ) -> dict[str, Any]:
        condition = themes.c.status == status if status else themes.c.id.is_not(None)
        async with service.db.transaction() as db_session:
            return {"items": await _themes(db_session, condition, _now())}

    @get("/themes/{theme_id:uuid}")
    async def theme(self, theme_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            found = await _themes(db_session, themes.c.id == theme_id, _now())
        if not found:
            raise rules.not_found("theme")
        return found[0]

    @post("/themes", status_code=201)
    async def create_theme(self, data: ThemeInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            theme_id = await rules.create_theme(db_session, data.fields(), _now())
            return (await _themes(db_session, themes.c.id == theme_id, _now()))[0]

    @put("/themes/{theme_id:uuid}")
    async def update_theme(self, theme_id: uuid.UUID, data: ThemeInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            await rules.update_theme(db_session, service.outbox, theme_id, data.fields(), _now())
            return (await _themes(db_session, themes.c.id == theme_id, _now()))[0]

    @post("/themes/{theme_id:uuid}/archive", status_code=200)
    async def archive_theme(self, theme_id: uuid.UUID, service: Service) -> dict[str, Any]:
        return await self._set_theme(service, theme_id, "archived")

    @post("/themes/{theme_id:uuid}/restore", status_code=200)
    async def restore_theme(self, theme_id: uuid.UUID, service: Service) -> dict[str, Any]:
        return await self._set_theme(service, theme_id, "active")

    async def _set_theme(self, service: Service, theme_id: uuid.UUID, status: Literal["active", "archived"]) -> Any:
        async with service.db.transaction() as db_session:
            await rules.set_theme_status(db_session, theme_id, status, _now())
            return (await _themes(db_session, themes.c.id == theme_id, _now()))[0]

    @get("/sessions")
    async def sessions_list(
        self,
        service: Service,
        from_: Annotated[date | None, Parameter(query="from")] = None,
        to: date | None = None,
        status: Literal["draft", "published", "cancelled", "finished"] | None = None,
        theme_id: uuid.UUID | None = None,
        series_id: uuid.UUID | None = None,
        q: Annotated[str | None, Parameter(max_length=200)] = None,
        tz: Annotated[str, Parameter(max_length=64)] = local_time.DEFAULT_TIME_ZONE,
        offset: Offset = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        zone = _zone(tz)
        conditions: list[Any] = []
        if from_ is not None:
            conditions.append(
                sessions.c.starts_at >= local_time.to_utc(datetime.combine(from_, time()), zone, shift_gap=True)
            )
        if to is not None:
            end = datetime.combine(to + timedelta(days=1), time())
            conditions.append(sessions.c.starts_at < local_time.to_utc(end, zone, shift_gap=True))
        if status is not None:
            conditions.append(sessions.c.status == status)
        if theme_id is not None:
            conditions.append(sessions.c.theme_id == theme_id)
        if series_id is not None:
            conditions.append(sessions.c.series_id == series_id)
        search = checked_query("q", q, text(200))
        if search:
            conditions.append(sessions.c.title.ilike(f"%{rules._escaped(search)}%", escape="\\"))
        joined = sessions.join(themes, themes.c.id == sessions.c.theme_id)
        where = and_(True, *conditions)
        async with service.db.transaction() as db_session:
            total = await db_session.scalar(select(func.count()).select_from(joined).where(where))
            rows = (
                await db_session.execute(
                    select(*rules.SHOWN_COLUMNS, themes.c.title.label("theme_title"))
                    .select_from(joined)
                    .where(where)
                    .order_by(sessions.c.starts_at, sessions.c.id)
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
        return _page([rules.shown(row) for row in rows], total or 0, offset, limit)

    @get("/sessions/{session_id:uuid}")
    async def session(self, session_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            return await _session_view(db_session, session_id, public=False)

    @post("/sessions", status_code=201)
    async def create_session(self, data: SessionInput, service: Service) -> dict[str, Any]:
        fields = data.session_fields(_settings(service))
        _check_provider(_settings(service), fields.provider)
        async with service.db.transaction() as db_session:
            session_id = await rules.create_session(db_session, data.theme_id, fields, _now())
            return await _session_view(db_session, session_id, public=False)

    @put("/sessions/{session_id:uuid}")
    async def update_session(self, session_id: uuid.UUID, data: SessionInput, service: Service) -> dict[str, Any]:
        fields = data.session_fields(_settings(service))
        _check_provider(_settings(service), fields.provider)
        async with service.db.transaction() as db_session:
            await rules.update_session(db_session, service.outbox, session_id, fields, _now(), theme_id=data.theme_id)
            return await _session_view(db_session, session_id, public=False)

    @post("/sessions/{session_id:uuid}/publish", status_code=200)
    async def publish(self, session_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            await rules.publish(db_session, service.outbox, session_id, _now())
            return await _session_view(db_session, session_id, public=False)

    @post("/sessions/{session_id:uuid}/reschedule", status_code=200)
    async def reschedule(self, session_id: uuid.UUID, data: RescheduleInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            await rules.reschedule(
                db_session,
                service.outbox,
                session_id,
                data.local_start,  # type: ignore[arg-type]
                data.timezone,
                data.duration_minutes,
                _now(),
            )
            return await _session_view(db_session, session_id, public=False)

    @post("/sessions/{session_id:uuid}/cancel", status_code=200)
    async def cancel(self, session_id: uuid.UUID, data: CancelInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            await rules.cancel(db_session, service.outbox, session_id, data.reason, _now())
            return await _session_view(db_session, session_id, public=False)

    @get("/series")
    async def series_list(self, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            rows = (await db_session.execute(_series_query().order_by(series.c.created_at.desc()))).all()
        return {"items": [_series_view(row) for row in rows]}

    @get("/series/{series_id:uuid}")
    async def series_detail(self, series_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            return await _series_with_occurrences(db_session, series_id)

    @post("/series", status_code=201)
    async def create_series(self, data: SeriesInput, service: Service) -> dict[str, Any]:
        plan = data.plan(_settings(service))
        _check_provider(_settings(service), plan.template.provider)
        async with service.db.transaction() as db_session:
            series_id = await rules.create_series(db_session, data.theme_id, plan, _now())
            return await _series_with_occurrences(db_session, series_id)

    @put("/series/{series_id:uuid}")
    async def update_series(self, series_id: uuid.UUID, data: SeriesInput, service: Service) -> dict[str, Any]:
        plan = data.plan(_settings(service))
        _check_provider(_settings(service), plan.template.provider)
        async with service.db.transaction() as db_session:
            await rules.update_series(db_session, service.outbox, series_id, plan, _now())
            return await _series_with_occurrences(db_session, series_id)

    @post("/series/{series_id:uuid}/publish", status_code=200)
    async def publish_series(self, series_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            await _series_exists(db_session, series_id)
            await rules.publish_series(db_session, service.outbox, series_id, _now())
            return await _series_with_occurrences(db_session, series_id)

    @post("/series/{series_id:uuid}/cancel", status_code=200)
    async def cancel_series(self, series_id: uuid.UUID, data: CancelInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            await _series_exists(db_session, series_id)
            await rules.cancel_series(db_session, service.outbox, series_id, data.reason, _now())
            return await _series_with_occurrences(db_session, series_id)

    @post("/sessions/{session_id:uuid}/join", status_code=200)
    async def join_session(
        self, session_id: uuid.UUID, data: JoinInput, service: Service, providers: Any
    ) -> dict[str, Any]:
        """The animator's way in: a moderator's URL."""
        return await _join_session(service, providers, session_id, data.name, moderator=True)

    @post("/rooms/{room_id:uuid}/join", status_code=200)
    async def join_room(self, room_id: uuid.UUID, data: JoinInput, service: Service, providers: Any) -> dict[str, Any]:
        """An organiser's way into a permanent room, as its moderator (no entry code asked)."""
        async with service.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    select(permanent_rooms).where(
                        permanent_rooms.c.id == room_id, permanent_rooms.c.closed_at.is_(None)
                    )
                )
            ).one_or_none()
        if row is None:
            raise rules.not_found("room")
        return await _join_permanent_room(service, providers, row, data.name, moderator=True)

    @get("/rooms")
    async def rooms_list(self, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            rows = (
                await db_session.execute(
                    select(permanent_rooms).order_by(permanent_rooms.c.closed_at.is_not(None), permanent_rooms.c.name)
                )
            ).all()
        return {"items": [_room_view(row, _settings(service)) for row in rows]}

    @post("/rooms", status_code=201)
    async def open_room(self, data: RoomInput, service: Service) -> dict[str, Any]:
        settings = _settings(service)
        provider = data.provider or settings.default_provider
        _check_provider(settings, provider)
        async with service.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    permanent_rooms.insert()
                    .values(
                        id=uuid.uuid4(),
                        name=data.name,
                        description=data.description,
                        provider=provider,
                        link_token=_link_token(),
                        entry_code_hash=rules.entry_codes.hash(data.entry_code) if data.entry_code else None,
                        created_at=_now(),
                    )
                    .returning(*permanent_rooms.c)
                )
            ).one()
        return _room_view(row, settings)

    @post("/rooms/{room_id:uuid}/close", status_code=200)
    async def close_room(self, room_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    permanent_rooms.update()
                    .where(permanent_rooms.c.id == room_id)
                    .values(closed_at=func.coalesce(permanent_rooms.c.closed_at, _now()))
                    .returning(*permanent_rooms.c)
                )
            ).one_or_none()
        if row is None:
            raise rules.not_found("room")
        return _room_view(row, _settings(service))


class PermanentRoomsApi(Controller):
    """The public side of a permanent room: its perpetual link."""

    path = "/internal/rooms"

    @get("/{link_token:str}")
    async def room(self, link_token: str, service: Service) -> dict[str, Any]:
        row = await _open_room(service, link_token)
        view = _room_view(row, _settings(service))
        del view["link_token"], view["id"]
        return view

    @post("/{link_token:str}/join", status_code=200)
    async def join(self, link_token: str, data: RoomJoinInput, service: Service, providers: Any) -> dict[str, Any]:
        row = await _open_room(service, link_token)
        if not rules.entry_code_matches(row.entry_code_hash, data.entry_code or ""):
            raise CatalogueError(403, "wrong_entry_code", "This entry code is not the room's.", "entry_code")
        return await _join_permanent_room(service, providers, row, data.name, moderator=False)


def _calendar(service: Service, rows: list[Any], name: str) -> Response[bytes]:
    base = _settings(service).public_base_url.rstrip("/")
    body = ics.planning_calendar([row._mapping for row in rows], name=name, url=f"{base}/planning")
    return Response(body, media_type="text/calendar")


async def _open_room(service: Service, link_token: str) -> Any:
    if not 20 <= len(link_token) <= 43:
        raise rules.not_found("room")
    async with service.db.transaction() as db_session:
        row = (
            await db_session.execute(
                select(permanent_rooms).where(
                    permanent_rooms.c.link_token == link_token, permanent_rooms.c.closed_at.is_(None)
                )
            )
        ).one_or_none()
    if row is None:
        raise rules.not_found("room")
    return row


def _link_token() -> str:
    return secrets.token_urlsafe(24)


def _room_view(row: Any, settings: CatalogueSettings) -> dict[str, Any]:
    phone = dial_in_of(settings, row.id)
    return {
        "id": str(row.id),
        "name": row.name,
        "description": row.description,
        "provider": row.provider,
        "link_token": row.link_token,
        "entry_code": row.entry_code_hash is not None,
        "phone_number": phone["phone"],
        "pin": phone["pin"],
        "created_at": row.created_at.isoformat(),
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
    }


def _series_query() -> Any:
    return select(series, themes.c.title.label("theme_title")).join(themes, themes.c.id == series.c.theme_id)


def _series_view(row: Any) -> dict[str, Any]:
    recurrence = rules.recurrence_of(row)
    template = {key: value for key, value in row.template.items() if key != "entry_code_hash"}
    return {
        "id": str(row.id),
        "theme_id": str(row.theme_id),
        "theme_title": row.theme_title,
        "rrule": row.rrule,
        "recurrence": {
            "frequency": recurrence.frequency,
            "interval": recurrence.interval,
            "weekdays": list(recurrence.weekdays),
            "monthly_position": recurrence.monthly_position,
            "count": recurrence.count,
            "until": recurrence.until.isoformat() if recurrence.until else None,
        },
        "local_start": row.first_local_start.strftime("%Y-%m-%dT%H:%M"),
        "timezone": row.timezone,
        "template": template,
    }


async def _series_exists(db_session: Any, series_id: uuid.UUID) -> None:
    if await db_session.scalar(select(series.c.id).where(series.c.id == series_id)) is None:
        raise rules.not_found("series")


async def _series_with_occurrences(db_session: Any, series_id: uuid.UUID) -> dict[str, Any]:
    row = (await db_session.execute(_series_query().where(series.c.id == series_id))).one_or_none()
    if row is None:
        raise rules.not_found("series")
    occurrences = (
        await db_session.execute(
            select(*rules.SHOWN_COLUMNS, themes.c.title.label("theme_title"))
            .join(themes, themes.c.id == sessions.c.theme_id)
            .where(sessions.c.series_id == series_id)
            .order_by(sessions.c.starts_at)
        )
    ).all()
    return _series_view(row) | {"occurrences": [rules.shown(occurrence) for occurrence in occurrences]}


def _zone(name: str) -> str:
    try:
        local_time.zone(name)
    except local_time.UnknownTimeZone as exc:
        raise CatalogueError(400, exc.code, str(exc), "tz") from exc
    return name


def _room_secret(settings: CatalogueSettings) -> str:
    secret = settings.room_secret.get_secret_value()
    if not secret:
        raise ProblemError(503, "rooms_not_configured", "Rooms are not configured", "CATALOGUE_ROOM_SECRET is unset.")
    return secret


def _check_provider(settings: CatalogueSettings, provider: str) -> None:
    configured = rooms_configured(settings)
    if provider not in configured:
        raise CatalogueError(
            400, "provider_not_configured", f"The {provider} provider is not configured on this server.", "provider"
        )


def rooms_configured(settings: CatalogueSettings) -> set[str]:
    configured = set()
    if settings.bbb_api_url and settings.bbb_secret.get_secret_value():
        configured.add("bbb")
    if settings.jitsi_app_secret.get_secret_value():
        configured.add("jitsi")
    return configured


def providers_from_settings(settings: CatalogueSettings) -> dict[str, RoomProvider]:
    """The room providers this server has the settings of."""
    providers: dict[str, RoomProvider] = {}
    if "bbb" in rooms_configured(settings):
        providers["bbb"] = rooms.BigBlueButtonProvider(
            settings.bbb_api_url or "",
            settings.bbb_secret.get_secret_value(),
            dial_number=settings.dial_in_phone,
            algorithm=settings.bbb_checksum_algorithm,
        )
    if "jitsi" in rooms_configured(settings):
        providers["jitsi"] = rooms.JitsiProvider(
            settings.jitsi_domain,
            settings.jitsi_app_id,
            settings.jitsi_app_secret.get_secret_value(),
            audience=settings.jitsi_audience,
        )
    return providers


async def _join(
    providers: dict[str, RoomProvider],
    provider: str,
    room: Room,
    name: str,
    moderator: bool,
    participant_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A fresh provider URL for `name` (a new person id each time unless `participant_id` names it: the provider
    tells two joins apart), with the dial-in PIN; the room is opened first (idempotent), never outside its window."""
    adapter = providers.get(provider)
    if adapter is None:
        raise ProblemError(503, "provider_not_configured", "Provider not configured", f"{provider} is not set up.")
    person = Participant(user_id=str(participant_id or uuid.uuid4()), display_name=name)
    try:
        await adapter.open(room)
        return {"url": adapter.join_url(room, person, moderator), "pin": room.voice_bridge}
    except RoomNotOpen as exc:
        raise ProblemError(409, "room_not_open", "The room is not open", str(exc)) from exc
    except RoomError as exc:
        raise ProblemError(502, "provider_error", "The conference provider failed", exc.key) from exc


def refused(request: Request[Any, Any, Any], exc: CatalogueError) -> Response[dict[str, Any]]:
    members = {"field": exc.field} if exc.field else {}
    return problem_response(request, ProblemError(exc.status, exc.code, exc.detail, exc.detail, **members))


def conflict(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    return problem_response(
        request,
        ProblemError(409, "conflict", "Changed at the same time", "Someone changed this at the same time; try again."),
    )


CONTROLLERS = [PlanningApi, BackOfficeCatalogueApi, PermanentRoomsApi]
EXCEPTION_HANDLERS = {CatalogueError: refused, IntegrityError: conflict}
