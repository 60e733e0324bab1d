"""The back-office delivery log, through the gateway and a real notifier, SMTP catcher and Kafka: an organiser
sees a sent mail's delivery, filters by recipient (whole address or its beginning, any case) and by status,
and sees why a mail failed (the catcher refuses `bounce…` addresses with 550, as a real server refuses an
unknown mailbox); nobody else sees it, and nothing of a mail's content or links is shown."""

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from api_world import grant_organiser, log_in, sign_up, unique_email
from mail import mails_to, wait_for_mail

pytestmark = pytest.mark.infra

LOG = "/api/v1/back-office/deliveries"
SHOWN = {
    "id",
    "event_id",
    "channel",
    "recipient",
    "template",
    "language",
    "status",
    "attempts",
    "response_status",
    "last_error",
    "created_at",
    "sent_at",
    "next_attempt_at",
}


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def organiser(system) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        person = await sign_up(client, "organiser")
        await grant_organiser(system, person.email)
        return await log_in(client, person.email)


async def log_until(
    gateway: httpx.AsyncClient, auth: dict[str, str], found: Any, timeout: float = 30, **params: Any
) -> dict[str, Any]:
    """The log's answer for `params` once `found(answer)` holds (the notifier sends and records asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await gateway.get(LOG, params=params, headers=auth)
        assert response.status_code == 200, response.text
        if found(answer := response.json()):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not in the delivery log within {timeout}s: {params} -> {answer}")
        await asyncio.sleep(0.2)


async def test_an_organiser_sees_a_sent_mail_and_filters_by_recipient_and_status(gateway, organiser, system):
    manager = await sign_up(gateway, "log-sent", verified_with=system.stack.mail_api)  # the verification mail
    answer = await log_until(
        gateway, organiser, lambda a: a["counts"]["sent"] == 1, recipient=manager.email.upper(), status="sent"
    )
    [delivery] = answer["deliveries"]
    assert set(delivery) == SHOWN  # never the mail's variables (a link's token)
    assert (delivery["recipient"], delivery["template"], delivery["language"]) == (
        manager.email,
        "account_registered",
        "fr",
    )
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("sent", 1, None)
    assert (delivery["channel"], delivery["response_status"]) == ("email", None)
    assert delivery["sent_at"] is not None
    assert answer["counts"] == {"pending": 0, "sent": 1, "failed": 0, "skipped": 0}
    assert (answer["total"], answer["limit"], answer["offset"]) == (1, 50, 0)

    by_prefix = await gateway.get(LOG, params={"recipient_prefix": manager.email[:12].upper()}, headers=organiser)
    assert delivery["id"] in [d["id"] for d in by_prefix.json()["deliveries"]]
    failed_only = await gateway.get(LOG, params={"recipient": manager.email, "status": "failed"}, headers=organiser)
    assert failed_only.json()["deliveries"] == [] and failed_only.json()["counts"]["sent"] == 1
    stranger = await gateway.get(LOG, params={"recipient": unique_email("nobody")}, headers=organiser)
    assert stranger.json()["deliveries"] == [] and stranger.json()["total"] == 0
    wildcard = await gateway.get(LOG, params={"recipient_prefix": "%"}, headers=organiser)  # a character, not LIKE's
    assert wildcard.json()["deliveries"] == []


async def test_newest_first_and_pages(gateway, organiser, system):
    manager = await sign_up(gateway, "log-pages", verified_with=system.stack.mail_api)
    reset = await gateway.post("/api/v1/password-resets", json={"email": manager.email})
    assert reset.status_code == 202
    await wait_for_mail(system.stack.mail_api, manager.email, subject_contains="mot de passe")
    answer = await log_until(gateway, organiser, lambda a: a["counts"]["sent"] == 2, recipient=manager.email)
    assert [d["template"] for d in answer["deliveries"]] == ["password_reset", "account_registered"]
    second = await gateway.get(LOG, params={"recipient": manager.email, "limit": 1, "offset": 1}, headers=organiser)
    assert [d["template"] for d in second.json()["deliveries"]] == ["account_registered"]
    reset_delivery = answer["deliveries"][0]
    of_event = await gateway.get(LOG, params={"event_id": reset_delivery["event_id"]}, headers=organiser)
    assert [d["id"] for d in of_event.json()["deliveries"]] == [reset_delivery["id"]]
    one_message = {"recipient": manager.email, "template": "account_registered", "channel": "email"}
    assert [
        d["template"] for d in (await gateway.get(LOG, params=one_message, headers=organiser)).json()["deliveries"]
    ] == ["account_registered"]
    assert (await gateway.get(LOG, params={"limit": 201}, headers=organiser)).status_code == 400
    bad_queries = [{"status": "lost"}, {"recipient": "a\x00@b.fr"}, {"recipient_prefix": "\x07"}, {"channel": "fax"}]
    bad_queries += [{"event_id": "not-a-uuid"}, {"template": "x" * 101}]
    bad_queries.append({"recipient": "a" * 321})
    for bad in bad_queries:
        refused = await gateway.get(LOG, params=bad, headers=organiser)
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_request", (bad, refused.text)


async def test_a_refused_address_fails_at_once_with_the_servers_reply(gateway, organiser, system):
    manager = await sign_up(gateway, "log-bounce", verified_with=system.stack.mail_api)
    bouncing = f"bounce-{uuid.uuid4().hex[:8]}@lycee-test.fr"
    members = f"/api/v1/accounts/{manager.account_id}/members"
    added = await gateway.post(
        members, json={"members": [{"name": "Léa Petit", "email": bouncing}]}, headers=manager.auth
    )
    assert added.status_code == 200 and added.json()["invited"] == 1, added.text

    answer = await log_until(gateway, organiser, lambda a: a["total"] == 1, recipient=bouncing, status="failed")
    [delivery] = answer["deliveries"]
    assert (delivery["template"], delivery["attempts"], delivery["sent_at"]) == ("member_invitation", 1, None)
    assert "550" in delivery["last_error"] and "mailbox unavailable" in delivery["last_error"]
    assert "token" not in delivery["last_error"]
    assert answer["counts"] == {"pending": 0, "sent": 0, "failed": 1, "skipped": 0}
    assert await mails_to(system.stack.mail_api, bouncing) == []


async def test_only_organisers_see_the_log(gateway, system):
    manager = await sign_up(gateway, "log-refused")
    refused = await gateway.get(LOG, headers=manager.auth)
    assert refused.status_code == 403 and refused.json()["code"] == "organisers_only"
    assert (await gateway.get(LOG)).status_code == 401
