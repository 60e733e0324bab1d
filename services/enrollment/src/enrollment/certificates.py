"""Certificates of attendance: issued when the session ends, one per person who came, with a verification code anyone
can check and a PDF the institution downloads (and the notifier attaches to the thank-you mail).

Guarantees (each has a test):
- On SessionEnded (in the consumer's transaction, after the open attendances were closed), every distinct person of
  a confirmed enrolment — (enrolment, name stripped and casefolded) among its attendances — gets one certificate;
  a confirmed enrolment nobody joined gets none. Its attendance is the person's first join; its duration the
  minutes attended (links.attended_minutes: the union of the person's joins, [joined_at, left_at or the end],
  clipped to [start - the room's opening, end]), at least 1.
- Idempotent: a person already certified is skipped, and the attendance is unique in the table, so a redelivered
  SessionEnded issues nothing new.
- The code is 80 random bits (`secrets`) in Crockford's base32, XXXX-XXXX-XXXX-XXXX; checking one reads it the
  forgiving way (case, spaces, dashes, O for 0, I and L for 1) and answers only an exact match.
- The person's feedback token is HMAC(link key, "feedback:" + certificate id); only its SHA-256 is stored, and
  CertificateIssued carries it sealed for the notifier (enrollment.sealing).

Functions take the caller's session and return the events to publish; they never commit."""

import base64
import hashlib
import hmac
import io
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Event
from contracts.events.enrollment import CertificateIssued
from enrollment import links
from enrollment.models import attendances, certificates, enrolments, sessions
from enrollment.sealing import sealed
from enrollment.service import notice_of

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
CODE_CHARS = 16
MAX_CODE_INPUT = 64  # what a person may type, spaces and dashes included


def new_code() -> str:
    """80 random bits as XXXX-XXXX-XXXX-XXXX (Crockford base32)."""
    value = secrets.randbits(5 * CODE_CHARS)
    chars = "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(CODE_CHARS)))
    return "-".join(chars[i : i + 4] for i in range(0, CODE_CHARS, 4))


def normalised_code(typed: str) -> str | None:
    """The code as stored, from what a person typed; None when it cannot be one."""
    if len(typed) > MAX_CODE_INPUT:
        return None
    chars = "".join(typed.split()).replace("-", "").upper().translate(_READ_AS)
    if len(chars) != CODE_CHARS or any(char not in CROCKFORD for char in chars):
        return None
    return "-".join(chars[i : i + 4] for i in range(0, CODE_CHARS, 4))


def feedback_token(key: bytes, certificate_id: uuid.UUID) -> str:
    """The person's /feedback/<token>: base64url(HMAC-SHA256(key, "feedback:" + id)), without padding."""
    digest = hmac.new(key, b"feedback:" + certificate_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def person(name: str) -> str:
    """Whom a name designates: two joins typing the same name (case and outer spaces aside) are one person."""
    return name.strip().casefold()


@dataclass
class _Person:
    enrollment_id: uuid.UUID
    first: Any  # the first attendance row
    email: str | None
    joins: list[Any]


async def issue_for_session(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> list[Event]:
    """SessionEnded: a certificate and a CertificateIssued for every person not yet certified."""
    rules = links.link_rules()
    session_row = (await session.execute(select(sessions).where(sessions.c.id == session_id))).one_or_none()
    if session_row is None:
        return []
    joined = attendances.join(enrolments, enrolments.c.id == attendances.c.enrollment_id)
    rows = (
        await session.execute(
            select(attendances)
            .select_from(joined)
            .where(attendances.c.session_id == session_id, enrolments.c.status == "confirmed")
            .order_by(attendances.c.joined_at, attendances.c.id)
        )
    ).all()
    done = {
        (row.enrollment_id, person(row.participant_name))
        for row in await session.execute(
            select(certificates.c.enrollment_id, certificates.c.participant_name).where(
                certificates.c.session_id == session_id
            )
        )
    }
    people: dict[tuple[uuid.UUID, str], _Person] = {}
    for row in rows:
        who = (row.enrollment_id, person(row.participant_name))
        if who in done:
            continue
        found = people.setdefault(who, _Person(row.enrollment_id, row, None, []))
        found.email = found.email or row.participant_email
        found.joins.append(row)
    if not people:
        return []
    contacts = {
        row.id: row
        for row in await session.execute(
            select(enrolments).where(enrolments.c.id.in_({p.enrollment_id for p in people.values()}))
        )
    }
    events: list[Event] = []
    for found in people.values():
        enrolment = contacts[found.enrollment_id]
        certificate_id, code = uuid.uuid4(), new_code()
        token = feedback_token(rules.key, certificate_id)
        participant_name = found.first.participant_name.strip()
        inserted = await session.execute(
            pg_insert(certificates)
            .values(
                id=certificate_id,
                code=code,
                enrollment_id=found.enrollment_id,
                session_id=session_id,
                attendance_id=found.first.id,
                participant_name=participant_name,
                participant_email=found.email,
                institution_name=enrolment.institution_name,
                session_title=session_row.title,
                theme_title=session_row.theme_title,
                session_starts_at=session_row.starts_at,
                timezone=session_row.timezone,
                # an attendance still open counts until the end
                duration_minutes=max(1, links.attended_minutes(found.joins, session_row, rules, session_row.ends_at)),
                feedback_token_hash=links.token_hash(token),
                issued_at=now,
            )
            .on_conflict_do_nothing(index_elements=[certificates.c.attendance_id])
            .returning(certificates.c.id)
        )
        if inserted.one_or_none() is None:
            continue
        events.append(
            CertificateIssued(
                enrollment_id=found.enrollment_id,
                account_id=enrolment.account_id,
                session_id=session_id,
                certificate_id=certificate_id,
                attendance_id=found.first.id,
                participant_name=participant_name,
                participant_email=found.email,
                pdf_url=f"/certificates/{certificate_id}.pdf",
                issued_at=now,
                verification_code=code,
                feedback_token=sealed(token, CertificateIssued, "feedback_token", found.enrollment_id),
                notice=notice_of(enrolment),
            )
        )
    return events


# --- reading -------------------------------------------------------------------------------------------------------


async def of_enrolment(session: AsyncSession, enrollment_id: uuid.UUID) -> list[Any]:
    result = await session.execute(
        select(certificates)
        .where(certificates.c.enrollment_id == enrollment_id)
        .order_by(certificates.c.participant_name, certificates.c.id)
    )
    return list(result.all())


async def find(session: AsyncSession, certificate_id: uuid.UUID, account_id: uuid.UUID | None) -> Any:
    """A certificate; with `account_id`, only when it is that account's (None otherwise)."""
    query = select(certificates, enrolments.c.account_id).join(
        enrolments, enrolments.c.id == certificates.c.enrollment_id
    )
    query = query.where(certificates.c.id == certificate_id)
    if account_id is not None:
        query = query.where(enrolments.c.account_id == account_id)
    return (await session.execute(query)).one_or_none()


async def verify(session: AsyncSession, typed: str) -> Any:
    """The certificate bearing the code typed (None when none does, or it cannot be a code)."""
    code = normalised_code(typed)
    if code is None:
        return None
    return (await session.execute(select(certificates).where(certificates.c.code == code))).one_or_none()


# --- the PDF -------------------------------------------------------------------------------------------------------

FONT, BOLD = "Vera", "VeraBd"


@cache
def _fonts() -> None:
    """Bitstream Vera (shipped with reportlab), embedded: accented names print as typed."""
    pdfmetrics.registerFont(TTFont(FONT, "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(BOLD, "VeraBd.ttf"))


def verification_url(public_base_url: str, code: str) -> str:
    return f"{public_base_url.rstrip('/')}/certificates/verify?code={code}"


def render(row: Any, public_base_url: str) -> bytes:
    """The certificate as an A4 landscape PDF (pure; a few milliseconds of CPU: call it from a thread)."""
    _fonts()
    buffer = io.BytesIO()
    width, height = landscape(A4)
    pdf = Canvas(buffer, pagesize=(width, height), invariant=True)
    pdf.setTitle(f"Attestation de participation - {row.participant_name}")
    pdf.setAuthor("Visiopass")
    pdf.setLineWidth(1.5)
    pdf.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    middle = width / 2
    pdf.setFont(BOLD, 26)
    pdf.drawCentredString(middle, height - 45 * mm, "Attestation de participation")
    pdf.setFont(FONT, 16)
    pdf.drawCentredString(middle, height - 55 * mm, "Certificate of attendance")
    pdf.setFont(FONT, 12)
    pdf.drawCentredString(middle, height - 75 * mm, "Nous attestons que / We certify that")
    pdf.setFont(BOLD, 22)
    pdf.drawCentredString(middle, height - 88 * mm, _fit(row.participant_name, 60))
    pdf.setFont(FONT, 12)
    if row.institution_name:
        pdf.drawCentredString(middle, height - 97 * mm, _fit(row.institution_name, 90))
    pdf.drawCentredString(middle, height - 110 * mm, "a participé à la session / attended the session")
    pdf.setFont(BOLD, 16)
    pdf.drawCentredString(middle, height - 121 * mm, _fit(row.session_title, 80))
    pdf.setFont(FONT, 12)
    if row.theme_title:
        pdf.drawCentredString(middle, height - 130 * mm, f"Thème / Theme : {_fit(row.theme_title, 80)}")
    local = row.session_starts_at.astimezone(ZoneInfo(row.timezone))
    pdf.drawCentredString(
        middle,
        height - 140 * mm,
        f"Le / On {local:%d/%m/%Y} à / at {local:%H:%M} ({row.timezone}) — "
        f"durée de présence / time attended : {row.duration_minutes} min",
    )
    pdf.setFont(FONT, 10)
    pdf.drawCentredString(middle, 34 * mm, f"Code de vérification / Verification code : {row.code}")
    pdf.drawCentredString(middle, 28 * mm, verification_url(public_base_url, row.code))
    pdf.drawCentredString(middle, 22 * mm, f"Délivrée le / Issued on {row.issued_at:%d/%m/%Y} (UTC)")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
