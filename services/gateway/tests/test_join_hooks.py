"""The rooms' hooks and the entry-code cookie of the join page (gateway.join_pages), in-process: the end callback's
signature is the catalogue's formula, a hook without its secret configured does not exist, a Jitsi event names
its session and attendance or is ignored, and the cookie opens one link only, until it expires."""

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from catalogue.rooms import end_callback_signature as catalogue_signature
from gateway.join_pages import JitsiEvent, _code_signature, end_callback_signature
from gateway.main import app

SESSION_ID = uuid.UUID("3d6f0a52-8c1e-4b7a-9f2d-5e4c3b2a1f00")
ATTENDANCE_ID = uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Any]]:
    with TestClient(app) as client:
        yield client


def test_the_gateway_checks_the_signature_the_catalogue_makes() -> None:
    secret = "room-secret-" + "0123456789abcdef" * 2
    assert end_callback_signature(secret, SESSION_ID) == catalogue_signature(secret, SESSION_ID)
    assert end_callback_signature(secret, SESSION_ID) != end_callback_signature(secret, ATTENDANCE_ID)


def test_without_their_secrets_the_hooks_do_not_exist(client: TestClient[Any]) -> None:
    links = app.state["public_links"]
    app.state["public_links"] = dataclasses.replace(links, room_callback_secret=None, jitsi_webhook_token=None)
    try:
        signature = end_callback_signature("", SESSION_ID)
        assert client.get(f"/hooks/rooms/{SESSION_ID}/ended?sig={signature}").status_code == 404
        assert client.post(f"/hooks/rooms/{SESSION_ID}/ended?sig={signature}").status_code == 404
        left = {"eventType": "PARTICIPANT_LEFT", "fqn": f"app/visiopass-{SESSION_ID}", "data": {"id": "x"}}
        assert client.post("/hooks/rooms/jitsi", json=left, headers={"Authorization": "Bearer x"}).status_code == 404
    finally:
        app.state["public_links"] = links


def test_a_jitsi_event_names_its_session_or_nothing() -> None:
    event = JitsiEvent.model_validate(
        {
            "eventType": "PARTICIPANT_LEFT",
            "fqn": f"vpaas-magic-cookie-1/Visiopass-{SESSION_ID}",
            "timestamp": 1_767_225_600_000,
            "data": {"id": str(ATTENDANCE_ID), "name": "Camille", "moderator": "false"},
            "customerId": "c",
        }
    )
    assert event.session_id() == SESSION_ID
    assert event.left_at().isoformat() == "2026-01-01T00:00:00+00:00"
    assert JitsiEvent.model_validate({"eventType": "X", "room": f"visiopass-{SESSION_ID}"}).session_id() == SESSION_ID
    for room in ("visiopass-nope", "another-room", ""):
        assert JitsiEvent.model_validate({"eventType": "PARTICIPANT_LEFT", "room": room}).session_id() is None


def test_the_code_cookie_is_for_one_link_and_one_expiry() -> None:
    key = b"k" * 32
    token, other = "A" * 43, "B" * 43
    assert _code_signature(key, token, 100) == _code_signature(key, token, 100)
    assert _code_signature(key, token, 100) != _code_signature(key, other, 100)
    assert _code_signature(key, token, 100) != _code_signature(key, token, 101)
    assert _code_signature(key, token, 100) != _code_signature(b"j" * 32, token, 100)


def test_the_public_forms_and_the_certificate_check_are_counted_per_address_as_join() -> None:
    limited = {
        (method, route.path)
        for route in app.routes
        for method, handler in getattr(route, "route_handler_map", {}).items()
        if handler[0].opt.get("rate_limit") == "join"
    }
    assert limited == {
        ("POST", "/join/{token:str}"),
        ("POST", "/join/{token:str}/entry-code"),
        ("POST", "/join/{token:str}/feedback"),
        ("POST", "/feedback/{token:str}"),
        ("GET", "/certificates/verify"),
    }
