"""Participation links, their sharing, joining through them, and attendance.

Guarantees (each has a test):
- A link's token is HMAC-SHA256(ENROLLMENT_LINK_KEY, "participation-link:" + link id), base64url (43 characters,
  256 bits). Only its SHA-256 is stored and looked up; the token is computed again to show it to the account.
- A link is valid while it is not revoked, its enrolment is confirmed, its session is not cancelled and
  now < the session's end + `valid_after`. Every other token (malformed, unknown, revoked, expired, cancelled)
  resolves to nothing: the API answers all of them with one identical 404 `link_not_found`.
- The link is made when the enrolment is confirmed (service.tokens_debited, same transaction). It is mailed
  (ParticipationLinkIssued, sealed token) once, at J-2 (SessionStarting "J-2": `mailed_at` is set), or at once when
  it is made (confirmation, re-issue) after J-2.
- Re-issuing revokes the active link and makes a new one; revoking leaves none. Both lock the enrolment's row.
- A share due now goes out in the request's transaction; a later one is sent by the share job (every replica,
  FOR UPDATE SKIP LOCKED: once), with the link active at that moment, or cancelled when there is none.
- Each join through a valid link while the room is open is an attendance with AttendanceRecorded (outbox, same
  transaction). Open attendances are closed by the room's end, the provider's "left", or SessionEnded.

Functions take the caller's session and return the events to publish; they never commit."""

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Event
from contracts.events.enrollment import AttendanceRecorded, ParticipationLinkIssued, ParticipationLinkShared
from enrollment import sealing
from enrollment.models import attendances, enrolments, link_shares, participation_links, sessions
from enrollment.settings import EnrollmentSettings
from servicekit.http import ProblemError

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
SHARE_LIMIT_PER_DAY = 200  # recipients an account may send its links to in 24 hours


@dataclass(frozen=True)
class LinkRules:
    key: bytes = b""  # ENROLLMENT_LINK_KEY
    valid_after: timedelta = timedelta(days=30)  # a link answers this long after the session's end
    opens_before: timedelta = timedelta(minutes=15)  # the room lets people in this long before the start
    mail_before: timedelta = timedelta(days=2)  # J-2: the link is mailed to the account

    @classmethod
    def from_settings(cls, settings: Any) -> "LinkRules":
        key = settings.link_key.get_secret_value() if settings.link_key is not None else ""
        if not key:
            raise RuntimeError("ENROLLMENT_LINK_KEY is not set: enrollment cannot make participation links")
        return cls(
            key=key.encode(),
            valid_after=timedelta(days=settings.link_valid_days_after),
            opens_before=timedelta(minutes=settings.room_opens_minutes_before),
            mail_before=timedelta(days=settings.link_mail_days_before),
        )


@cache
def link_rules() -> LinkRules:
    """The service's link rules, read once from the environment (consumers and jobs)."""
    return LinkRules.from_settings(EnrollmentSettings())


class LinkRefused(ProblemError):
    """A refusal with a stable code (the API's problem)."""


def not_found() -> LinkRefused:
    """The one answer for every token that does not open a valid link."""
    return LinkRefused(404, "link_not_found", "Link not found", "This participation link does not exist.")


# --- tokens ---------------------------------------------------------------------------------------------------


def link_token(key: bytes, link_id: uuid.UUID) -> str:
    digest = hmac.new(key, b"participation-link:" + link_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def join_path(token: str) -> str:
    return f"/join/{token}"


@dataclass(frozen=True)
class Link:
    """A link as shown to its account."""

    id: uuid.UUID
    token: str
    opens_at: datetime
    created_at: datetime
    mailed_at: datetime | None

    def shown(self) -> dict[str, Any]:
        return {
            "link_id": str(self.id),
            "token": self.token,
            "path": join_path(self.token),
            "opens_at": self.opens_at.isoformat(),
            "created_at": self.created_at.isoformat(),
            "mailed_at": self.mailed_at.isoformat() if self.mailed_at else None,
        }


_LINKED = participation_links.join(enrolments, enrolments.c.id == participation_links.c.enrollment_id).join(
    sessions, sessions.c.id == enrolments.c.session_id
)


def _valid(rules: LinkRules, now: datetime) -> list[ColumnElement[bool]]:
    return [
        participation_links.c.revoked_at.is_(None),
        enrolments.c.status == "confirmed",
        sessions.c.status != "cancelled",
        sessions.c.ends_at > now - rules.valid_after,
    ]


def _issued(token: str, enrollment_id: uuid.UUID, account_id: uuid.UUID, session_id: uuid.UUID) -> Event:
    return ParticipationLinkIssued(
        enrollment_id=enrollment_id,
        account_id=account_id,
        session_id=session_id,
        join_token=sealing.sealed(token, ParticipationLinkIssued, "join_token", enrollment_id),
    )


async def _new_link(
    session: AsyncSession, enrolment: Any, starts_at: datetime, rules: LinkRules, now: datetime, **fields: Any
) -> tuple[Link, list[Event]]:
    """A new active link for `enrolment` (id, account_id, session_id), mailed at once when J-2 is reached (or
    `mail=True`)."""
    mail = fields.pop("mail", False) or now >= starts_at - rules.mail_before
    link_id = uuid.uuid4()
    token = link_token(rules.key, link_id)
    await session.execute(
        insert(participation_links).values(
            id=link_id,
            enrollment_id=enrolment.id,
            token_hash=token_hash(token),
            created_at=now,
            mailed_at=now if mail else None,
            **fields,
        )
    )
    link = Link(link_id, token, starts_at - rules.opens_before, now, now if mail else None)
    events = [_issued(token, enrolment.id, enrolment.account_id, enrolment.session_id)] if mail else []
    return link, events


@dataclass(frozen=True)
class Confirmed:
    """An enrolment just confirmed."""

    id: uuid.UUID
    account_id: uuid.UUID
    session_id: uuid.UUID


async def issue_on_confirmation(
    session: AsyncSession, confirmed: Sequence[Confirmed], rules: LinkRules, now: datetime
) -> list[Event]:
    """The links of enrolments just confirmed, in two statements however many."""
    if not confirmed:
        return []
    starts = dict(
        (
            await session.execute(
                select(sessions.c.id, sessions.c.starts_at).where(
                    sessions.c.id.in_({enrolment.session_id for enrolment in confirmed})
                )
            )
        ).all()
    )
    rows, events = [], []
    for enrolment in confirmed:
        starts_at = starts.get(enrolment.session_id)
        if starts_at is None:
            continue
        link_id = uuid.uuid4()
        token = link_token(rules.key, link_id)
        mail = now >= starts_at - rules.mail_before
        rows.append(
            {
                "id": link_id,
                "enrollment_id": enrolment.id,
                "token_hash": token_hash(token),
                "created_at": now,
                "mailed_at": now if mail else None,
            }
        )
        if mail:
            events.append(_issued(token, enrolment.id, enrolment.account_id, enrolment.session_id))
    if rows:
        await session.execute(insert(participation_links), rows)
    return events


async def mail_links(session: AsyncSession, session_id: uuid.UUID, rules: LinkRules, now: datetime) -> list[Event]:
    """SessionStarting "J-2": ParticipationLinkIssued for each confirmed enrolment's active link not mailed yet
    (once: `mailed_at` is set). A confirmed enrolment that never had a link (confirmed before links existed) gets
    one; a revoked one stays without."""
    starts_at = await session.scalar(
        select(sessions.c.starts_at).where(sessions.c.id == session_id, sessions.c.status != "cancelled")
    )
    if starts_at is None:
        return []
    confirmed = [enrolments.c.session_id == session_id, enrolments.c.status == "confirmed"]
    never = (
        await session.execute(
            select(enrolments.c.id, enrolments.c.account_id, enrolments.c.session_id)
            .where(*confirmed, ~exists().where(participation_links.c.enrollment_id == enrolments.c.id))
            .order_by(enrolments.c.id)
            .with_for_update(of=enrolments)
        )
    ).all()
    events: list[Event] = []
    for enrolment in never:
        events += (await _new_link(session, enrolment, starts_at, rules, now, mail=True))[1]
    mailed = (
        await session.execute(
            update(participation_links)
            .where(
                participation_links.c.enrollment_id == enrolments.c.id,
                *confirmed,
                participation_links.c.revoked_at.is_(None),
                participation_links.c.mailed_at.is_(None),
            )
            .values(mailed_at=now)
            .returning(participation_links.c.id.label("link_id"), enrolments.c.id, enrolments.c.account_id)
        )
    ).all()
    for row in sorted(mailed, key=lambda row: row.id):
        events.append(_issued(link_token(rules.key, row.link_id), row.id, row.account_id, session_id))
    return events


# --- an account's link ------------------------------------------------------------------------------------------


async def active_link(session: AsyncSession, enrollment_id: uuid.UUID, rules: LinkRules, now: datetime) -> Link | None:
    """The enrolment's valid link; None when it has none (not confirmed, revoked, expired)."""
    row = (
        await session.execute(
            select(participation_links, sessions.c.starts_at)
            .select_from(_LINKED)
            .where(participation_links.c.enrollment_id == enrollment_id, *_valid(rules, now))
        )
    ).one_or_none()
    if row is None:
        return None
    return Link(
        row.id, link_token(rules.key, row.id), row.starts_at - rules.opens_before, row.created_at, row.mailed_at
    )


async def _session_time(session: AsyncSession, column: Any, session_id: uuid.UUID) -> datetime:
    time: datetime = (await session.execute(select(column).where(sessions.c.id == session_id))).scalar_one()
    return time


async def _lock_enrolment(session: AsyncSession, enrollment_id: uuid.UUID) -> Any:
    """The enrolment's row, locked: re-issues and revocations of one enrolment run one after the other."""
    return (await session.execute(select(enrolments).where(enrolments.c.id == enrollment_id).with_for_update())).one()


async def _revoke(session: AsyncSession, enrollment_id: uuid.UUID, by: uuid.UUID | None, now: datetime) -> None:
    await session.execute(
        update(participation_links)
        .where(participation_links.c.enrollment_id == enrollment_id, participation_links.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by)
    )


async def revoke(session: AsyncSession, enrollment_id: uuid.UUID, by: uuid.UUID | None, now: datetime) -> None:
    """No active link afterwards (the old token answers like one that never existed)."""
    await _lock_enrolment(session, enrollment_id)
    await _revoke(session, enrollment_id, by, now)


async def reissue(
    session: AsyncSession, enrollment_id: uuid.UUID, by: uuid.UUID | None, rules: LinkRules, now: datetime
) -> tuple[Link, list[Event]]:
    """The active link revoked and a new one made (mailed at once after J-2)."""
    enrolment = await _lock_enrolment(session, enrollment_id)
    if enrolment.status != "confirmed":
        raise LinkRefused(409, "not_confirmed", "Not confirmed", "Only a confirmed enrolment has a link.")
    starts_at = await _session_time(session, sessions.c.starts_at, enrolment.session_id)
    await _revoke(session, enrollment_id, by, now)
    return await _new_link(session, enrolment, starts_at, rules, now, created_by=by)


# --- sharing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    channel: str  # email | sms
    address: str
    name: str | None = None


@dataclass(frozen=True)
class Sharing:
    """A manager's sending of the link to people, now (`send_at` None or past) or later."""

    account_id: uuid.UUID
    recipients: Sequence[Recipient]
    language: str = "fr"
    sender_name: str | None = None
    message: str | None = None
    send_at: datetime | None = None
    requested_by: uuid.UUID | None = None


def _shared(share: Any, account_id: uuid.UUID, session_id: uuid.UUID, token: str) -> Event:
    return ParticipationLinkShared(
        enrollment_id=share.enrollment_id,
        account_id=account_id,
        session_id=session_id,
        share_id=share.id,
        channel=share.channel,
        recipient=share.recipient,
        recipient_name=share.recipient_name,
        sender_name=share.sender_name,
        message=share.message,
        language=share.language,
        join_token=sealing.sealed(token, ParticipationLinkShared, "join_token", share.enrollment_id),
    )


async def share(
    session: AsyncSession, enrolment: Any, sharing: Sharing, rules: LinkRules, now: datetime
) -> tuple[Sequence[Any], list[Event]]:
    """One share per recipient: sent at once when due (ParticipationLinkShared), else scheduled."""
    # one account's shares are counted one request at a time (its daily limit holds across its enrolments)
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(str(sharing.account_id), 0))))
    link = await active_link(session, enrolment.id, rules, now)
    if link is None:
        raise LinkRefused(409, "link_not_found", "No link", "The enrolment has no active participation link.")
    ends_at = await _session_time(session, sessions.c.ends_at, enrolment.session_id)
    if sharing.send_at is not None and sharing.send_at >= ends_at:
        raise LinkRefused(
            400, "invalid_request", "Invalid request", "send_at must be before the end of the session.", field="send_at"
        )
    sent_today = await session.scalar(
        select(func.count()).where(
            link_shares.c.account_id == sharing.account_id, link_shares.c.created_at > now - timedelta(days=1)
        )
    )
    if (sent_today or 0) + len(sharing.recipients) > SHARE_LIMIT_PER_DAY:
        raise LinkRefused(
            409,
            "share_limit_reached",
            "Share limit reached",
            f"An account may send its links to {SHARE_LIMIT_PER_DAY} recipients a day.",
        )
    due = sharing.send_at is None or sharing.send_at <= now
    rows = (
        await session.execute(
            insert(link_shares)
            .values(
                [
                    {
                        "id": uuid.uuid4(),
                        "enrollment_id": enrolment.id,
                        "account_id": sharing.account_id,
                        "channel": recipient.channel,
                        "recipient": recipient.address,
                        "recipient_name": recipient.name,
                        "sender_name": sharing.sender_name,
                        "message": sharing.message,
                        "language": sharing.language,
                        "send_at": now if due else sharing.send_at,
                        "status": "sent" if due else "scheduled",
                        "sent_at": now if due else None,
                        "requested_by": sharing.requested_by,
                        "created_at": now,
                    }
                    for recipient in sharing.recipients
                ]
            )
            .returning(*link_shares.c)
        )
    ).all()
    events = [_shared(row, enrolment.account_id, enrolment.session_id, link.token) for row in rows] if due else []
    return rows, events


async def shares_of(session: AsyncSession, enrollment_id: uuid.UUID) -> Sequence[Any]:
    return (
        await session.execute(
            select(link_shares)
            .where(link_shares.c.enrollment_id == enrollment_id)
            .order_by(link_shares.c.created_at.desc(), link_shares.c.send_at.desc(), link_shares.c.id)
        )
    ).all()


async def cancel_share(session: AsyncSession, enrollment_id: uuid.UUID, share_id: uuid.UUID, now: datetime) -> None:
    """A scheduled share cancelled (a cancelled one stays so); a sent one cannot be."""
    row = (
        await session.execute(
            select(link_shares)
            .where(link_shares.c.id == share_id, link_shares.c.enrollment_id == enrollment_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise LinkRefused(404, "not_found", "Not found", "No such share.")
    if row.status == "sent":
        raise LinkRefused(409, "share_already_sent", "Already sent", "This share was already sent.")
    await session.execute(update(link_shares).where(link_shares.c.id == share_id).values(status="cancelled"))


async def send_due_shares(session: AsyncSession, rules: LinkRules, now: datetime, limit: int = 100) -> list[Event]:
    """One pass of the share job: due scheduled shares, locked with SKIP LOCKED (another replica's are left to
    it), each sent with its enrolment's link active now, or cancelled when there is none."""
    due = (
        await session.execute(
            select(link_shares, enrolments.c.account_id, enrolments.c.session_id)
            .join(enrolments, enrolments.c.id == link_shares.c.enrollment_id)
            .where(link_shares.c.status == "scheduled", link_shares.c.send_at <= now)
            .order_by(link_shares.c.send_at, link_shares.c.id)
            .limit(limit)
            .with_for_update(of=link_shares, skip_locked=True)
        )
    ).all()
    events: list[Event] = []
    for row in due:
        link = await active_link(session, row.enrollment_id, rules, now)
        values: dict[str, Any] = {"status": "cancelled"}
        if link is not None:
            values = {"status": "sent", "sent_at": now}
            events.append(_shared(row, row.account_id, row.session_id, link.token))
        await session.execute(update(link_shares).where(link_shares.c.id == row.id).values(**values))
    return events


# --- joining --------------------------------------------------------------------------------------------------


async def resolve(session: AsyncSession, token: str, rules: LinkRules, now: datetime) -> Any:
    """The valid link a token opens, with its enrolment and session (one indexed query); None for any other token,
    malformed ones without a query."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    row = (
        await session.execute(
            select(
                participation_links.c.id.label("link_id"),
                enrolments.c.id.label("enrollment_id"),
                enrolments.c.account_id,
                sessions,
            )
            .select_from(_LINKED)
            .where(participation_links.c.token_hash == token_hash(token), *_valid(rules, now))
        )
    ).one_or_none()
    # a token made with a former key no longer opens its link (changing the key invalidates every link)
    if row is None or not hmac.compare_digest(link_token(rules.key, row.link_id), token):
        return None
    return row


def join_state(session_row: Any, rules: LinkRules, now: datetime) -> str:
    """waiting (before the room opens), open, or ended (the session is over or past its end)."""
    if session_row.status == "ended" or now >= session_row.ends_at:
        return "ended"
    if now < session_row.starts_at - rules.opens_before:
        return "waiting"
    return "open"


async def record_attendance(
    session: AsyncSession, token: str, name: str, email: str | None, rules: LinkRules, now: datetime
) -> tuple[Any, list[Event]]:
    """A join through the link while the room is open: the attendance and AttendanceRecorded."""
    found = await resolve(session, token, rules, now)
    if found is None:
        raise not_found()
    state = join_state(found, rules, now)
    if state != "open":
        raise LinkRefused(409, "room_not_open", "Room not open", "The room is not open.", state=state)
    row = (
        await session.execute(
            insert(attendances)
            .values(
                id=uuid.uuid4(),
                enrollment_id=found.enrollment_id,
                session_id=found.id,
                link_id=found.link_id,
                participant_name=name,
                participant_email=email,
                joined_at=now,
            )
            .returning(*attendances.c)
        )
    ).one()
    recorded = AttendanceRecorded(
        enrollment_id=found.enrollment_id,
        account_id=found.account_id,
        session_id=found.id,
        attendance_id=row.id,
        participant_name=name,
        participant_email=email,
        joined_at=now,
    )
    return row, [recorded]


# --- leaving --------------------------------------------------------------------------------------------------


async def _close(session: AsyncSession, condition: Iterable[ColumnElement[bool]], left_at: Any, source: str) -> int:
    result = await session.execute(
        update(attendances)
        .where(*condition, attendances.c.left_at.is_(None))
        .values(left_at=func.greatest(attendances.c.joined_at, left_at), left_source=source)
        .returning(attendances.c.id)
    )
    return len(result.all())


async def close_attendances(session: AsyncSession, session_id: uuid.UUID, ends_at: datetime | None = None) -> int:
    """SessionEnded: the session's open attendances end at its end (`ends_at`, by default the session copy's)."""
    end: Any = ends_at
    if end is None:
        end = select(sessions.c.ends_at).where(sessions.c.id == session_id).scalar_subquery()
    return await _close(session, [attendances.c.session_id == session_id], end, "session_end")


async def room_ended(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> int:
    """The provider ended the room (BBB's end callback): everyone still in left now."""
    return await _close(session, [attendances.c.session_id == session_id], now, "bbb_end")


async def participant_left(
    session: AsyncSession, session_id: uuid.UUID, attendance_id: uuid.UUID, left_at: datetime, now: datetime
) -> int:
    """The provider says one participant left (Jitsi's webhook); unknown or closed attendances stay as they are."""
    condition = [attendances.c.id == attendance_id, attendances.c.session_id == session_id]
    return await _close(session, condition, min(left_at, now), "jitsi")


# --- attendance -----------------------------------------------------------------------------------------------


def people(names: Iterable[str]) -> int:
    """Distinct people among the names typed (case and surrounding spaces ignored)."""
    return len({name.strip().casefold() for name in names})


def attended_minutes(rows: Iterable[Any], session_row: Any, rules: LinkRules, now: datetime) -> int:
    """Minutes during which someone of the enrolment was in (the union of the attendances, within the room's
    opening and the session's end; an open attendance counts until now)."""
    start, end = session_row.starts_at - rules.opens_before, session_row.ends_at
    spans = sorted(
        (max(row.joined_at, start), min(row.left_at or now, end)) for row in rows if (row.left_at or now) > start
    )
    total, reached = timedelta(), start
    for begin, finish in spans:
        begin = max(begin, reached)
        if finish > begin:
            total += finish - begin
            reached = finish
    return int(total.total_seconds() // 60)


async def enrolment_attendance(
    session: AsyncSession, enrolment: Any, rules: LinkRules, now: datetime
) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(attendances)
            .where(attendances.c.enrollment_id == enrolment.id)
            .order_by(attendances.c.joined_at, attendances.c.id)
        )
    ).all()
    session_row = (await session.execute(select(sessions).where(sessions.c.id == enrolment.session_id))).one()
    return {
        "items": [
            {
                "id": str(row.id),
                "participant_name": row.participant_name,
                "joined_at": row.joined_at.isoformat(),
                "left_at": row.left_at.isoformat() if row.left_at else None,
            }
            for row in rows
        ],
        "summary": {
            "joins": len(rows),
            "people": people(row.participant_name for row in rows),
            "first_join": rows[0].joined_at.isoformat() if rows else None,
            "minutes": attended_minutes(rows, session_row, rules, now),
        },
    }


async def session_attendance(session: AsyncSession, session_id: uuid.UUID) -> dict[str, Any]:
    """Per confirmed enrolment (and any other that has attendances): joins, people and names."""
    joined = (
        await session.execute(
            select(enrolments.c.id, enrolments.c.account_id, enrolments.c.institution_name, enrolments.c.status)
            .add_columns(attendances.c.participant_name)
            .outerjoin(attendances, attendances.c.enrollment_id == enrolments.c.id)
            .where(enrolments.c.session_id == session_id)
            .order_by(enrolments.c.created_at, enrolments.c.id, attendances.c.joined_at)
        )
    ).all()
    items: dict[uuid.UUID, dict[str, Any]] = {}
    names: dict[uuid.UUID, list[str]] = {}
    confirmed = 0
    for row in joined:
        if row.participant_name is None and row.status != "confirmed":
            continue
        if row.id not in items:
            confirmed += row.status == "confirmed"
            items[row.id] = {
                "enrollment_id": str(row.id),
                "account_id": str(row.account_id),
                "institution_name": row.institution_name,
            }
            names[row.id] = []
        if row.participant_name is not None:
            names[row.id].append(row.participant_name)
    for enrollment_id, item in items.items():
        distinct = {name.strip().casefold(): name.strip() for name in reversed(names[enrollment_id])}
        item |= {"joins": len(names[enrollment_id]), "people": len(distinct), "names": sorted(distinct.values())}
    attended = sum(1 for item in items.values() if item["joins"])
    return {
        "items": list(items.values()),
        "summary": {
            "enrolments_confirmed": confirmed,
            "enrolments_attended": attended,
            "attendance_rate": attended / confirmed if confirmed else None,
            "people": sum(item["people"] for item in items.values()),
        },
    }


async def listed(
    session: AsyncSession, enrollment_ids: Sequence[uuid.UUID], rules: LinkRules, now: datetime
) -> dict[uuid.UUID, dict[str, Any]]:
    """For an account's list of enrolments: each one's valid link (path, opens_at) or None, and its attendance."""
    shown: dict[uuid.UUID, dict[str, Any]] = {
        enrollment_id: {"link": None, "attendance": {"joins": 0, "people": 0}} for enrollment_id in enrollment_ids
    }
    if not enrollment_ids:
        return shown
    links = await session.execute(
        select(participation_links.c.id, participation_links.c.enrollment_id, sessions.c.starts_at)
        .select_from(_LINKED)
        .where(participation_links.c.enrollment_id.in_(enrollment_ids), *_valid(rules, now))
    )
    for row in links:
        opens_at = row.starts_at - rules.opens_before
        shown[row.enrollment_id]["link"] = {
            "path": join_path(link_token(rules.key, row.id)),
            "opens_at": opens_at.isoformat(),
        }
    joins = await session.execute(
        select(attendances.c.enrollment_id, attendances.c.participant_name).where(
            attendances.c.enrollment_id.in_(enrollment_ids)
        )
    )
    by_enrolment: dict[uuid.UUID, list[str]] = {}
    for joined in joins:
        by_enrolment.setdefault(joined.enrollment_id, []).append(joined.participant_name)
    for enrollment_id, names in by_enrolment.items():
        shown[enrollment_id]["attendance"] = {"joins": len(names), "people": people(names)}
    return shown
