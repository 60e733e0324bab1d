"""What the catalogue tells about a session's room besides its join URL: the dial-in number and PIN of the join
page, the signed end callback that BigBlueButton calls (the gateway checks the signature with the same secret), and
the participant id a Jitsi token carries (the attendance the provider's webhook will name)."""

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from catalogue.api import ParticipantJoinInput, _room, dial_in_of, end_callback_url
from catalogue.rooms import JitsiProvider, Participant, end_callback_signature, voice_bridge
from catalogue.settings import CatalogueSettings

ROOM_SECRET = "catalogue-room-secret-" + "0123456789abcdef" * 2
SESSION_ID = uuid.UUID("3d6f0a52-8c1e-4b7a-9f2d-5e4c3b2a1f00")
OTHER_ID = uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")


def settings(**changes: object) -> CatalogueSettings:
    values = {"room_secret": SecretStr(ROOM_SECRET), "public_base_url": "https://visio.example.fr/"} | changes
    return CatalogueSettings(**values)  # type: ignore[arg-type]


def test_the_dial_in_is_the_configured_number_and_the_rooms_pin() -> None:
    assert dial_in_of(settings(), SESSION_ID) == {
        "phone": "+33 1 84 88 00 00",
        "pin": voice_bridge(ROOM_SECRET, SESSION_ID),
    }
    assert dial_in_of(settings(dial_in_phone="+33 9 70 00 00 00"), SESSION_ID)["phone"] == "+33 9 70 00 00 00"
    assert dial_in_of(settings(), SESSION_ID)["pin"] != dial_in_of(settings(), OTHER_ID)["pin"]
    assert dial_in_of(settings(), SESSION_ID)["pin"].isdigit()


def test_the_end_callback_is_signed_for_its_room_only() -> None:
    url = end_callback_url("https://visio.example.fr/", ROOM_SECRET, SESSION_ID)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "visio.example.fr", f"/hooks/rooms/{SESSION_ID}/ended")
    (signature,) = parse_qs(parts.query)["sig"]
    expected = hmac.new(ROOM_SECRET.encode(), f"room-ended:{SESSION_ID}".encode(), hashlib.sha256).hexdigest()
    assert signature == expected == end_callback_signature(ROOM_SECRET, SESSION_ID)
    assert end_callback_signature(ROOM_SECRET, OTHER_ID) != signature
    assert end_callback_signature("another-secret", SESSION_ID) != signature
    starts = datetime.now(UTC) + timedelta(minutes=5)
    room = _room(settings(), SESSION_ID, "Pronote", starts, starts + timedelta(hours=1))
    assert room.end_callback_url == url


def test_a_participant_joins_under_the_id_the_gateway_gives() -> None:
    attendance_id = uuid.uuid4()
    data = ParticipantJoinInput.model_validate({"name": "Camille", "participant_id": str(attendance_id)})
    assert data.participant_id == attendance_id
    assert ParticipantJoinInput.model_validate({"name": "Camille"}).participant_id is None
    with pytest.raises(ValidationError):
        ParticipantJoinInput.model_validate({"name": "Camille", "participant_id": "not-a-uuid"})
    starts = datetime.now(UTC) + timedelta(minutes=5)
    room = _room(settings(), SESSION_ID, "Pronote", starts, starts + timedelta(hours=1))
    url = JitsiProvider("meet.example.org", "visiopass", ROOM_SECRET).join_url(
        room, Participant(str(attendance_id), "Camille"), moderator=False
    )
    claims = jwt.decode(parse_qs(urlsplit(url).query)["jwt"][0], ROOM_SECRET, algorithms=["HS256"], audience="jitsi")
    assert claims["context"]["user"]["id"] == str(attendance_id)
