"""The catalogue's rules: themes, sessions and their life (draft, published, cancelled, finished), series, and
what enrollment tells us of enrolments. No HTTP or Kafka here: functions take a database session inside the
caller's transaction and write their events to the outbox in it (a change and its event commit together).

The rules, each enforced where the row is changed, under the session's row lock (`FOR UPDATE`), so that an
organiser's edit and an enrolment arriving at the same time see one another:
- times are entered as a wall clock in an IANA zone (local_time): an unknown zone or a time skipped by the clocks
  is refused, an ambiguous one is its first occurrence; a start must be ahead when it is set or published;
- a published session never goes back to draft; cancelled and finished sessions are frozen;
- once an institution is enrolled, the price and the duration are fixed, and the capacity cannot go below the
  number enrolled;
- publishing plans the scheduler's offsets (scheduler.plan_session), rescheduling plans them again, cancelling
  removes the pending ones. Published changes are told: SessionScheduled, SessionUpdated (terms),
  SessionRescheduled (time), SessionCancelled.
Series (series.py) make draft sessions, one per occurrence, matched to the rule by the occurrence's local date:
editing a series changes its occurrences still to come that were not edited on their own (`detached`)."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalogue import local_time, scheduler
from catalogue.models import enrolments, series, sessions, themes
from catalogue.series import Recurrence, SeriesError, from_rrule, occurrences, to_rrule
from contracts.events.catalogue import (
    SessionCancelled,
    SessionRescheduled,
    SessionScheduled,
    SessionUpdated,
)
from servicekit.outbox import Outbox

Provider = Literal["bbb", "jitsi"]
entry_codes = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class CatalogueError(Exception):
    """A change refused, with a stable code, the HTTP status it maps to, and the field at fault if any."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field


def not_found(what: str = "session") -> CatalogueError:
    return CatalogueError(404, "not_found", f"No such {what}.")


@dataclass(frozen=True)
class ThemeFields:
    title: str
    description: str = ""
    audience: str = ""
    prerequisites: str = ""
    image_url: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionFields:
    """A session as the organiser types it. `local_end`, when given, sets the duration."""

    title: str
    local_start: datetime  # naive wall clock in `timezone`
    timezone: str = local_time.DEFAULT_TIME_ZONE
    duration_minutes: int = 60
    local_end: datetime | None = None
    description: str = ""
    animator: str = ""
    capacity: int | None = None
    price_tokens: int = 1
    premium_price_tokens: int | None = None
    access: Literal["open", "code"] = "open"
    entry_code: str | None = None  # write-only; kept as an argon2 hash
    waiting_message: str = ""
    agenda: str = ""
    provider: Provider = "bbb"


@dataclass(frozen=True)
class Times:
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int


def resolve_times(local_start: datetime, tz: str, duration_minutes: int, local_end: datetime | None = None) -> Times:
    """UTC start and end from what the organiser typed (refusals carry the field to fix)."""
    try:
        local_time.zone(tz)
    except local_time.UnknownTimeZone as exc:
        raise CatalogueError(400, exc.code, str(exc), "timezone") from exc
    try:
        starts_at = local_time.to_utc(local_start, tz)
    except local_time.NonexistentLocalTime as exc:
        raise CatalogueError(400, exc.code, str(exc), "local_start") from exc
    if local_end is not None:
        try:
            ends_at = local_time.to_utc(local_end, tz)
        except local_time.NonexistentLocalTime as exc:
            raise CatalogueError(400, exc.code, str(exc), "local_end") from exc
        if ends_at <= starts_at:
            raise CatalogueError(400, "ends_before_start", "The end must come after the start.", "local_end")
        duration_minutes = int((ends_at - starts_at).total_seconds() // 60)
    if not 15 <= duration_minutes <= 480:
        raise CatalogueError(400, "invalid_duration", "A session lasts from 15 minutes to 8 hours.", "duration_minutes")
    return Times(starts_at, starts_at + timedelta(minutes=duration_minutes), duration_minutes)


def _check_ahead(starts_at: datetime, now: datetime) -> None:
    if starts_at <= now:
        raise CatalogueError(400, "start_in_past", "The start is in the past: choose a later date.", "local_start")


def _check_terms(fields: SessionFields) -> None:
    if fields.access == "code" and fields.entry_code is not None and len(fields.entry_code.strip()) < 4:
        raise CatalogueError(400, "entry_code_too_short", "An entry code has at least 4 characters.", "entry_code")


# --- themes -------------------------------------------------------------------------------------------------------


async def create_theme(session: AsyncSession, fields: ThemeFields, now: datetime) -> uuid.UUID:
    theme_id = uuid.uuid4()
    await session.execute(
        themes.insert().values(id=theme_id, status="active", created_at=now, updated_at=now, **_theme_values(fields))
    )
    return theme_id


async def update_theme(
    session: AsyncSession, outbox: Outbox, theme_id: uuid.UUID, fields: ThemeFields, now: datetime
) -> None:
    """Change a theme; a new title is told to the services that copy it (SessionUpdated for each of the theme's
    published sessions: certificates and statistics name the theme)."""
    before = await session.scalar(select(themes.c.title).where(themes.c.id == theme_id).with_for_update())
    if before is None:
        raise not_found("theme")
    await session.execute(update(themes).where(themes.c.id == theme_id).values(updated_at=now, **_theme_values(fields)))
    if fields.title == before:
        return
    published = await session.execute(
        select(sessions)
        .where(sessions.c.theme_id == theme_id, sessions.c.status == "published")
        .order_by(sessions.c.starts_at)
    )
    for row in published:
        await outbox.add(session, SessionUpdated(**_terms(row), theme_title=fields.title))


async def set_theme_status(
    session: AsyncSession, theme_id: uuid.UUID, status: Literal["active", "archived"], now: datetime
) -> None:
    changed = await session.execute(update(themes).where(themes.c.id == theme_id).values(status=status, updated_at=now))
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        raise not_found("theme")


def _theme_values(fields: ThemeFields) -> dict[str, Any]:
    values = fields.__dict__ | {"tags": list(dict.fromkeys(tag.strip() for tag in fields.tags if tag.strip()))}
    return values


async def _active_theme(session: AsyncSession, theme_id: uuid.UUID) -> Row[Any]:
    theme = (await session.execute(select(themes).where(themes.c.id == theme_id))).one_or_none()
    if theme is None:
        raise CatalogueError(400, "unknown_theme", "No such theme.", "theme_id")
    if theme.status != "active":
        raise CatalogueError(409, "theme_archived", "This theme is archived: restore it first.", "theme_id")
    return theme


# --- sessions -----------------------------------------------------------------------------------------------------


async def create_session(
    session: AsyncSession,
    theme_id: uuid.UUID,
    fields: SessionFields,
    now: datetime,
    *,
    series_id: uuid.UUID | None = None,
    occurrence_local: datetime | None = None,
    entry_code_hash: str | None = None,
) -> uuid.UUID:
    """A draft session. `entry_code_hash`: a series' code, hashed once for all its occurrences."""
    await _active_theme(session, theme_id)
    _check_terms(fields)
    times = resolve_times(fields.local_start, fields.timezone, fields.duration_minutes, fields.local_end)
    _check_ahead(times.starts_at, now)
    code_hash = _entry_code_hash(fields, entry_code_hash)
    if fields.access == "code" and code_hash is None:
        raise CatalogueError(400, "entry_code_required", "Choose the entry code people will type.", "entry_code")
    session_id = uuid.uuid4()
    await session.execute(
        sessions.insert().values(
            id=session_id,
            theme_id=theme_id,
            series_id=series_id,
            occurrence_local=occurrence_local,
            detached=False,
            status="draft",
            enrolled_count=0,
            sequence=0,
            created_at=now,
            updated_at=now,
            **_term_values(fields, times),
            entry_code_hash=code_hash,
        )
    )
    return session_id


def _term_values(fields: SessionFields, times: Times) -> dict[str, Any]:
    return {
        "title": fields.title,
        "description": fields.description,
        "animator": fields.animator,
        "starts_at": times.starts_at,
        "ends_at": times.ends_at,
        "duration_minutes": times.duration_minutes,
        "timezone": fields.timezone,
        "capacity": fields.capacity,
        "price_tokens": fields.price_tokens,
        "premium_price_tokens": fields.premium_price_tokens,
        "access": fields.access,
        "waiting_message": fields.waiting_message,
        "agenda": fields.agenda,
        "provider": fields.provider,
    }


def _entry_code_hash(fields: SessionFields, current: str | None) -> str | None:
    if fields.access != "code":
        return None
    if fields.entry_code:
        return entry_codes.hash(fields.entry_code.strip())
    return current


async def locked(session: AsyncSession, session_id: uuid.UUID) -> Row[Any]:
    row = (await session.execute(select(sessions).where(sessions.c.id == session_id).with_for_update())).one_or_none()
    if row is None:
        raise not_found()
    return row


def _check_changeable(row: Row[Any]) -> None:
    if row.status == "cancelled":
        raise CatalogueError(409, "session_cancelled", "This session is cancelled: it can no longer change.")
    if row.status == "finished":
        raise CatalogueError(409, "session_finished", "This session is over: it can no longer change.")


async def update_session(
    session: AsyncSession,
    outbox: Outbox,
    session_id: uuid.UUID,
    fields: SessionFields,
    now: datetime,
    *,
    theme_id: uuid.UUID | None = None,
) -> None:
    """Change a session's terms, time and theme (an active one); a series occurrence changed this way leaves the
    series (`detached`)."""
    row = await locked(session, session_id)
    if theme_id is not None and theme_id != row.theme_id:
        _check_changeable(row)
        await _active_theme(session, theme_id)
    await _apply(session, outbox, row, fields, now, detach=row.series_id is not None, theme_id=theme_id)


async def _apply(
    session: AsyncSession,
    outbox: Outbox,
    row: Row[Any],
    fields: SessionFields,
    now: datetime,
    *,
    detach: bool,
    series_code_hash: str | None = None,
    theme_id: uuid.UUID | None = None,
) -> None:
    _check_changeable(row)
    _check_terms(fields)
    times = resolve_times(fields.local_start, fields.timezone, fields.duration_minutes, fields.local_end)
    moved = times.starts_at != row.starts_at or times.ends_at != row.ends_at
    if moved:
        _check_ahead(times.starts_at, now)
    if row.enrolled_count > 0:
        if fields.price_tokens != row.price_tokens or fields.premium_price_tokens != row.premium_price_tokens:
            raise CatalogueError(
                409, "price_locked", "Institutions are enrolled: the price can no longer change.", "price_tokens"
            )
        if times.duration_minutes != row.duration_minutes:
            raise CatalogueError(
                409,
                "duration_locked",
                "Institutions are enrolled: the duration can no longer change.",
                "duration_minutes",
            )
    if fields.capacity is not None and fields.capacity < row.enrolled_count:
        raise CatalogueError(
            409,
            "capacity_below_enrolments",
            f"{row.enrolled_count} institutions are enrolled: the capacity cannot be lower.",
            "capacity",
        )
    entry_code_hash = _entry_code_hash(fields, series_code_hash or row.entry_code_hash)
    if fields.access == "code" and entry_code_hash is None:
        raise CatalogueError(400, "entry_code_required", "Choose the entry code people will type.", "entry_code")
    changed = (
        await session.execute(
            update(sessions)
            .where(sessions.c.id == row.id)
            .values(
                updated_at=now,
                entry_code_hash=entry_code_hash,
                detached=row.detached or detach,
                theme_id=theme_id or row.theme_id,
                **_term_values(fields, times),
            )
            .returning(*sessions.c)
        )
    ).one()
    if row.status != "published":
        return
    if moved or _terms(changed) != _terms(row):
        await session.execute(update(sessions).where(sessions.c.id == row.id).values(sequence=sessions.c.sequence + 1))
    if moved:
        await scheduler.replan_session(session, row.id, times.starts_at, times.ends_at, now)
        await outbox.add(
            session,
            SessionRescheduled(
                session_id=row.id,
                previous_starts_at=row.starts_at,
                starts_at=times.starts_at,
                duration_minutes=times.duration_minutes,
                timezone=fields.timezone,
            ),
        )
    if _terms(changed) != _terms(row) or row.entry_code_hash != entry_code_hash:
        await outbox.add(session, SessionUpdated(**await _told_terms(session, changed)))


def _terms(row: Row[Any]) -> dict[str, Any]:
    """What SessionScheduled and SessionUpdated tell of a session."""
    return {
        "session_id": row.id,
        "theme_id": row.theme_id,
        "title": row.title,
        "starts_at": row.starts_at,
        "duration_minutes": row.duration_minutes,
        "timezone": row.timezone,
        "capacity": row.capacity,
        "price_tokens": row.price_tokens,
        "premium_price_tokens": row.premium_price_tokens,
        "access": row.access,
        "provider": row.provider,
    }


async def _told_terms(session: AsyncSession, row: Row[Any]) -> dict[str, Any]:
    """The terms with the theme's current title, as SessionScheduled and SessionUpdated carry them."""
    theme_title = await session.scalar(select(themes.c.title).where(themes.c.id == row.theme_id))
    return _terms(row) | {"theme_title": theme_title}


async def publish(session: AsyncSession, outbox: Outbox, session_id: uuid.UUID, now: datetime) -> None:
    row = await locked(session, session_id)
    _check_changeable(row)
    if row.status != "draft":
        raise CatalogueError(409, "not_draft", "This session is already published.")
    await _active_theme(session, row.theme_id)
    _check_ahead(row.starts_at, now)
    published = (
        await session.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(status="published", published_at=now, updated_at=now)
            .returning(*sessions.c)
        )
    ).one()
    await scheduler.plan_session(session, session_id, row.starts_at, row.ends_at, now)
    await outbox.add(session, SessionScheduled(**await _told_terms(session, published)))


async def reschedule(
    session: AsyncSession,
    outbox: Outbox,
    session_id: uuid.UUID,
    local_start: datetime,
    tz: str,
    duration_minutes: int | None,
    now: datetime,
) -> None:
    """Move a session; its enrolments keep (enrollment hears SessionRescheduled)."""
    row = await locked(session, session_id)
    current = _fields_of(row)
    moved = replace(
        current,
        local_start=local_start,
        timezone=tz,
        duration_minutes=duration_minutes or row.duration_minutes,
        local_end=None,
    )
    await _apply(session, outbox, row, moved, now, detach=row.series_id is not None)


async def cancel(session: AsyncSession, outbox: Outbox, session_id: uuid.UUID, reason: str, now: datetime) -> None:
    """Cancel a session. A draft is simply withdrawn; a published one is announced (refunds happen elsewhere)."""
    row = await locked(session, session_id)
    _check_changeable(row)
    await session.execute(
        update(sessions)
        .where(sessions.c.id == session_id)
        .values(
            status="cancelled",
            cancel_reason=reason,
            cancelled_at=now,
            updated_at=now,
            sequence=sessions.c.sequence + 1,
        )
    )
    if row.status == "published":
        await scheduler.unplan_session(session, session_id)
        await outbox.add(session, SessionCancelled(session_id=session_id, reason=reason, cancelled_at=now))


def _fields_of(row: Row[Any]) -> SessionFields:
    """A session's current terms as the organiser would type them (entry code: unchanged)."""
    return SessionFields(
        title=row.title,
        local_start=local_time.to_local(row.starts_at, row.timezone).replace(tzinfo=None),
        timezone=row.timezone,
        duration_minutes=row.duration_minutes,
        description=row.description,
        animator=row.animator,
        capacity=row.capacity,
        price_tokens=row.price_tokens,
        premium_price_tokens=row.premium_price_tokens,
        access=row.access,
        waiting_message=row.waiting_message,
        agenda=row.agenda,
        provider=row.provider,
    )


def entry_code_matches(entry_code_hash: str | None, code: str) -> bool:
    """Whether `code` opens what `entry_code_hash` guards (a session with access `code`, a permanent room); no hash:
    no code asked."""
    if not entry_code_hash:
        return True
    try:
        return entry_codes.verify(entry_code_hash, code.strip())
    except (VerificationError, InvalidHashError):
        return False


# --- series -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPlan:
    recurrence: Recurrence
    local_start: datetime  # the first occurrence's wall clock
    template: SessionFields  # local_start unused: each occurrence has its own


def _occurrence_starts(plan: SeriesPlan) -> list[datetime]:
    """The wall-clock starts of the series' occurrences, in its zone."""
    tz = plan.template.timezone
    try:
        starts = occurrences(plan.recurrence, plan.local_start, tz)
    except local_time.UnknownTimeZone as exc:
        raise CatalogueError(400, exc.code, str(exc), "timezone") from exc
    except local_time.NonexistentLocalTime as exc:
        raise CatalogueError(400, exc.code, str(exc), "local_start") from exc
    except SeriesError as exc:
        raise CatalogueError(400, f"series_{exc.code}", str(exc), "recurrence") from exc
    return [local_time.to_local(start, tz).replace(tzinfo=None) for start in starts]


def _template_json(template: SessionFields, code_hash: str | None) -> dict[str, Any]:
    """The template as stored: the entry code only as its hash, shared by the occurrences."""
    values = {
        key: value for key, value in template.__dict__.items() if key not in ("local_start", "local_end", "entry_code")
    }
    return values | {"entry_code_hash": code_hash if template.access == "code" else None}


def template_of(row: Row[Any]) -> SessionFields:
    values = {key: value for key, value in row.template.items() if key != "entry_code_hash"}
    return SessionFields(local_start=row.first_local_start, **values)


def _series_code_hash(template: SessionFields, stored: str | None) -> str | None:
    if template.access != "code":
        return None
    return entry_codes.hash(template.entry_code.strip()) if template.entry_code else stored


async def create_series(session: AsyncSession, theme_id: uuid.UUID, plan: SeriesPlan, now: datetime) -> uuid.UUID:
    """A series and its occurrences as drafts; occurrences already past are left out (the first must be ahead)."""
    await _active_theme(session, theme_id)
    starts = _occurrence_starts(plan)
    resolve_times(plan.local_start, plan.template.timezone, plan.template.duration_minutes)
    if local_time.to_utc(starts[0], plan.template.timezone) <= now:
        raise CatalogueError(
            400, "start_in_past", "The first session is in the past: choose a later date.", "local_start"
        )
    series_id = uuid.uuid4()
    code_hash = _series_code_hash(plan.template, None)
    await session.execute(
        series.insert().values(
            id=series_id,
            theme_id=theme_id,
            rrule=to_rrule(plan.recurrence),
            first_local_start=plan.local_start,
            timezone=plan.template.timezone,
            template=_template_json(plan.template, code_hash),
            created_at=now,
            updated_at=now,
        )
    )
    for start in starts:
        await create_session(
            session,
            theme_id,
            replace(plan.template, local_start=start, local_end=None, entry_code=None),
            now,
            series_id=series_id,
            occurrence_local=start,
            entry_code_hash=code_hash,
        )
    return series_id


async def update_series(
    session: AsyncSession, outbox: Outbox, series_id: uuid.UUID, plan: SeriesPlan, now: datetime
) -> None:
    """Apply a new rule and template to the occurrences still to come, matched by local date: those the rule keeps
    take the template (published ones are rescheduled when their time changes), those it drops are withdrawn
    (drafts) or cancelled (published), new dates become drafts. Occurrences edited on their own, and past ones,
    stay as they are."""
    current = (await session.execute(select(series).where(series.c.id == series_id).with_for_update())).one_or_none()
    if current is None:
        raise not_found("series")
    await _active_theme(session, current.theme_id)
    starts = _occurrence_starts(plan)
    code_hash = _series_code_hash(plan.template, current.template.get("entry_code_hash"))
    await session.execute(
        update(series)
        .where(series.c.id == series_id)
        .values(
            rrule=to_rrule(plan.recurrence),
            first_local_start=plan.local_start,
            timezone=plan.template.timezone,
            template=_template_json(plan.template, code_hash),
            updated_at=now,
        )
    )
    wanted = {start.date(): start for start in starts}
    rows = (
        await session.execute(
            select(sessions)
            .where(sessions.c.series_id == series_id, sessions.c.starts_at > now)
            .order_by(sessions.c.starts_at)
            .with_for_update()
        )
    ).all()
    seen: set[date] = set()
    for row in rows:
        day = row.occurrence_local.date()
        seen.add(day)
        if row.detached or row.status in ("cancelled", "finished"):
            continue
        if day not in wanted:
            await cancel(session, outbox, row.id, "Séance retirée de sa série", now)
            continue
        fields = replace(plan.template, local_start=wanted[day], local_end=None, entry_code=None)
        await _apply(session, outbox, row, fields, now, detach=False, series_code_hash=code_hash)
        await session.execute(update(sessions).where(sessions.c.id == row.id).values(occurrence_local=wanted[day]))
    past = {
        value.date()
        for value in await session.scalars(
            select(sessions.c.occurrence_local).where(sessions.c.series_id == series_id, sessions.c.starts_at <= now)
        )
    }
    for day, start in wanted.items():
        if day in seen or day in past or local_time.to_utc(start, plan.template.timezone) <= now:
            continue
        await create_session(
            session,
            current.theme_id,
            replace(plan.template, local_start=start, local_end=None, entry_code=None),
            now,
            series_id=series_id,
            occurrence_local=start,
            entry_code_hash=code_hash,
        )


async def publish_series(session: AsyncSession, outbox: Outbox, series_id: uuid.UUID, now: datetime) -> int:
    """Publish every draft occurrence still to come; the number published."""
    drafts = await session.scalars(
        select(sessions.c.id)
        .where(sessions.c.series_id == series_id, sessions.c.status == "draft", sessions.c.starts_at > now)
        .order_by(sessions.c.starts_at)
    )
    count = 0
    for session_id in drafts.all():
        await publish(session, outbox, session_id, now)
        count += 1
    return count


async def cancel_series(session: AsyncSession, outbox: Outbox, series_id: uuid.UUID, reason: str, now: datetime) -> int:
    """Cancel every occurrence still to come; the number cancelled."""
    upcoming = await session.scalars(
        select(sessions.c.id)
        .where(
            sessions.c.series_id == series_id,
            sessions.c.status.in_(("draft", "published")),
            sessions.c.starts_at > now,
        )
        .order_by(sessions.c.starts_at)
    )
    count = 0
    for session_id in upcoming.all():
        await cancel(session, outbox, session_id, reason, now)
        count += 1
    return count


def recurrence_of(row: Row[Any]) -> Recurrence:
    return from_rrule(row.rrule)


# --- enrolments, as enrollment's events tell them -----------------------------------------------------------------


async def enrolment_confirmed(
    session: AsyncSession, enrollment_id: uuid.UUID, session_id: uuid.UUID, account_id: uuid.UUID
) -> None:
    """Count an enrolment once (a redelivered Enrolled changes nothing)."""
    inserted = await session.execute(
        pg_insert(enrolments)
        .values(enrollment_id=enrollment_id, session_id=session_id, account_id=account_id, active=True)
        .on_conflict_do_nothing()
        .returning(enrolments.c.enrollment_id)
    )
    if inserted.first() is not None:
        await _count(session, session_id, +1)


async def enrolment_cancelled(session: AsyncSession, enrollment_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Give the place back once; the cancellation of an enrolment never confirmed changes nothing."""
    changed = await session.execute(
        update(enrolments)
        .where(enrolments.c.enrollment_id == enrollment_id, enrolments.c.active.is_(True))
        .values(active=False)
        .returning(enrolments.c.enrollment_id)
    )
    if changed.first() is not None:
        await _count(session, session_id, -1)


async def _count(session: AsyncSession, session_id: uuid.UUID, delta: int) -> None:
    await session.execute(
        update(sessions)
        .where(sessions.c.id == session_id)
        .values(enrolled_count=func.greatest(sessions.c.enrolled_count + delta, 0))
    )


# --- reading ------------------------------------------------------------------------------------------------------


# A session's columns but its search vector (large, and only ever used inside the database).
SHOWN_COLUMNS = tuple(column for column in sessions.c if column.name != "search")


def places_left(row: Mapping[str, Any]) -> int | None:
    if row["capacity"] is None:
        return None
    return max(row["capacity"] - row["enrolled_count"], 0)


def shown(row: Row[Any], theme_title: str | None = None) -> dict[str, Any]:
    """A session as the API shows it (docs/catalogue.md, SessionView)."""
    values = row._mapping
    return {
        "id": str(row.id),
        "theme_id": str(row.theme_id),
        "theme_title": theme_title if theme_title is not None else values.get("theme_title"),
        "series_id": str(row.series_id) if row.series_id else None,
        "title": row.title,
        "description": row.description,
        "animator": row.animator,
        "starts_at": row.starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ends_at": row.ends_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "timezone": row.timezone,
        "local_start": local_time.to_local(row.starts_at, row.timezone).strftime("%Y-%m-%dT%H:%M"),
        "local_end": local_time.to_local(row.ends_at, row.timezone).strftime("%Y-%m-%dT%H:%M"),
        "duration_minutes": row.duration_minutes,
        "capacity": row.capacity,
        "enrolled_count": row.enrolled_count,
        "places_left": places_left(values),
        "price_tokens": row.price_tokens,
        "premium": row.premium_price_tokens is not None,
        "premium_price_tokens": row.premium_price_tokens,
        "access": row.access,
        "waiting_message": row.waiting_message,
        "agenda": row.agenda,
        "provider": row.provider,
        "status": row.status,
        "cancel_reason": row.cancel_reason,
        "detached": row.detached,
    }


PUBLIC_STATUSES = ("published", "cancelled", "finished")


@dataclass(frozen=True)
class PlanningQuery:
    month: tuple[int, int] | None = None  # (year, month) in `tz`
    tz: str = local_time.DEFAULT_TIME_ZONE
    theme_id: uuid.UUID | None = None
    audience: str | None = None
    text: str | None = None
    available: bool = False
    offset: int = 0
    limit: int = 50


def month_bounds(year: int, month: int, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants a month of the viewer's zone starts and ends at."""
    first = datetime(year, month, 1)
    following = datetime(year + (month == 12), month % 12 + 1, 1)
    return local_time.to_utc(first, tz, shift_gap=True), local_time.to_utc(following, tz, shift_gap=True)


async def planning(session: AsyncSession, query: PlanningQuery, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """The public planning: published sessions (and cancelled or finished ones of the period), soonest first."""
    conditions = [sessions.c.status.in_(PUBLIC_STATUSES)]
    if query.month is not None:
        start, end = month_bounds(*query.month, query.tz)
        conditions += [sessions.c.starts_at >= start, sessions.c.starts_at < end]
    else:
        conditions += [sessions.c.ends_at > now, sessions.c.status != "finished"]
    if query.theme_id is not None:
        conditions.append(sessions.c.theme_id == query.theme_id)
    if query.audience:
        conditions.append(themes.c.audience.ilike(f"%{_escaped(query.audience)}%", escape="\\"))
    if query.text:
        words = " & ".join(f"{_lexeme(word)}:*" for word in query.text.split() if _lexeme(word))
        if words:
            conditions.append(sessions.c.search.bool_op("@@")(func.to_tsquery("simple", words)))
    if query.available:
        conditions.append(sessions.c.status == "published")
        conditions.append(or_(sessions.c.capacity.is_(None), sessions.c.enrolled_count < sessions.c.capacity))
    # Two lean queries rather than one window count: the page reads 50 rows in start order from the index, the
    # count reads no wide column (a window count would carry every matching row's text through the sort).
    joined = sessions.join(themes, themes.c.id == sessions.c.theme_id)
    where = and_(*conditions)
    rows = (
        await session.execute(
            select(*SHOWN_COLUMNS, themes.c.title.label("theme_title"))
            .select_from(joined)
            .where(where)
            .order_by(sessions.c.starts_at, sessions.c.id)
            .offset(query.offset)
            .limit(query.limit)
        )
    ).all()
    if query.offset == 0 and len(rows) < query.limit:
        return [shown(row) for row in rows], len(rows)
    total = await session.scalar(select(func.count()).select_from(joined).where(where))
    return [shown(row) for row in rows], total or 0


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _lexeme(word: str) -> str:
    """A word as a tsquery operand: letters and digits only, so that no input is tsquery syntax."""
    return "".join(character for character in word.lower() if character.isalnum())[:60]
