"""The mail provider's bounce reports (gateway.notifications), in-process: without GATEWAY_BOUNCE_WEBHOOK_TOKEN the
route does not exist; with it, only its bearer gets through; an RFC 3464 report gives its hard bounces only."""

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway.main import app
from gateway.notifications import _failed_recipients

DSN = (
    b"--b1\r\n"
    b"Content-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.\r\n"
    b"--b1\r\n"
    b"Content-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example\r\n\r\n"
    b"Final-Recipient: rfc822; gone@lycee-test.fr\r\n"
    b"Action: failed\r\n"
    b"Status: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <gone@lycee-test.fr>: Recipient address rejected\r\n\r\n"
    b"Final-Recipient: rfc822; full@lycee-test.fr\r\n"
    b"Action: delayed\r\n"
    b"Status: 4.2.2\r\n\r\n"
    b"Final-Recipient: rfc822; later@lycee-test.fr\r\n"
    b"Action: failed\r\n"
    b"Status: 4.4.7\r\n\r\n"
    b"--b1--\r\n"
)
DSN_TYPE = 'multipart/report; report-type=delivery-status; boundary="b1"'


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Any]]:
    with TestClient(app) as client:
        yield client


def test_without_a_configured_token_the_route_does_not_exist(client: TestClient[Any]) -> None:
    app.state["bounce_webhook_token"] = None
    answer = client.post(
        "/hooks/mail/bounces",
        json={"recipient": "a@b.fr", "type": "hard"},
        headers={"Authorization": "Bearer anything"},
    )
    assert answer.status_code == 404


def test_only_the_configured_bearer_gets_through(client: TestClient[Any]) -> None:
    app.state["bounce_webhook_token"] = "s3cret-token"
    try:
        for authorization in ("Bearer wrong", "Bearer s3cret-token-and-more", "Basic czNjcmV0LXRva2Vu", ""):
            answer = client.post(
                "/hooks/mail/bounces",
                json={"recipient": "a@b.fr", "type": "soft"},
                headers={"Authorization": authorization} if authorization else {},
            )
            assert answer.status_code == 401, authorization
            assert answer.headers["www-authenticate"] == "Bearer"
        soft = client.post(
            "/hooks/mail/bounces",
            json={"recipient": "a@b.fr", "type": "soft", "reason": "mailbox full"},
            headers={"Authorization": "Bearer s3cret-token"},
        )
        assert soft.status_code == 202 and soft.json() == {"marked": []}  # acknowledged, nothing to mark
    finally:
        app.state["bounce_webhook_token"] = None


def test_a_delivery_status_notification_gives_its_permanent_failures_only() -> None:
    assert _failed_recipients(DSN_TYPE, DSN) == [
        ("gone@lycee-test.fr", "smtp; 550 5.1.1 <gone@lycee-test.fr>: Recipient address rejected")
    ]
