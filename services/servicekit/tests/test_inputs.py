"""Input checked at the edge (servicekit.inputs): bodies before they are parsed, and the shared field types."""

import contextlib
import time

import httpx
import pytest
from litestar import get, post
from pydantic import BaseModel, ValidationError

from servicekit.http import ProblemError
from servicekit.inputs import (
    MAX_INT,
    MAX_JSON_DEPTH,
    EmailInput,
    Name,
    Offset,
    Password,
    SourceAddress,
    Token,
    check_json_body,
    text,
)
from servicekit.runtime import build_http_app


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"a": "\xc3\x28"}',
        b'{"a": ' + nested(MAX_JSON_DEPTH) + b"}",
        nested(1000),
        b"{" * 100_000,
    ],
)
def test_a_body_that_is_not_utf8_or_nests_too_deep_is_refused(body):
    with pytest.raises(ProblemError) as refused:
        check_json_body(body)
    assert refused.value.status_code == 400
    assert refused.value.code == "invalid_body"


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',  # in a string
        b'{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
        nested(MAX_JSON_DEPTH),
        '{"name": "Léa Pétain-Dupont ✓"}'.encode(),
        b"",
    ],
)
def test_a_sound_body_passes(body):
    check_json_body(body)


class Form(BaseModel):
    name: Name
    email: EmailInput
    token: Token
    password: Password
    address: text(500, multiline=True) = ""  # type: ignore[valid-type]
    source: SourceAddress = "127.0.0.1"


GOOD = {
    "name": "Léa Petit",
    "email": "lea@example.fr",
    "token": "t" * 43,
    "password": "a\tpassword with a tab",
    "address": "3 rue des Lilas\r\n69001 Lyon",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Léa\x00"),
        ("name", "Léa\x1b[2J"),
        ("name", "x" * 201),
        ("name", "   "),
        ("email", "lea\x00@example.fr"),
        ("email", "a" * 321),
        ("token", "t\x00" * 10),
        ("token", "short"),
        ("password", "pass\x00word and more"),
        ("password", "x" * 1025),
        ("address", "3 rue\x00"),
        ("address", "x" * 501),
        ("source", "<script>alert(1)</script>"),
        ("source", "unknown"),
        ("source", "10.0.0.1, 10.0.0.2"),
        ("name", "\ud800"),  # a lone surrogate: no database encodes it
    ],
)
def test_field_types_refuse_control_characters_and_overlong_text(field, value):
    with pytest.raises(ValidationError) as refused:
        Form(**{**GOOD, field: value})
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


def test_field_types_keep_sound_text():
    form = Form(**GOOD, source="::ffff:192.0.2.1")
    assert (form.name, form.address, form.source) == ("Léa Petit", GOOD["address"], "192.0.2.1")


async def test_query_integers_are_bounded():
    @get("/page", sync_to_thread=False)
    def page(offset: Offset = 0) -> dict[str, int]:
        return {"offset": offset}

    app = build_http_app("test", [page], checks={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/page", params={"offset": MAX_INT})).json() == {"offset": MAX_INT}
        for beyond in (MAX_INT + 1, 2**70, -1, "1e400"):
            response = await client.get("/page", params={"offset": beyond})
            assert (response.status_code, response.json()["code"]) == (400, "invalid_request")


async def test_a_service_answers_bad_bodies_with_invalid_body_problems():
    @post("/echo", sync_to_thread=False)
    def echo(data: Form) -> dict[str, str]:
        return {"name": data.name}

    app = build_http_app("test", [echo], checks={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        headers = {"Content-Type": "application/json"}
        for body in (nested(1000), b'{"name": "caf\xe9"}', b'{"name": ', b"\xff\xfe"):
            response = await client.post("/echo", content=body, headers=headers)
            assert response.status_code == 400, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "invalid_body"
        refused = await client.post("/echo", json={**GOOD, "name": "Léa\x00"})
        assert (refused.status_code, refused.json()["code"]) == (400, "invalid_request")
        assert [error["key"] for error in refused.json()["errors"]] == ["name"]
        assert refused.json()["field"] == "name"
        assert (await client.post("/echo", json=GOOD)).json() == {"name": "Léa Petit"}


async def test_a_correlation_id_that_is_not_a_plain_token_is_replaced():
    @get("/ping", sync_to_thread=False)
    def ping() -> str:
        return "pong"

    app = build_http_app("test", [ping], checks={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for sent in (b"\xff\x01abc", b"a b", b"x" * 101, b"<script>"):
            response = await client.get("/ping", headers=[(b"X-Correlation-ID", sent)])
            assert response.status_code == 200
            assert response.headers["X-Correlation-ID"].encode() != sent
        kept = await client.get("/ping", headers={"X-Correlation-ID": "req-2026.12:01_a"})
        assert kept.headers["X-Correlation-ID"] == "req-2026.12:01_a"


@pytest.mark.parametrize("body", [b'"\\' * 400_000, b'"a' * 400_000, b'["' * 400_000, b"[" * 32 + b'"' * 900_000])
def test_checking_a_body_takes_one_pass(body):
    """Unterminated strings, escapes, brackets in strings: at most one pass, accepted or refused."""
    started = time.perf_counter()
    with contextlib.suppress(ProblemError):
        check_json_body(body)
    assert time.perf_counter() - started < 1.0
