"""What the services log: an unhandled database error is logged without the statement's parameters (a
password hash, an email, a name), and security events carry ids, never secrets."""

import io
import json
import logging

import httpx
import pytest
from litestar import get
from sqlalchemy.exc import IntegrityError

from servicekit import context
from servicekit.logs import JsonFormatter, security_event
from servicekit.runtime import build_http_app

HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$MARKERHASHVALUE"
EMAIL = "marker.person@leak-check.fr"


class FakeUniqueViolation(Exception):
    """Stands in for asyncpg's error: its text and attributes repeat the row's values."""

    sqlstate = "23505"
    constraint_name = "users_email_unique"
    detail = f"Key (lower(email::text))=({EMAIL}) already exists."

    def __str__(self) -> str:
        return f"duplicate key value violates unique constraint\nDETAIL:  {self.detail}"


FakeUniqueViolation.__module__ = "asyncpg.exceptions"


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


async def test_an_unhandled_database_error_logs_neither_parameters_nor_the_drivers_text(captured):
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        # what SQLAlchemy raises without hide_parameters: the parameters are in its text
        raise IntegrityError(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2)", (EMAIL, HASH), FakeUniqueViolation()
        )

    app = build_http_app("test", [boom], checks={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500 and EMAIL not in response.text
    lines = captured()
    text = json.dumps(lines)
    assert EMAIL not in text and "MARKERHASHVALUE" not in text
    [error] = [line for line in lines if line["message"] == "unhandled error"]
    assert "IntegrityError" in error["exception"] and "sqlstate=23505" in error["exception"]
    assert "users_email_unique" in error["exception"] and "Traceback" in error["exception"]


def test_an_error_given_as_a_message_argument_is_shown_by_its_kind(captured):
    error = IntegrityError("UPDATE users SET email = $1", (EMAIL,), FakeUniqueViolation())
    logging.getLogger("test").warning("failed (%r), then %s", error, error.orig)
    [line] = captured()
    assert EMAIL not in line["message"] and line["message"].count("sqlstate=23505") == 2
    logging.getLogger("test").warning("plain errors keep their text: %s", ValueError("offset 3"))
    assert captured()[-1]["message"].endswith("offset 3")


def test_a_security_event_keeps_ids_and_drops_secret_looking_fields(captured):
    token = context.client_address.set("192.0.2.7")
    try:
        security_event(
            "login_failed",
            outcome="refused",
            user_id="0b4c",
            email=EMAIL,
            password="hunter2 hunter2",
            reset_token="abc123",
            contact_name="Camille Martin",
        )
    finally:
        context.client_address.reset(token)
    [line] = captured()
    assert (line["security_event"], line["outcome"], line["user_id"], line["source"]) == (
        "login_failed",
        "refused",
        "0b4c",
        "192.0.2.7",
    )
    assert (line["logger"], line["level"]) == ("security", "warning")
    text = json.dumps(line)
    assert EMAIL not in text and "hunter2" not in text and "abc123" not in text and "Camille" not in text
