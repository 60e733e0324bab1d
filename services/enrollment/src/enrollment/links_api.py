"""Internal HTTP API of participation links, their sharing, joining and attendance (enrollment.links), called by
the gateway, which authorises the caller first. An enrolment asked for with another account's id is 404
`not_found`, as if it did not exist. Every token that does not open a valid link (malformed, unknown, revoked,
expired) gets one identical 404 `link_not_found`. Refusals are problems with a stable `code`; bad input is a 400
problem."""

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Response, delete, get, post
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from enrollment import links
from enrollment import service as rules_of
from enrollment.links import LinkRules, Recipient, Sharing
from enrollment.service import EnrolmentRefused
from servicekit.inputs import text
from servicekit.runtime import Service

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
PHONE = re.compile(r"\+[1-9][0-9]{7,14}")  # E.164: + and 8 to 15 digits
_PHONE_SEPARATORS = re.compile(r"[\s.()-]")


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must be printable")
    return value


def _email(value: str) -> str:
    if not EMAIL.fullmatch(value):
        raise ValueError("must be an email address")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-23:59 and the like
        raise ValueError("date out of range") from None


Moment = Annotated[AwareDatetime, AfterValidator(_utc)]  # with its offset, as UTC
ParticipantName = Annotated[text(200, min_length=1), AfterValidator(_printable)]  # type: ignore[valid-type]
EmailAddress = Annotated[text(320, min_length=1), AfterValidator(_email)]  # type: ignore[valid-type]
Message = text(1000, multiline=True)


class ManagerInput(BaseModel):
    account_id: uuid.UUID
    requested_by: uuid.UUID | None = None


class RecipientInput(BaseModel):
    channel: Literal["email", "sms"]
    address: text(320, min_length=1)  # type: ignore[valid-type]
    name: ParticipantName | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _address_fits_channel(self) -> "RecipientInput":
        if self.channel == "email":
            self.address = _email(self.address)
        else:
            phone = _PHONE_SEPARATORS.sub("", self.address)
            if not PHONE.fullmatch(phone):
                raise ValueError("address must be a phone number in E.164 form (+ and 8 to 15 digits)")
            self.address = phone
        return self


class ShareInput(ManagerInput):
    sender_name: ParticipantName | None = None  # type: ignore[valid-type]
    language: Literal["fr", "en"] = "fr"
    message: Message | None = None  # type: ignore[valid-type]
    send_at: Moment | None = None  # null: now
    recipients: list[RecipientInput] = Field(min_length=1, max_length=20)


class TokenInput(BaseModel):
    token: str  # any text: a token that opens no valid link is answered as one that never existed


class JoinInput(TokenInput):
    name: ParticipantName  # type: ignore[valid-type]
    email: EmailAddress | None = None  # type: ignore[valid-type]


class LeftInput(BaseModel):
    attendance_id: uuid.UUID
    left_at: Moment


def _now() -> datetime:
    return datetime.now(UTC)


def _rules(service: Service) -> LinkRules:
    return LinkRules.from_settings(service.settings)


async def _enrolment(session: AsyncSession, enrollment_id: uuid.UUID, account_id: uuid.UUID) -> Any:
    row = await rules_of.find_enrolment(session, enrollment_id, account_id)
    if row is None:
        raise EnrolmentRefused("not_found", "No such enrolment.", status=404)
    return row


def shown_share(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "channel": row.channel,
        "recipient": row.recipient,
        "recipient_name": row.recipient_name,
        "message": row.message,
        "send_at": row.send_at.isoformat(),
        "status": row.status,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


def _shown_session(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "title": row.title,
        "theme_title": row.theme_title,
        "starts_at": row.starts_at.isoformat(),
        "ends_at": row.ends_at.isoformat(),
        "timezone": row.timezone,
        "access": row.access,
        "status": row.status,
    }


class LinkApi(Controller):
    path = "/internal/enrolments/{enrollment_id:uuid}"

    @get("/link")
    async def link(self, enrollment_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        rules, now = _rules(service), _now()
        async with service.db.transaction() as session:
            await _enrolment(session, enrollment_id, account_id)
            link = await links.active_link(session, enrollment_id, rules, now)
        if link is None:
            raise links.not_found()
        return link.shown()

    @post("/link/reissue", status_code=200)
    async def reissue(self, enrollment_id: uuid.UUID, data: ManagerInput, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            await _enrolment(session, enrollment_id, data.account_id)
            link, events = await links.reissue(session, enrollment_id, data.requested_by, _rules(service), _now())
            await service.outbox.add_all(session, events)
        return link.shown()

    @post("/link/revoke", status_code=204)
    async def revoke(self, enrollment_id: uuid.UUID, data: ManagerInput, service: Service) -> None:
        async with service.db.transaction() as session:
            await _enrolment(session, enrollment_id, data.account_id)
            await links.revoke(session, enrollment_id, data.requested_by, _now())

    @post("/link/shares")
    async def share(self, enrollment_id: uuid.UUID, data: ShareInput, service: Service) -> Response[dict[str, Any]]:
        sharing = Sharing(
            account_id=data.account_id,
            recipients=[Recipient(r.channel, r.address, r.name) for r in data.recipients],
            language=data.language,
            sender_name=data.sender_name,
            message=data.message or None,
            send_at=data.send_at,
            requested_by=data.requested_by,
        )
        async with service.db.transaction() as session:
            enrolment = await _enrolment(session, enrollment_id, data.account_id)
            rows, events = await links.share(session, enrolment, sharing, _rules(service), _now())
            await service.outbox.add_all(session, events)
        return Response({"items": [shown_share(row) for row in rows]}, status_code=201)

    @get("/link/shares")
    async def shares(self, enrollment_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            await _enrolment(session, enrollment_id, account_id)
            rows = await links.shares_of(session, enrollment_id)
        return {"items": [shown_share(row) for row in rows]}

    @delete("/link/shares/{share_id:uuid}", status_code=204)
    async def cancel_share(
        self, enrollment_id: uuid.UUID, share_id: uuid.UUID, account_id: uuid.UUID, service: Service
    ) -> None:
        async with service.db.transaction() as session:
            await _enrolment(session, enrollment_id, account_id)
            await links.cancel_share(session, enrollment_id, share_id, _now())

    @get("/attendance")
    async def attendance(self, enrollment_id: uuid.UUID, account_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            enrolment = await _enrolment(session, enrollment_id, account_id)
            return await links.enrolment_attendance(session, enrolment, _rules(service), _now())


class JoinApi(Controller):
    path = "/internal/join"

    @post("/resolve", status_code=200)
    async def resolve(self, data: TokenInput, service: Service) -> dict[str, Any]:
        rules, now = _rules(service), _now()
        async with service.db.transaction() as session:
            found = await links.resolve(session, data.token, rules, now)
        if found is None:
            raise links.not_found()
        return {
            "enrollment_id": str(found.enrollment_id),
            "account_id": str(found.account_id),
            "state": links.join_state(found, rules, now),
            "opens_at": (found.starts_at - rules.opens_before).isoformat(),
            "session": _shown_session(found),
        }

    @post("/attendances")
    async def attend(self, data: JoinInput, service: Service) -> Response[dict[str, Any]]:
        async with service.db.transaction() as session:
            row, events = await links.record_attendance(
                session, data.token, data.name, data.email, _rules(service), _now()
            )
            await service.outbox.add_all(session, events)
        shown = {
            "attendance_id": str(row.id),
            "enrollment_id": str(row.enrollment_id),
            "session_id": str(row.session_id),
            "joined_at": row.joined_at.isoformat(),
        }
        return Response(shown, status_code=201)


class RoomApi(Controller):
    path = "/internal/rooms/{session_id:uuid}"

    @post("/ended", status_code=204)
    async def ended(self, session_id: uuid.UUID, service: Service) -> None:
        async with service.db.transaction() as session:
            await links.room_ended(session, session_id, _now())

    @post("/left", status_code=204)
    async def left(self, session_id: uuid.UUID, data: LeftInput, service: Service) -> None:
        async with service.db.transaction() as session:
            await links.participant_left(session, session_id, data.attendance_id, data.left_at, _now())


class SessionAttendanceApi(Controller):
    path = "/internal/sessions/{session_id:uuid}/attendance"

    @get("/")
    async def attendance(self, session_id: uuid.UUID, service: Service) -> dict[str, Any]:
        async with service.db.transaction() as session:
            return await links.session_attendance(session, session_id)


CONTROLLERS = [LinkApi, JoinApi, RoomApi, SessionAttendanceApi]
