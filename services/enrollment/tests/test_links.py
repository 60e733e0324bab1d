"""Participation links on a real PostgreSQL (enrollment.links, through the consumers' handlers where they are the
way in): tokens and their hash, validity, J-2 mailing, re-issue and revocation, shares and their job, joining,
attendance and its closing."""

import asyncio
import base64
import hashlib
import importlib.util
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from contracts.events.billing import TokensDebited
from contracts.events.catalogue import SessionCancelled, SessionEnded, SessionStarting
from contracts.events.enrollment import ParticipationLinkIssued, ParticipationLinkShared
from contracts.examples import EXAMPLE_KEYRING
from contracts.secrets import secret_context, unseal
from enrollment import jobs, links, service
from enrollment.links import LinkRefused, Recipient, Sharing
from enrollment.models import attendances, link_shares, participation_links
from servicekit.db import Database
from servicekit.migrations import upgrade

_spec = importlib.util.spec_from_file_location("enrollment_tests_world", Path(__file__).with_name("world.py"))
assert _spec and _spec.loader
w = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(w)
NOW, STARTS_AT, OUTBOX = w.NOW, w.STARTS_AT, w.OUTBOX
ENDS_AT = STARTS_AT + timedelta(minutes=60)
RULES = links.link_rules()


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=10)
    await upgrade(database, "enrollment")
    yield database
    await database.dispose()


async def confirmed(db: Database, session_id: uuid.UUID | None = None, **fields: Any) -> Any:
    """A confirmed enrolment (through billing's answer), in a new session unless one is given."""
    session_id = session_id or await w.new_session(db)
    row = await w.enrol(db, session_id, **fields)
    debit = TokensDebited(
        account_id=row.account_id,
        enrollment_id=row.id,
        session_id=session_id,
        lot_id=uuid.uuid4(),
        tokens=row.tokens,
        balance_after=0,
    )
    await w.on_wallet_event(db, debit)
    return row


async def link_of(db: Database, enrollment_id: uuid.UUID, now: Any = NOW) -> links.Link | None:
    async with db.transaction() as session:
        return await links.active_link(session, enrollment_id, RULES, now)


async def resolved(db: Database, token: str, now: Any = NOW) -> Any:
    async with db.transaction() as session:
        return await links.resolve(session, token, RULES, now)


async def events_of(db: Database, kind: str) -> list[dict[str, Any]]:
    return [event for event in await w.published(db) if event["type"] == kind]


def opened(event: dict[str, Any], kind: type) -> str:
    context = secret_context(kind, "join_token", uuid.UUID(event["enrollment_id"]))
    return unseal(event["join_token"], EXAMPLE_KEYRING, context)


async def join(db: Database, token: str, name: str, now: Any, email: str | None = None) -> Any:
    async with db.transaction() as session:
        row, events = await links.record_attendance(session, token, name, email, RULES, now)
        await OUTBOX.add_all(session, events)
    return row


# --- tokens and validity ----------------------------------------------------------------------------------------


async def test_the_token_has_256_bits_and_only_its_hash_is_stored(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    link = await link_of(db, row.id)
    assert link is not None
    assert len(base64.urlsafe_b64decode(link.token + "=")) == 32
    assert link.token == links.link_token(RULES.key, link.id)
    async with db.transaction() as session:
        (stored,) = (await session.execute(select(participation_links))).all()
    assert stored.token_hash == hashlib.sha256(link.token.encode()).digest()
    for value in stored:
        assert link.token not in str(value)
        assert link.token.encode() not in (value if isinstance(value, bytes) else str(value).encode())
    # ten days before the start, nothing is mailed yet, and the token is in no event
    assert stored.mailed_at is None
    assert all(link.token not in str(event) for event in await w.published(db))
    assert (await resolved(db, link.token)).enrollment_id == row.id


async def test_tokens_that_open_no_valid_link_resolve_to_nothing(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    link = await link_of(db, row.id)
    assert link is not None
    random_token = links.link_token(b"another key", uuid.uuid4())
    for token in (random_token, link.token[:-1] + "A" if link.token[-1] != "A" else "B", "short", "x" * 10_000, "\x00"):
        assert await resolved(db, token) is None
    # expired: valid until the end + 30 days, not after
    assert await resolved(db, link.token, ENDS_AT + timedelta(days=30) - timedelta(seconds=1)) is not None
    assert await resolved(db, link.token, ENDS_AT + timedelta(days=30)) is None
    # a token made with another key for the same link id does not open it
    assert await resolved(db, links.link_token(b"former key", link.id)) is None
    # a cancelled session's links open nothing
    await w.on_session_event(db, SessionCancelled(session_id=row.session_id, reason="organiser", cancelled_at=NOW))
    assert await resolved(db, link.token) is None
    assert await link_of(db, row.id) is None


async def test_reissue_revokes_the_old_link_and_revoke_leaves_none(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    old = await link_of(db, row.id)
    manager = uuid.uuid4()
    async with db.transaction() as session:
        new, events = await links.reissue(session, row.id, manager, RULES, NOW)
    assert old is not None and new.token != old.token and events == []  # before J-2: mailed at J-2
    assert await resolved(db, old.token) is None
    assert (await resolved(db, new.token)).link_id == new.id
    assert await link_of(db, row.id) == new
    async with db.transaction() as session:
        await links.revoke(session, row.id, manager, NOW)
    assert await resolved(db, new.token) is None and await link_of(db, row.id) is None
    async with db.transaction() as session:
        stored = (await session.execute(select(participation_links).order_by(participation_links.c.created_at))).all()
    assert [(link.revoked_by, link.created_by) for link in stored] == [(manager, None), (manager, manager)]


async def test_only_a_confirmed_enrolment_is_reissued_a_link(db) -> None:  # type: ignore[no-untyped-def]
    row = await w.enrol(db, await w.new_session(db))
    async with db.transaction() as session:
        with pytest.raises(LinkRefused) as caught:
            await links.reissue(session, row.id, None, RULES, NOW)
    assert caught.value.code == "not_confirmed"
    assert await link_of(db, row.id) is None


# --- mailing ------------------------------------------------------------------------------------------------------


def j2(session_id: uuid.UUID) -> SessionStarting:
    return SessionStarting(session_id=session_id, offset="J-2", starts_at=STARTS_AT, ends_at=ENDS_AT)


async def test_links_are_mailed_once_at_j2(db) -> None:  # type: ignore[no-untyped-def]
    session_id = await w.new_session(db, capacity=5)
    first, second = await confirmed(db, session_id), await confirmed(db, session_id)
    pending = await w.enrol(db, session_id)
    assert await events_of(db, "ParticipationLinkIssued") == []
    await w.on_session_event(db, j2(session_id))
    issued = await events_of(db, "ParticipationLinkIssued")
    assert sorted(event["enrollment_id"] for event in issued) == sorted([str(first.id), str(second.id)])
    for event in issued:
        link = await link_of(db, uuid.UUID(event["enrollment_id"]))
        assert link is not None and link.mailed_at is not None
        assert opened(event, ParticipationLinkIssued) == link.token
        assert link.token not in str(event)
    assert str(pending.id) not in [event["enrollment_id"] for event in issued]
    await w.on_session_event(db, j2(session_id))  # redelivered (a new envelope: the inbox would not skip it)
    assert len(await events_of(db, "ParticipationLinkIssued")) == 2


async def test_a_link_made_after_j2_is_mailed_at_once(db) -> None:  # type: ignore[no-untyped-def]
    row = await w.enrol(db, await w.new_session(db))
    late = STARTS_AT - timedelta(days=1)
    async with db.transaction() as session:
        events = await service.tokens_debited(session, [row.id], late)
    assert [event.type for event in events] == ["Enrolled", "ParticipationLinkIssued"]
    link = await link_of(db, row.id)
    assert link is not None and link.mailed_at == late
    async with db.transaction() as session:
        reissued, again = await links.reissue(session, row.id, None, RULES, late)
        # J-2 reached for a link already mailed: nothing more
        assert await links.mail_links(session, row.session_id, RULES, late) == []
    (event,) = again
    assert unseal(event.join_token, EXAMPLE_KEYRING, secret_context(ParticipationLinkIssued, "join_token", row.id)) == (
        reissued.token
    )


# --- joining and attendance -------------------------------------------------------------------------------------


async def test_join_states_follow_the_clock_and_each_join_is_recorded(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    link = await link_of(db, row.id)
    assert link is not None
    at = {
        "waiting": STARTS_AT - timedelta(minutes=15, seconds=1),
        "open": STARTS_AT - timedelta(minutes=15),
        "still open": ENDS_AT - timedelta(seconds=1),
        "ended": ENDS_AT,
    }
    found = await resolved(db, link.token, at["waiting"])
    assert [links.join_state(found, RULES, moment) for moment in at.values()] == ["waiting", "open", "open", "ended"]
    for state in ("waiting", "ended"):
        async with db.transaction() as session:
            with pytest.raises(LinkRefused) as caught:
                await links.record_attendance(session, link.token, "Anne", None, RULES, at[state])
        assert (caught.value.code, caught.value.members) == ("room_not_open", {"state": state})
    first = await join(db, link.token, "Anne Martin", at["open"], email="anne@example.fr")
    await join(db, link.token, "anne martin ", at["open"] + timedelta(minutes=20))
    await join(db, link.token, "Paul", at["open"] + timedelta(minutes=1))
    recorded = await events_of(db, "AttendanceRecorded")
    assert [event["participant_name"] for event in recorded] == ["Anne Martin", "anne martin ", "Paul"]
    assert recorded[0]["attendance_id"] == str(first.id) and recorded[0]["participant_email"] == "anne@example.fr"
    async with db.transaction() as session:
        mine = await links.enrolment_attendance(session, row, RULES, ENDS_AT)
        listed = await links.listed(session, [row.id], RULES, NOW)
        everyone = await links.session_attendance(session, row.session_id)
    assert mine["summary"] == {
        "joins": 3,
        "people": 2,
        "first_join": at["open"].isoformat(),
        "minutes": 75,  # open from 15 minutes before the start until the end
    }
    assert listed[row.id]["attendance"] == {"joins": 3, "people": 2}
    assert listed[row.id]["link"] == {"path": f"/join/{link.token}", "opens_at": at["open"].isoformat()}
    (item,) = everyone["items"]
    assert (item["joins"], item["people"], item["names"]) == (3, 2, ["Anne Martin", "Paul"])
    assert everyone["summary"] == {
        "enrolments_confirmed": 1,
        "enrolments_attended": 1,
        "attendance_rate": 1.0,
        "people": 2,
    }
    # a revoked link lets nobody in any more
    async with db.transaction() as session:
        await links.revoke(session, row.id, None, at["open"])
        with pytest.raises(LinkRefused) as caught:
            await links.record_attendance(session, link.token, "Anne", None, RULES, at["open"])
    assert caught.value.code == "link_not_found"


async def open_attendances(db: Database, session_id: uuid.UUID) -> list[Any]:
    async with db.transaction() as session:
        return list(
            (
                await session.execute(
                    select(attendances).where(attendances.c.session_id == session_id).order_by(attendances.c.joined_at)
                )
            ).all()
        )


async def test_the_room_ending_and_the_session_end_close_open_attendances(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    link = await link_of(db, row.id)
    assert link is not None
    anne = await join(db, link.token, "Anne", STARTS_AT)
    paul = await join(db, link.token, "Paul", STARTS_AT + timedelta(minutes=1))
    async with db.transaction() as session:
        # Jitsi says Anne left; an unknown attendance or another session's changes nothing
        await links.participant_left(session, row.session_id, anne.id, STARTS_AT + timedelta(minutes=5), ENDS_AT)
        await links.participant_left(session, uuid.uuid4(), paul.id, STARTS_AT, ENDS_AT)
        await links.participant_left(session, row.session_id, uuid.uuid4(), STARTS_AT, ENDS_AT)
    rows = await open_attendances(db, row.session_id)
    assert [(r.left_at, r.left_source) for r in rows] == [(STARTS_AT + timedelta(minutes=5), "jitsi"), (None, None)]
    ended = STARTS_AT + timedelta(minutes=50)
    async with db.transaction() as session:
        assert await links.room_ended(session, row.session_id, ended) == 1
        assert await links.room_ended(session, row.session_id, ended) == 0  # the callback again: nothing more
    rows = await open_attendances(db, row.session_id)
    assert [(r.left_at, r.left_source) for r in rows][1] == (ended, "bbb_end")
    # someone joining again after the room ended is closed by SessionEnded, at the session's end
    late = await join(db, link.token, "Paul", STARTS_AT + timedelta(minutes=55))
    await w.on_session_event(db, SessionEnded(session_id=row.session_id, ended_at=ENDS_AT))
    rows = {r.id: r for r in await open_attendances(db, row.session_id)}
    assert (rows[late.id].left_at, rows[late.id].left_source) == (ENDS_AT, "session_end")
    assert rows[anne.id].left_source == "jitsi"


# --- sharing ------------------------------------------------------------------------------------------------------


def sharing(row: Any, send_at: Any = None, count: int = 1) -> Sharing:
    recipients = [Recipient("email", f"staff{n}@example.fr", f"Staff {n}") for n in range(count)]
    return Sharing(account_id=row.account_id, recipients=recipients, message="Voici le lien", send_at=send_at)


async def share(db: Database, row: Any, sharing: Sharing, now: Any = NOW) -> list[Any]:
    async with db.transaction() as session:
        rows, events = await links.share(session, row, sharing, RULES, now)
        await OUTBOX.add_all(session, events)
    return list(rows)


async def test_a_share_due_now_goes_at_once_and_a_later_one_once_by_the_job(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    link = await link_of(db, row.id)
    assert link is not None
    (now,) = await share(db, row, sharing(row))
    assert (now.status, now.sent_at) == ("sent", NOW)
    (event,) = await events_of(db, "ParticipationLinkShared")
    assert (event["recipient"], event["message"]) == ("staff0@example.fr", "Voici le lien")
    assert opened(event, ParticipationLinkShared) == link.token
    later = await share(db, row, sharing(row, NOW + timedelta(days=1), count=3))
    assert {r.status for r in later} == {"scheduled"}
    # due: two passes at once send each share once
    async with db.transaction() as session:
        due = datetime.now(UTC) - timedelta(seconds=1)  # the job's clock is the real one
        await session.execute(update(link_shares).where(link_shares.c.status == "scheduled").values(send_at=due))
    sent = await asyncio.gather(jobs.send_due_shares(db, OUTBOX, RULES), jobs.send_due_shares(db, OUTBOX, RULES))
    assert sum(sent) == 3
    assert await jobs.send_due_shares(db, OUTBOX, RULES) == 0
    assert len(await events_of(db, "ParticipationLinkShared")) == 4
    async with db.transaction() as session:
        assert {r.status for r in await links.shares_of(session, row.id)} == {"sent"}


async def test_a_due_share_goes_with_the_current_link_or_is_cancelled(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    soon = NOW + timedelta(hours=1)
    (first,) = await share(db, row, sharing(row, soon))
    (second,) = await share(db, row, sharing(row, soon))
    (third,) = await share(db, row, sharing(row, soon))
    async with db.transaction() as session:
        new, _ = await links.reissue(session, row.id, None, RULES, NOW)
        await links.cancel_share(session, row.id, third.id, NOW)
        await links.cancel_share(session, row.id, third.id, NOW)  # again: still cancelled
    async with db.transaction() as session:
        events = await links.send_due_shares(session, RULES, soon)
        assert [opened(e.model_dump(mode="json"), ParticipationLinkShared) for e in events] == [new.token, new.token]
        await links.revoke(session, row.id, None, soon)
        with pytest.raises(LinkRefused) as caught:
            await links.cancel_share(session, row.id, first.id, soon)
    assert caught.value.code == "share_already_sent"
    async with db.transaction() as session:
        shown = {r.id: r.status for r in await links.shares_of(session, row.id)}
    assert shown == {first.id: "sent", second.id: "sent", third.id: "cancelled"}


async def test_a_share_whose_link_was_revoked_is_cancelled(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    (scheduled,) = await share(db, row, sharing(row, NOW + timedelta(hours=1)))
    async with db.transaction() as session:
        await links.revoke(session, row.id, None, NOW)
        assert await links.send_due_shares(session, RULES, NOW + timedelta(hours=1)) == []
        (stored,) = await links.shares_of(session, row.id)
    assert (stored.id, stored.status) == (scheduled.id, "cancelled")


async def test_shares_are_refused_without_a_link_after_the_end_and_past_the_daily_limit(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)

    async def refusal(request: Sharing) -> tuple[int, str]:
        with pytest.raises(LinkRefused) as caught:
            await share(db, row, request)
        return caught.value.status_code, caught.value.code

    assert await refusal(sharing(row, ENDS_AT)) == (400, "invalid_request")
    for _ in range(10):
        await share(db, row, sharing(row, NOW + timedelta(days=1), count=20))
    assert await refusal(sharing(row)) == (409, "share_limit_reached")
    async with db.transaction() as session:
        await links.revoke(session, row.id, None, NOW)
    assert await refusal(sharing(row)) == (409, "link_not_found")


async def test_a_confirmed_enrolment_from_before_links_gets_one_at_j2(db) -> None:  # type: ignore[no-untyped-def]
    row = await confirmed(db)
    async with db.transaction() as session:
        await session.execute(participation_links.delete())
    await w.on_session_event(db, j2(row.session_id))
    (event,) = await events_of(db, "ParticipationLinkIssued")
    link = await link_of(db, row.id)
    assert link is not None and opened(event, ParticipationLinkIssued) == link.token
