"""The conference-room port (catalogue.rooms): BigBlueButton calls go over real HTTP to a server that checks
checksums exactly as bbb-web does; Jitsi links are judged by decoding their JWT with PyJWT."""

import importlib.util
import math
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit
from xml.etree import ElementTree

import httpx
import jwt
import pytest

from catalogue.rooms import (
    BigBlueButtonProvider,
    JitsiProvider,
    Participant,
    Room,
    RoomError,
    RoomNotOpen,
    RoomProvider,
    jitsi_room_name,
)


def _load_fake_server() -> ModuleType:
    # This folder is no package and is not on sys.path (pytest's importlib mode): load the helper by its path.
    path = Path(__file__).with_name("bbb_server.py")
    spec = importlib.util.spec_from_file_location("catalogue_tests_bbb_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FakeBigBlueButton = _load_fake_server().FakeBigBlueButton

SECRET = "bbb-shared-secret-" + "0123456789abcdef" * 2
ROOM_SECRET = "catalogue-room-secret-" + "fedcba9876543210" * 2
JITSI_SECRET = "jitsi-app-secret-" + "a1b2c3d4e5f60718" * 2
DIAL_NUMBER = "+33 1 23 45 67 89"
SESSION_ID = uuid.UUID("3d6f0a52-8c1e-4b7a-9f2d-5e4c3b2a1f00")
OTHER_SESSION_ID = uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
# PyJWT judges expiry by the real clock, so the rooms are placed around the real now.
NOW = datetime.now(UTC).replace(microsecond=0)
STARTS = NOW + timedelta(minutes=10)
ENDS = STARTS + timedelta(minutes=90)
ALICE = Participant("user-alice", "Élodie d'Arc & Fils + Cie 100%")
TRAINER = Participant("trainer-7", "Formateur Visiopass")


def room(session_id: uuid.UUID = SESSION_ID, **changes: object) -> Room:
    made = Room.for_session(
        session_id,
        title="Pronote : l'emploi du temps",
        starts_at=STARTS,
        ends_at=ENDS,
        max_participants=25,
        end_callback_url=f"https://catalogue.example.org/rooms/{session_id}/ended?sig=abc&x=1",
        secret=ROOM_SECRET,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def message_key(response: httpx.Response) -> str | None:
    assert response.status_code == 200
    return ElementTree.fromstring(response.content).findtext("messageKey")


def no_call(request: httpx.Request) -> httpx.Response:
    raise AssertionError("the window is checked before any call")


NO_CALL = httpx.AsyncClient(transport=httpx.MockTransport(no_call))


def tampered(url: str, **changes: str) -> str:
    """The URL with some parameters changed and the original checksum kept."""
    base, query = url.split("?", 1)
    signed, checksum = query.rsplit("&checksum=", 1)
    params = dict(parse_qsl(signed)) | changes
    return f"{base}?{urlencode(params, quote_via=quote)}&checksum={checksum}"


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # One client for the module, as building one (its TLS context) costs more than a test. It follows no
    # redirect: BigBlueButton's 302 to its client is the answer we look at.
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def bbb() -> Iterator["FakeBigBlueButton"]:
    with FakeBigBlueButton(SECRET) as server:
        yield server


@pytest.fixture
def provider(bbb: "FakeBigBlueButton", http: httpx.AsyncClient) -> BigBlueButtonProvider:
    return BigBlueButtonProvider(bbb.api_url, SECRET, dial_number=DIAL_NUMBER, client=http, clock=at(NOW))


# --- the room and what derives from its session ----------------------------------------------------------------


def test_a_room_is_named_after_its_session_and_its_pin_and_passwords_are_stable_and_secret() -> None:
    first = room()
    assert first.room_id == f"visiopass-{SESSION_ID}"
    assert first == room(), "the same session gives the same PIN and passwords after a restart"
    assert len(first.voice_bridge) == 5 and first.voice_bridge.isdigit()
    assert first.moderator_password != first.attendee_password

    other = room(OTHER_SESSION_ID)
    assert other.voice_bridge != first.voice_bridge
    assert {other.moderator_password, other.attendee_password}.isdisjoint(
        {first.moderator_password, first.attendee_password}
    )
    under_other_secret = Room.for_session(
        SESSION_ID,
        title="x",
        starts_at=STARTS,
        ends_at=ENDS,
        max_participants=None,
        end_callback_url="https://x.example",
        secret="another secret",
    )
    assert under_other_secret.voice_bridge != first.voice_bridge
    assert under_other_secret.moderator_password != first.moderator_password
    assert first.moderator_password not in repr(first)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"starts_at": STARTS.replace(tzinfo=None)}, "UTC"),
        ({"ends_at": STARTS}, "end after"),
        ({"max_participants": 0}, "at least 1"),
        ({"voice_bridge": "1234"}, "5 digits"),
    ],
)
def test_a_room_that_makes_no_sense_is_refused(changes: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        room(**changes)


def test_both_adapters_are_room_providers() -> None:
    assert isinstance(
        BigBlueButtonProvider("https://bbb.example.org/bigbluebutton/api", SECRET, client=NO_CALL), RoomProvider
    )
    assert isinstance(JitsiProvider("meet.example.org", "visiopass", JITSI_SECRET), RoomProvider)


# --- BigBlueButton ---------------------------------------------------------------------------------------------


async def test_an_opened_room_admits_its_signed_join_url(
    provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton", http: httpx.AsyncClient
) -> None:
    the_room = room()
    await provider.open(the_room)

    url = provider.join_url(the_room, ALICE, moderator=False)
    response = await http.get(url)

    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{bbb.base_url}/html5client/join?sessionToken=")
    assert bbb.joins == [
        {
            "fullName": ALICE.display_name,
            "meetingID": the_room.room_id,
            "role": "VIEWER",
            "password": the_room.attendee_password,
            "userID": ALICE.user_id,
            "redirect": "true",
        }
    ]
    assert len(parse_qs(urlsplit(url).query)["checksum"][0]) == 64  # sha256 by default


@pytest.mark.parametrize(("moderator", "role"), [(True, "MODERATOR"), (False, "VIEWER")])
async def test_the_join_url_carries_the_role_and_its_password(
    provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton", http: httpx.AsyncClient, moderator: bool, role: str
) -> None:
    the_room = room()
    await provider.open(the_room)

    response = await http.get(provider.join_url(the_room, TRAINER, moderator=moderator))

    assert response.status_code == 302
    assert bbb.joins[0]["role"] == role
    assert bbb.joins[0]["password"] == (the_room.moderator_password if moderator else the_room.attendee_password)


@pytest.mark.parametrize(
    "change",
    [
        {"fullName": "Mallory"},
        {"meetingID": f"visiopass-{OTHER_SESSION_ID}"},
        {"role": "MODERATOR"},
        {"userID": "user-mallory"},
    ],
)
async def test_a_tampered_join_url_is_refused(
    provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton", http: httpx.AsyncClient, change: dict[str, str]
) -> None:
    await provider.open(room())
    await provider.open(room(OTHER_SESSION_ID))
    url = provider.join_url(room(), ALICE, moderator=False)

    response = await http.get(tampered(url, **change))

    assert message_key(response) == "checksumError"
    assert bbb.joins == []
    assert (await http.get(url)).status_code == 302, "the untouched URL still works"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
async def test_each_checksum_algorithm_is_accepted_by_a_server_using_it(
    http: httpx.AsyncClient, algorithm: str
) -> None:
    with FakeBigBlueButton(SECRET, algorithm) as server:
        provider = BigBlueButtonProvider(server.api_url, SECRET, algorithm=algorithm, client=http, clock=at(NOW))
        await provider.open(room())
        response = await http.get(provider.join_url(room(), ALICE, moderator=True))
    assert response.status_code == 302
    assert server.refusals == []


@pytest.mark.parametrize(("secret", "algorithm"), [(SECRET, "sha1"), ("not-the-secret", "sha256")])
async def test_a_checksum_under_another_algorithm_or_secret_is_refused(
    bbb: "FakeBigBlueButton", http: httpx.AsyncClient, secret: str, algorithm: str
) -> None:
    provider = BigBlueButtonProvider(bbb.api_url, secret, algorithm=algorithm, client=http, clock=at(NOW))
    with pytest.raises(RoomError) as refused:
        await provider.open(room())
    assert refused.value.key == "checksumError"
    assert bbb.meetings == {}


async def test_opening_twice_is_fine(provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton") -> None:
    await provider.open(room())
    await provider.open(room())

    assert len(bbb.creates) == 2
    assert list(bbb.meetings) == [room().room_id]
    assert bbb.refusals == []


async def test_the_create_call_carries_the_room(provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton") -> None:
    the_room = room()
    await provider.open(the_room)

    minutes_until_closing = math.ceil((ENDS + timedelta(minutes=15) - NOW).total_seconds() / 60)
    assert bbb.creates == [
        {
            "name": the_room.title,
            "meetingID": the_room.room_id,
            "attendeePW": the_room.attendee_password,
            "moderatorPW": the_room.moderator_password,
            "voiceBridge": the_room.voice_bridge,
            "duration": str(minutes_until_closing),
            "maxParticipants": "25",
            "record": "false",
            "meta_endCallbackUrl": the_room.end_callback_url,
            "dialNumber": DIAL_NUMBER,
        }
    ]
    assert minutes_until_closing == 10 + 90 + 15


async def test_a_room_opened_late_still_closes_on_time_and_may_be_unlimited(bbb: "FakeBigBlueButton") -> None:
    provider = BigBlueButtonProvider(bbb.api_url, SECRET, welcome="Bienvenue !", clock=at(STARTS + timedelta(hours=1)))
    try:
        await provider.open(room(max_participants=None))
    finally:
        await provider.aclose()

    created = bbb.creates[0]
    assert created["duration"] == str(30 + 15), "BigBlueButton counts the duration from the creation"
    assert created["maxParticipants"] == "0"
    assert created["welcome"] == "Bienvenue !"
    assert "dialNumber" not in created


async def test_a_refused_create_raises_a_room_error_with_its_key(
    provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton"
) -> None:
    await provider.open(room())
    clashing = room(OTHER_SESSION_ID, voice_bridge=room().voice_bridge)

    with pytest.raises(RoomError) as refused:
        await provider.open(clashing)

    assert refused.value.key == "nonUniqueVoiceBridge"
    assert clashing.moderator_password not in str(refused.value)


async def test_a_meeting_already_there_under_other_passwords_counts_as_open(
    provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton"
) -> None:
    await provider.open(room())

    await provider.open(room(moderator_password="rotated-mod", attendee_password="rotated-att"))

    assert bbb.refusals == ["idNotUnique"]


@pytest.mark.parametrize(
    ("answer", "key"),
    [
        (httpx.Response(500, text="oops"), "badResponse"),
        (httpx.Response(200, text="<html>maintenance"), "badResponse"),
        (
            httpx.Response(200, text="<response><returncode>FAILED</returncode><messageKey>k</messageKey></response>"),
            "k",
        ),
    ],
)
async def test_a_broken_answer_raises_a_room_error(answer: httpx.Response, key: str) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: answer))
    provider = BigBlueButtonProvider("https://bbb.example.org/bigbluebutton/api/", SECRET, client=client, clock=at(NOW))
    try:
        with pytest.raises(RoomError) as refused:
            await provider.open(room())
    finally:
        await client.aclose()
    assert refused.value.key == key


async def test_an_unreachable_server_raises_a_room_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends
    provider = BigBlueButtonProvider(f"http://127.0.0.1:{port}/bigbluebutton/api", SECRET, clock=at(NOW))
    try:
        with pytest.raises(RoomError) as refused:
            await provider.open(room())
    finally:
        await provider.aclose()
    assert refused.value.key == "unreachable"
    assert SECRET not in str(refused.value) and room().moderator_password not in str(refused.value)


async def test_closing_ends_the_meeting_and_is_idempotent(
    provider: BigBlueButtonProvider, bbb: "FakeBigBlueButton", http: httpx.AsyncClient
) -> None:
    await provider.open(room())
    url = provider.join_url(room(), ALICE, moderator=False)

    await provider.close(room())
    await provider.close(room())

    assert message_key(await http.get(url)) == "notFound"
    assert bbb.meetings == {}


# --- the window: never months ahead, never after the end -------------------------------------------------------


def providers(clock: Callable[[], datetime]) -> list[RoomProvider]:
    return [
        BigBlueButtonProvider("https://bbb.example.org/bigbluebutton/api", SECRET, client=NO_CALL, clock=clock),
        JitsiProvider("meet.example.org", "visiopass", JITSI_SECRET, clock=clock),
    ]


@pytest.mark.parametrize("index", [0, 1])
async def test_a_room_cannot_be_opened_or_joined_long_before_its_start(index: int) -> None:
    provider = providers(at(STARTS - timedelta(days=90)))[index]

    with pytest.raises(RoomNotOpen) as too_early:
        await provider.open(room())
    with pytest.raises(RoomNotOpen):
        provider.join_url(room(), ALICE, moderator=False)

    assert too_early.value.key == "notOpenYet"


@pytest.mark.parametrize(("index", "grace"), [(0, timedelta(minutes=15)), (1, timedelta(minutes=30))])
async def test_no_url_is_signed_once_the_room_has_closed(index: int, grace: timedelta) -> None:
    provider_before = providers(at(ENDS + grace - timedelta(seconds=1)))[index]
    provider_after = providers(at(ENDS + grace))[index]

    assert provider_before.join_url(room(), ALICE, moderator=False)
    with pytest.raises(RoomNotOpen) as closed:
        provider_after.join_url(room(), ALICE, moderator=False)
    with pytest.raises(RoomNotOpen):
        await provider_after.open(room())

    assert closed.value.key == "roomClosed"


# --- Jitsi -----------------------------------------------------------------------------------------------------

JITSI = JitsiProvider("meet.example.org", "visiopass", JITSI_SECRET, clock=at(NOW))


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["jwt"][0]


def jitsi_admits(token: str, room_name: str, *, secret: str = JITSI_SECRET) -> bool:
    """What Jitsi's token authentication checks: signature, audience, issuer, times, domain and room."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience="jitsi", issuer="visiopass")
    except jwt.InvalidTokenError:
        return False
    return claims.get("sub") == "meet.example.org" and claims.get("room") == room_name


@pytest.mark.parametrize("moderator", [True, False])
def test_a_jitsi_link_carries_a_token_for_one_room_and_one_person(moderator: bool) -> None:
    url = JITSI.join_url(room(), ALICE, moderator=moderator)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "meet.example.org", f"/visiopass-{SESSION_ID}")
    claims = jwt.decode(token_of(url), JITSI_SECRET, algorithms=["HS256"], audience="jitsi")
    assert claims["iss"] == "visiopass"
    assert claims["sub"] == "meet.example.org"
    assert claims["room"] == jitsi_room_name(room()) == f"visiopass-{SESSION_ID}"
    assert claims["context"] == {"user": {"id": ALICE.user_id, "name": ALICE.display_name, "moderator": moderator}}
    assert claims["exp"] == int((ENDS + timedelta(minutes=30)).timestamp())
    assert claims["nbf"] <= claims["iat"] == int(NOW.timestamp())


def test_a_jitsi_token_needs_our_secret_and_audience() -> None:
    token = token_of(JITSI.join_url(room(), ALICE, moderator=False))

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-" + "0" * 32, algorithms=["HS256"], audience="jitsi")
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, JITSI_SECRET, algorithms=["HS256"], audience="another-app")


def test_a_jitsi_token_for_one_room_does_not_admit_to_another() -> None:
    token = token_of(JITSI.join_url(room(), ALICE, moderator=True))

    assert jitsi_admits(token, jitsi_room_name(room()))
    assert not jitsi_admits(token, jitsi_room_name(room(OTHER_SESSION_ID)))
    assert not jitsi_admits(token, jitsi_room_name(room()), secret="another-secret-" + "0" * 32)


async def test_an_expired_jitsi_token_is_refused() -> None:
    long_ago = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    past = room(starts_at=long_ago, ends_at=long_ago + timedelta(hours=1))
    provider = JitsiProvider("meet.example.org", "visiopass", JITSI_SECRET, clock=at(long_ago))
    await provider.open(past)  # nothing remote: a Jitsi room exists once joined

    token = token_of(provider.join_url(past, ALICE, moderator=False))

    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, JITSI_SECRET, algorithms=["HS256"], audience="jitsi")
    assert not jitsi_admits(token, jitsi_room_name(past))
    await provider.close(past)
