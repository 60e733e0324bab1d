"""Themes, sessions and series on a real PostgreSQL (catalogue.service): the life of a session, the rules that hold
once institutions are enrolled, series across daylight-saving changes, the events written, the planning query."""

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from catalogue import service as rules
from catalogue.models import schedule, sessions
from catalogue.series import Recurrence
from catalogue.service import CatalogueError, PlanningQuery, SeriesPlan, SessionFields, ThemeFields
from servicekit.db import Database, outbox
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
OUTBOX = Outbox("catalogue")


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=5)
    await upgrade(database, "catalogue")
    yield database
    await database.dispose()


async def new_theme(db: Database, **fields: Any) -> uuid.UUID:
    async with db.transaction() as session:
        return await rules.create_theme(session, ThemeFields(**({"title": "Pronote"} | fields)), NOW)


def at(text: str, **fields: Any) -> SessionFields:
    return SessionFields(**({"title": "Prise en main", "local_start": datetime.fromisoformat(text)} | fields))


async def new_session(db: Database, theme_id: uuid.UUID, fields: SessionFields, *, publish: bool = True) -> uuid.UUID:
    async with db.transaction() as session:
        session_id = await rules.create_session(session, theme_id, fields, NOW)
        if publish:
            await rules.publish(session, OUTBOX, session_id, NOW)
    return session_id


async def events(db: Database) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        rows = (await session.execute(select(outbox.c.value).order_by(outbox.c.id))).scalars().all()
    return [json.loads(value) for value in rows]


async def row(db: Database, session_id: uuid.UUID) -> Any:
    async with db.transaction() as session:
        return (await session.execute(select(sessions).where(sessions.c.id == session_id))).one()


async def refused(db: Database, code: str, change: Any) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        async with db.transaction() as session:
            await change(session)
    assert caught.value.code == code, caught.value.detail
    return caught.value


async def test_a_published_session_is_announced_and_planned(db: Database) -> None:
    theme_id = await new_theme(db)
    session_id = await new_session(db, theme_id, at("2027-03-20T14:00", duration_minutes=90, capacity=12))
    stored = await row(db, session_id)
    assert stored.status == "published"
    assert stored.starts_at == datetime(2027, 3, 20, 13, 0, tzinfo=UTC)  # 14:00 in Paris, winter time
    assert stored.ends_at - stored.starts_at == timedelta(minutes=90)
    (scheduled,) = await events(db)
    assert scheduled["type"] == "SessionScheduled"
    assert scheduled["starts_at"] == "2027-03-20T13:00:00Z"
    assert scheduled["capacity"] == 12
    async with db.transaction() as session:
        offsets = set(
            (await session.execute(select(schedule.c.offset).where(schedule.c.session_id == session_id))).scalars()
        )
    assert offsets == {"J-7", "J-2", "H-1", "open", "end"}


async def test_times_that_do_not_exist_or_happen_twice(db: Database) -> None:
    theme_id = await new_theme(db)
    error = await refused(
        db, "nonexistent_local_time", lambda s: rules.create_session(s, theme_id, at("2027-03-28T02:30"), NOW)
    )
    assert error.field == "local_start"
    assert "02:00 to 03:00" in error.detail
    await refused(
        db,
        "unknown_time_zone",
        lambda s: rules.create_session(s, theme_id, at("2027-04-01T10:00", timezone="Mars/Olympus"), NOW),
    )
    await refused(db, "start_in_past", lambda s: rules.create_session(s, theme_id, at("2027-02-01T10:00"), NOW))
    error = await refused(
        db,
        "ends_before_start",
        lambda s: rules.create_session(s, theme_id, at("2027-04-01T10:00", local_end=datetime(2027, 4, 1, 9, 0)), NOW),
    )
    assert error.field == "local_end"
    # 02:30 on 31 October 2027 happens twice in Paris: the first one (summer time, UTC+2) is taken
    ambiguous = await new_session(db, theme_id, at("2027-10-31T02:30"), publish=False)
    assert (await row(db, ambiguous)).starts_at == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


async def test_enrolments_fix_price_and_duration_and_bound_the_capacity(db: Database) -> None:
    theme_id = await new_theme(db)
    fields = at("2027-04-01T10:00", capacity=5, premium_price_tokens=6)
    session_id = await new_session(db, theme_id, fields)
    async with db.transaction() as session:
        for _ in range(3):
            await rules.enrolment_confirmed(session, uuid.uuid4(), session_id, uuid.uuid4())
        cancelled = uuid.uuid4()
        await rules.enrolment_confirmed(session, cancelled, session_id, uuid.uuid4())
        await rules.enrolment_confirmed(session, cancelled, session_id, uuid.uuid4())  # redelivered: counted once
        await rules.enrolment_cancelled(session, cancelled, session_id)
        await rules.enrolment_cancelled(session, cancelled, session_id)
    assert (await row(db, session_id)).enrolled_count == 3

    def change(**changes: Any) -> Any:
        return lambda s: rules.update_session(s, OUTBOX, session_id, replace(fields, **changes), NOW)

    await refused(db, "price_locked", change(price_tokens=2))
    await refused(db, "price_locked", change(premium_price_tokens=7))
    await refused(db, "duration_locked", change(duration_minutes=90))
    error = await refused(db, "capacity_below_enrolments", change(capacity=2))
    assert error.field == "capacity"
    async with db.transaction() as session:
        await rules.update_session(session, OUTBOX, session_id, replace(fields, capacity=3, title="Niveau 2"), NOW)
    updated = (await events(db))[-1]
    assert updated["type"] == "SessionUpdated"
    assert (updated["capacity"], updated["title"]) == (3, "Niveau 2")


async def test_a_session_moved_to_another_theme_is_announced_and_only_to_an_active_one(db: Database) -> None:
    theme_id, other, archived = await new_theme(db), await new_theme(db, title="ENT"), await new_theme(db, title="Old")
    async with db.transaction() as session:
        await rules.set_theme_status(session, archived, "archived", NOW)
    fields = at("2027-04-01T10:00")
    session_id = await new_session(db, theme_id, fields)
    await refused(
        db, "theme_archived", lambda s: rules.update_session(s, OUTBOX, session_id, fields, NOW, theme_id=archived)
    )
    async with db.transaction() as session:
        await rules.update_session(session, OUTBOX, session_id, fields, NOW, theme_id=other)
    updated = (await events(db))[-1]
    assert (updated["type"], updated["theme_id"]) == ("SessionUpdated", str(other))
    assert (await row(db, session_id)).theme_id == other


async def test_the_theme_title_is_told_and_a_rename_is_told_for_its_published_sessions(db: Database) -> None:
    theme_id = await new_theme(db, title="Pronote")
    published = await new_session(db, theme_id, at("2027-04-01T10:00"))
    await new_session(db, theme_id, at("2027-04-02T10:00"), publish=False)
    assert (await events(db))[-1]["theme_title"] == "Pronote"
    async with db.transaction() as session:
        await rules.update_theme(session, OUTBOX, theme_id, ThemeFields(title="Pronote", description="Same"), NOW)
    assert len(await events(db)) == 1  # the title did not change: nothing to tell
    async with db.transaction() as session:
        await rules.update_theme(session, OUTBOX, theme_id, ThemeFields(title="Pronote 2027"), NOW)
    told = (await events(db))[1:]
    assert [(e["type"], e["session_id"], e["theme_title"]) for e in told] == [
        ("SessionUpdated", str(published), "Pronote 2027")
    ]
    with pytest.raises(CatalogueError):
        async with db.transaction() as session:
            await rules.update_theme(session, OUTBOX, uuid.uuid4(), ThemeFields(title="X"), NOW)


async def test_published_sessions_never_go_back_and_frozen_ones_never_change(db: Database) -> None:
    theme_id = await new_theme(db)
    session_id = await new_session(db, theme_id, at("2027-04-01T10:00"))
    await refused(db, "not_draft", lambda s: rules.publish(s, OUTBOX, session_id, NOW))
    async with db.transaction() as session:
        await rules.cancel(session, OUTBOX, session_id, "Formateur malade", NOW)
    cancelled = (await events(db))[-1]
    assert (cancelled["type"], cancelled["reason"]) == ("SessionCancelled", "Formateur malade")
    async with db.transaction() as session:
        pending = (await session.execute(select(schedule).where(schedule.c.session_id == session_id))).all()
    assert all(line.emitted_at is not None or line.skipped_at is not None for line in pending)
    await refused(
        db,
        "session_cancelled",
        lambda s: rules.reschedule(s, OUTBOX, session_id, datetime(2027, 4, 2, 10), "Europe/Paris", None, NOW),
    )


async def test_rescheduling_keeps_the_session_and_tells_where_it_went(db: Database) -> None:
    theme_id = await new_theme(db)
    session_id = await new_session(db, theme_id, at("2027-04-01T10:00"))
    async with db.transaction() as session:
        await rules.reschedule(session, OUTBOX, session_id, datetime(2027, 4, 8, 15, 30), "Europe/Paris", 90, NOW)
    moved = (await events(db))[-2:]
    assert moved[0]["type"] == "SessionRescheduled"
    assert (moved[0]["previous_starts_at"], moved[0]["starts_at"]) == ("2027-04-01T08:00:00Z", "2027-04-08T13:30:00Z")
    assert moved[1]["type"] == "SessionUpdated" and moved[1]["duration_minutes"] == 90
    stored = await row(db, session_id)
    assert stored.sequence == 1
    async with db.transaction() as session:
        due = dict(
            (
                await session.execute(
                    select(schedule.c.offset, schedule.c.due_at).where(schedule.c.session_id == session_id)
                )
            )
            .tuples()
            .all()
        )
    assert due["H-1"] == datetime(2027, 4, 8, 12, 30, tzinfo=UTC)


async def test_a_weekly_series_stays_at_14_00_in_paris_across_both_clock_changes(db: Database) -> None:
    theme_id = await new_theme(db)
    plan = SeriesPlan(
        Recurrence(frequency="weekly", weekdays=("SU",), until=datetime(2027, 11, 7).date()),
        datetime(2027, 3, 21, 14, 0),
        at("2027-03-21T14:00", capacity=30),
    )
    async with db.transaction() as session:
        series_id = await rules.create_series(session, theme_id, plan, NOW)
        published = await rules.publish_series(session, OUTBOX, series_id, NOW)
        occurrences = (
            await session.execute(
                select(sessions).where(sessions.c.series_id == series_id).order_by(sessions.c.starts_at)
            )
        ).all()
    assert published == len(occurrences) == 34
    assert {rules.shown(line)["local_start"][11:] for line in occurrences} == {"14:00"}
    utc_hours = [line.starts_at.hour for line in occurrences]
    assert utc_hours[0] == 13 and utc_hours[1] == 12  # 21 March winter time, 28 March summer time
    assert utc_hours[-1] == 13  # 7 November: winter time again

    # the series now runs at 15:00 on Sundays until mid-October: later occurrences are cancelled, the rest moved
    later = SeriesPlan(
        Recurrence(frequency="weekly", weekdays=("SU",), until=datetime(2027, 10, 17).date()),
        datetime(2027, 3, 21, 15, 0),
        at("2027-03-21T15:00", capacity=30, title="Nouvelle formule"),
    )
    async with db.transaction() as session:
        await rules.update_series(session, OUTBOX, series_id, later, NOW)
        after = (
            await session.execute(
                select(sessions).where(sessions.c.series_id == series_id).order_by(sessions.c.starts_at)
            )
        ).all()
    kept = [line for line in after if line.status == "published"]
    assert len(kept) == 31 and {line.title for line in kept} == {"Nouvelle formule"}
    assert {rules.shown(line)["local_start"][11:] for line in kept} == {"15:00"}
    assert [line.status for line in after[-3:]] == ["cancelled"] * 3


async def test_editing_one_occurrence_detaches_it_from_the_series(db: Database) -> None:
    theme_id = await new_theme(db)
    plan = SeriesPlan(Recurrence(frequency="daily", count=3), datetime(2027, 4, 1, 9, 0), at("2027-04-01T09:00"))
    async with db.transaction() as session:
        series_id = await rules.create_series(session, theme_id, plan, NOW)
        first = await session.scalar(
            select(sessions.c.id).where(sessions.c.series_id == series_id).order_by(sessions.c.starts_at)
        )
        await rules.update_session(session, OUTBOX, first, at("2027-04-01T11:00", title="Spéciale"), NOW)
        await rules.update_series(
            session, OUTBOX, series_id, replace(plan, template=at("2027-04-01T09:00", title="Tous")), NOW
        )
        titles = (
            await session.execute(
                select(sessions.c.title, sessions.c.detached)
                .where(sessions.c.series_id == series_id)
                .order_by(sessions.c.starts_at)
            )
        ).all()
    assert [tuple(line) for line in titles] == [("Spéciale", True), ("Tous", False), ("Tous", False)]


async def test_the_planning_by_month_theme_text_and_places(db: Database) -> None:
    pronote = await new_theme(db, audience="Lycées")
    edt = await new_theme(db, title="Emploi du temps", audience="Collèges")
    full = await new_session(db, pronote, at("2027-04-01T10:00", capacity=1, animator="Claire Martin"))
    await new_session(db, edt, at("2027-04-30T23:30", title="Emplois du temps : les bases"))
    await new_session(db, edt, at("2027-05-03T10:00"))
    await new_session(db, pronote, at("2027-04-10T10:00"), publish=False)  # a draft is never shown
    async with db.transaction() as session:
        await rules.enrolment_confirmed(session, uuid.uuid4(), full, uuid.uuid4())

    async def titles(**query: Any) -> list[str]:
        async with db.transaction() as session:
            items, total = await rules.planning(session, PlanningQuery(**query), NOW)
        assert total >= len(items)
        return [item["title"] for item in items]

    assert await titles(month=(2027, 4)) == ["Prise en main", "Emplois du temps : les bases"]
    # 23:30 in Paris on 30 April is 30 April in London too, but already 1 May in Tokyo
    assert await titles(month=(2027, 4), tz="Asia/Tokyo") == ["Prise en main"]
    assert await titles(theme_id=edt) == ["Emplois du temps : les bases", "Prise en main"]
    assert await titles(text="clai") == ["Prise en main"]
    assert await titles(text="emplois base") == ["Emplois du temps : les bases"]
    assert await titles(text="'&|!:*()") == ["Prise en main", "Emplois du temps : les bases", "Prise en main"]
    assert await titles(audience="lycée") == ["Prise en main"]
    assert await titles(available=True) == ["Emplois du temps : les bases", "Prise en main"]
    assert await titles(limit=1, offset=1) == ["Emplois du temps : les bases"]
