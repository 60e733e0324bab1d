"""Conference rooms behind one port: BigBlueButton (create and signed join) or Jitsi (signed JWT links).

Guarantees:
- A session's room is `visiopass-<session uuid>`. Its dial-in PIN (5 digits) and its two BigBlueButton passwords
  are HMACs of the session id under our secret: the same after any restart, stored nowhere, and not guessable
  by anyone without the secret.
- A room is open from `lead` before its start until `grace` after its end. Outside that window `open` and
  `join_url` raise `RoomNotOpen`: no meeting is created months ahead, and no URL is signed for a room that is over.
- `open` is idempotent (a meeting that already exists is fine), so call it before every join: BigBlueButton
  drops a meeting that nobody joined within a few minutes of its creation, and the next `open` creates it again.
- BigBlueButton: every call carries `checksum = HASH(callName + queryString + sharedSecret)`, computed over the
  query string exactly as sent (one encoding, one parameter order). A meeting lasts until its room closes: its
  `duration` counts from its creation, as BigBlueButton counts it.
- Jitsi: a join URL carries an HS256 JWT that admits one person to one room and expires when the room closes.
- A provider that refuses or fails raises `RoomError` with a stable `key` (BigBlueButton's messageKey, or ours);
  messages never contain a password, a checksum or a token.
"""

import hashlib
import hmac
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

import httpx
import jwt

ROOM_ID_PREFIX = "visiopass-"
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")
DEFAULT_LEAD = timedelta(hours=1)
# BigBlueButton answers FAILED with these keys when the meeting is already there (duplicateWarning comes with
# SUCCESS on recent servers). idNotUnique means "same id, other passwords", e.g. after a secret rotation: the
# meeting still runs, and join's `role` parameter lets people in whatever its passwords are.
_ALREADY_EXISTS = frozenset({"duplicateWarning", "idNotUnique"})

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class RoomError(Exception):
    """The conferencing provider refused or failed; `key` is stable, the message names no secret."""

    def __init__(self, message: str, key: str = "providerError") -> None:
        super().__init__(message)
        self.key = key


class RoomNotOpen(RoomError):
    """Asked before the room opens (`notOpenYet`) or after it closed (`roomClosed`)."""


@dataclass(frozen=True)
class Participant:
    user_id: str
    display_name: str


@dataclass(frozen=True)
class Room:
    room_id: str  # the provider's meeting id
    title: str
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    max_participants: int | None  # None: unlimited
    voice_bridge: str  # the dial-in PIN
    end_callback_url: str
    moderator_password: str = field(repr=False)
    attendee_password: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.starts_at.utcoffset() != timedelta(0) or self.ends_at.utcoffset() != timedelta(0):
            raise ValueError("a room's start and end must be UTC datetimes")
        if self.ends_at <= self.starts_at:
            raise ValueError("a room must end after it starts")
        if self.max_participants is not None and self.max_participants < 1:
            raise ValueError("max_participants must be at least 1, or None for unlimited")
        if not re.fullmatch(r"[1-9][0-9]{4}", self.voice_bridge):
            raise ValueError("the voice bridge must be 5 digits")

    @classmethod
    def for_session(
        cls,
        session_id: uuid.UUID,
        *,
        title: str,
        starts_at: datetime,
        ends_at: datetime,
        max_participants: int | None,
        end_callback_url: str,
        secret: str,
    ) -> "Room":
        """The room of a session; `secret` keys the derived PIN and passwords (keep it stable: changing it
        changes them)."""
        if not secret:
            raise ValueError("a room secret is required")
        return cls(
            room_id=f"{ROOM_ID_PREFIX}{session_id}",
            title=title,
            starts_at=starts_at,
            ends_at=ends_at,
            max_participants=max_participants,
            voice_bridge=voice_bridge(secret, session_id),
            end_callback_url=end_callback_url,
            moderator_password=_derive(secret, "moderator-password", session_id).hex()[:32],
            attendee_password=_derive(secret, "attendee-password", session_id).hex()[:32],
        )


def voice_bridge(secret: str, room_id: uuid.UUID) -> str:
    """The 5-digit dial-in PIN of a session's (or a permanent room's) meeting: the same whenever it is asked."""
    return str(10000 + int.from_bytes(_derive(secret, "voice-bridge", room_id)[:8]) % 90000)


def end_callback_signature(secret: str, room_id: uuid.UUID) -> str:
    """The `sig` of a room's end callback URL: hex HMAC-SHA256(secret, "room-ended:<room id>"). The gateway, which
    holds the same secret (GATEWAY_ROOM_CALLBACK_SECRET), relays BigBlueButton's call only when it matches: nobody
    else can end a room's attendances."""
    return hmac.new(secret.encode(), f"room-ended:{room_id}".encode(), hashlib.sha256).hexdigest()


def _derive(secret: str, purpose: str, session_id: uuid.UUID) -> bytes:
    return hmac.new(secret.encode(), f"{purpose}:{session_id}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Window:
    """When a room may be opened and joined: from `lead` before its start until `grace` after its end."""

    lead: timedelta
    grace: timedelta

    def closes_at(self, room: Room) -> datetime:
        return room.ends_at + self.grace

    def check(self, room: Room, now: datetime) -> None:
        opens_at, closes_at = room.starts_at - self.lead, self.closes_at(room)
        if now < opens_at:
            raise RoomNotOpen(f"room {room.room_id} opens at {opens_at.isoformat()}", "notOpenYet")
        if now >= closes_at:
            raise RoomNotOpen(f"room {room.room_id} closed at {closes_at.isoformat()}", "roomClosed")


@runtime_checkable
class RoomProvider(Protocol):
    async def open(self, room: Room) -> None:
        """Make the room joinable now; idempotent."""
        ...

    def join_url(self, room: Room, person: Participant, moderator: bool) -> str:
        """A signed URL that lets this one person in."""
        ...

    async def close(self, room: Room) -> None:
        """End the room for everyone; idempotent."""
        ...


@dataclass(frozen=True)
class _Answer:
    returncode: str
    key: str
    message: str


class BigBlueButtonProvider:
    """BigBlueButton's API (`create`, `join`, `end`) signed with the server's shared secret."""

    def __init__(
        self,
        api_url: str,
        secret: str,
        *,
        dial_number: str | None = None,
        algorithm: str = "sha256",
        welcome: str | None = None,
        lead: timedelta = DEFAULT_LEAD,
        grace: timedelta = timedelta(minutes=15),
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        clock: Clock = utc_now,
    ) -> None:
        if not secret:
            raise ValueError("the BigBlueButton shared secret is required")
        if algorithm not in CHECKSUM_ALGORITHMS:
            raise ValueError(f"checksum algorithm must be one of {', '.join(CHECKSUM_ALGORITHMS)}")
        self.api_url = api_url.rstrip("/")
        self.dial_number = dial_number
        self.algorithm = algorithm
        self.welcome = welcome
        self.window = Window(lead, grace)
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self._clock = clock

    def signed_url(self, call: str, params: Mapping[str, str]) -> str:
        # The checksum covers these very bytes: the URL must go out exactly as built here.
        query = urlencode(params, quote_via=quote)
        checksum = hashlib.new(self.algorithm, f"{call}{query}{self._secret}".encode()).hexdigest()
        return f"{self.api_url}/{call}?{query}{'&' if query else ''}checksum={checksum}"

    async def open(self, room: Room) -> None:
        now = self._clock()
        self.window.check(room, now)
        minutes_left = math.ceil((self.window.closes_at(room) - now).total_seconds() / 60)
        params = {
            "name": room.title,
            "meetingID": room.room_id,
            "attendeePW": room.attendee_password,
            "moderatorPW": room.moderator_password,
            "voiceBridge": room.voice_bridge,
            "duration": str(minutes_left),
            "maxParticipants": str(room.max_participants or 0),  # 0: unlimited
            "record": "false",
            "meta_endCallbackUrl": room.end_callback_url,
        }
        if self.dial_number:
            params["dialNumber"] = self.dial_number
        if self.welcome:
            params["welcome"] = self.welcome
        answer = await self._call("create", params)
        if answer.returncode != "SUCCESS" and answer.key not in _ALREADY_EXISTS:
            raise RoomError(f"BigBlueButton refused to create {room.room_id}: {answer.message}", answer.key)

    def join_url(self, room: Room, person: Participant, moderator: bool) -> str:
        self.window.check(room, self._clock())
        params = {
            "fullName": person.display_name,
            "meetingID": room.room_id,
            "role": "MODERATOR" if moderator else "VIEWER",  # BigBlueButton 2.4 and later
            "password": room.moderator_password if moderator else room.attendee_password,  # older servers
            "userID": person.user_id,
            "redirect": "true",
        }
        return self.signed_url("join", params)

    async def close(self, room: Room) -> None:
        answer = await self._call("end", {"meetingID": room.room_id, "password": room.moderator_password})
        if answer.returncode != "SUCCESS" and answer.key != "notFound":
            raise RoomError(f"BigBlueButton refused to end {room.room_id}: {answer.message}", answer.key)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _call(self, call: str, params: Mapping[str, str]) -> _Answer:
        # The URL carries the passwords and the checksum: it stays out of every message.
        try:
            response = await self._client.get(self.signed_url(call, params))
        except httpx.HTTPError as error:
            raise RoomError(f"BigBlueButton {call} failed: {type(error).__name__}", "unreachable") from error
        if response.status_code != 200:
            raise RoomError(f"BigBlueButton {call} answered HTTP {response.status_code}", "badResponse")
        try:
            # Our own configured server answers; ElementTree resolves no external entity and the bundled expat
            # (2.4+) refuses entity-expansion bombs.
            root = ElementTree.fromstring(response.content)  # noqa: S314
        except ElementTree.ParseError as error:
            raise RoomError(f"BigBlueButton {call} answered something that is not XML", "badResponse") from error
        return _Answer(
            returncode=(root.findtext("returncode") or "").strip(),
            key=(root.findtext("messageKey") or "").strip(),
            message=(root.findtext("message") or "").strip(),
        )


def jitsi_room_name(room: Room) -> str:
    """Jitsi lower-cases room names; the token's `room` claim must be that very name."""
    return re.sub(r"[^a-z0-9-]", "-", room.room_id.lower())


class JitsiProvider:
    """Jitsi Meet with token authentication: a room exists once someone joins it, and only a valid JWT lets
    anyone in."""

    # A Jitsi server whose clock is a little behind ours still accepts a token signed just now.
    CLOCK_SKEW = timedelta(seconds=60)

    def __init__(
        self,
        domain: str,
        app_id: str,
        app_secret: str,
        *,
        audience: str = "jitsi",
        lead: timedelta = DEFAULT_LEAD,
        grace: timedelta = timedelta(minutes=30),
        clock: Clock = utc_now,
    ) -> None:
        if not app_secret:
            raise ValueError("the Jitsi app secret is required")
        self.domain = domain
        self.app_id = app_id
        self.audience = audience
        self.window = Window(lead, grace)
        self._app_secret = app_secret
        self._clock = clock

    async def open(self, room: Room) -> None:
        self.window.check(room, self._clock())

    def join_url(self, room: Room, person: Participant, moderator: bool) -> str:
        now = self._clock()
        self.window.check(room, now)
        name = jitsi_room_name(room)
        claims = {
            "iss": self.app_id,
            "aud": self.audience,
            "sub": self.domain,
            "room": name,
            "iat": int(now.timestamp()),
            "nbf": int((now - self.CLOCK_SKEW).timestamp()),
            "exp": int(self.window.closes_at(room).timestamp()),
            "context": {"user": {"id": person.user_id, "name": person.display_name, "moderator": moderator}},
        }
        token = jwt.encode(claims, self._app_secret, algorithm="HS256")
        return f"https://{self.domain}/{name}?jwt={token}"

    async def close(self, room: Room) -> None:
        """Nothing to end remotely: the room empties, and every token expires when the room closes."""
