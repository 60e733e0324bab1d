"""Preferences, unsubscribe links and bounces through the real gateway, notifier, Kafka and mail catcher: a reminder
carries List-Unsubscribe with RFC 8058 one-click; the provider's one-click POST (no cookie, no CSRF token) stops
the institution's next reminder (skipped, in the delivery log) while its transactional mail still goes; an unknown
or forged link is a 404; a manager switches reminders back on; the provider's bounce report marks an address, the
manager's dashboard says so and "try again" clears it; bad bounce reports are 400 problems, a wrong bearer 401."""

import asyncio
import email
import email.policy
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from portal_world import portal_login, submit

from api_world import Manager, sign_up, unique_email
from contracts.events.billing import Notice, TokensExpiringSoon
from kit import publish
from mail import wait_for_mail, wait_for_mails

pytestmark = pytest.mark.infra

REMINDER_SUBJECT = "expiration"
HOOK = "/hooks/mail/bounces"


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture
async def notifier(system):
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("notifier"), headers=headers, timeout=30) as client:
        yield client


async def remind(system, manager: Manager) -> None:  # type: ignore[no-untyped-def]
    """Billing's reminder that tokens expire soon, published as billing would."""
    event = TokensExpiringSoon(
        account_id=uuid.UUID(manager.account_id),
        lot_id=uuid.uuid4(),
        tokens=3,
        expires_at=datetime.now(UTC) + timedelta(days=20),
        notice=Notice(email=manager.email, name="Camille Martin", language="fr"),
    )
    await publish(system.stack.kafka_bootstrap, event)


async def raw(mail_api: str, mail: dict[str, Any]) -> email.message.EmailMessage:
    async with httpx.AsyncClient(base_url=mail_api, timeout=30) as client:
        content = (await client.get(f"/api/messages/{mail['id']}/raw")).content
    return email.message_from_bytes(content, policy=email.policy.default)  # type: ignore[return-value]


async def deliveries_until(notifier: httpx.AsyncClient, recipient: str, status: str, count: int) -> list[Any]:
    deadline = time.monotonic() + 30
    while True:
        found = (await notifier.get("/internal/deliveries", params={"recipient": recipient, "status": status})).json()
        if len(found["deliveries"]) >= count:
            return found["deliveries"]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} {status} deliveries to {recipient}: {found}")
        await asyncio.sleep(0.2)


async def test_one_click_unsubscribe_stops_the_next_reminder_but_not_transactional_mail(gateway, notifier, system):
    mail_api = system.stack.mail_api
    manager = await sign_up(gateway, "unsubscribe", verified_with=mail_api)
    await remind(system, manager)
    mail = await wait_for_mail(mail_api, manager.email, subject_contains=REMINDER_SUBJECT)
    message = await raw(mail_api, mail)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(message["List-Unsubscribe"]).strip("<>")
    assert url.startswith(system.url("gateway") + "/unsubscribe/")
    assert url in mail["text"]  # and in the mail's footer, for people

    # What a mailbox provider sends (RFC 8058): no cookie, no CSRF token; twice does what once did
    async with httpx.AsyncClient(timeout=30) as provider:
        for _ in range(2):
            clicked = await provider.post(
                url,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert clicked.status_code == 200, clicked.text
            assert 'id="unsubscribed"' in clicked.text
    chosen = (await notifier.get(f"/internal/accounts/{manager.account_id}/preferences")).json()
    assert (chosen["reminders"], chosen["updated_by"]) == (False, "unsubscribe link")

    await remind(system, manager)
    asked = await gateway.post("/api/v1/password-resets", json={"email": manager.email})
    assert asked.status_code == 202
    await wait_for_mail(mail_api, manager.email, subject_contains="mot de passe")  # transactional: it goes
    [skipped] = await deliveries_until(notifier, manager.email, "skipped", 1)
    assert (skipped["template"], skipped["last_error"]) == ("tokens_expiring", "opted out of reminders")
    await wait_for_mails(mail_api, manager.email, 1, subject_contains=REMINDER_SUBJECT)  # still the first one only


async def test_the_link_page_asks_before_unsubscribing_and_an_unknown_link_is_404(gateway, notifier, system):
    from notifier.preferences import UnsubscribeLinks

    account_id = uuid.uuid4()
    token = UnsubscribeLinks(system.unsubscribe_key, system.url("gateway")).token(account_id)
    shown = await gateway.get(f"/unsubscribe/{token}", cookies={"vp_lang": "en"})
    assert shown.status_code == 200 and "Stop receiving reminders" in shown.text
    assert "receipts" in shown.text  # transactional mail continues, the page says so
    assert (await notifier.get(f"/internal/accounts/{account_id}/preferences")).json()["reminders"] is True

    payload, mac = token.split(".")
    forged = UnsubscribeLinks("another key", system.url("gateway")).token(account_id)
    for bad in [forged, f"{payload}.{mac[::-1]}", "garbage", "a.b", "x" * 300]:
        for method in ("GET", "POST"):
            answer = await gateway.request(method, f"/unsubscribe/{bad}")
            assert answer.status_code == 404, (method, bad, answer.status_code)
    problem = await notifier.get(f"/internal/unsubscribe/{forged}")
    assert problem.status_code == 404 and problem.json()["code"] == "unknown_link"
    unknown = await notifier.post("/internal/unsubscribe", json={"token": forged})
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_link"
    assert (await notifier.get(f"/internal/accounts/{account_id}/preferences")).json()["reminders"] is True


async def test_a_manager_turns_reminders_off_and_on_and_a_member_only_sees_it(gateway, notifier, system):
    mail_api = system.stack.mail_api
    manager = await sign_up(gateway, "prefs-page", verified_with=mail_api)
    browser = await portal_login(system.url("gateway"), manager.email)
    try:
        page = await browser.get("/account/notifications")
        assert page.status_code == 200 and 'name="reminders"' in page.text and "checked" in page.text
        off = await submit(browser, "/account/notifications", "/account/notifications", {}, follow_redirects=False)
        assert off.status_code == 303
        assert (await notifier.get(f"/internal/accounts/{manager.account_id}/preferences")).json()["reminders"] is False
        fields = {"reminders": "on"}
        on = await submit(browser, "/account/notifications", "/account/notifications", fields, follow_redirects=False)
        assert on.status_code == 303
        chosen = (await notifier.get(f"/internal/accounts/{manager.account_id}/preferences")).json()
        me = (await gateway.get("/api/v1/me", headers=manager.auth)).json()
        assert (chosen["reminders"], chosen["updated_by"]) == (True, me["user_id"])
        no_token = await browser.post("/account/notifications", data={"reminders": "on"})
        assert no_token.status_code == 403  # the portal's form needs its CSRF token
    finally:
        await browser.aclose()


async def test_a_bounce_report_warns_the_managers_and_retry_clears_it(gateway, notifier, system):
    mail_api = system.stack.mail_api
    manager = await sign_up(gateway, "told-of-bounces", verified_with=mail_api)
    member = unique_email("gone-member")
    added = await gateway.post(
        f"/api/v1/accounts/{manager.account_id}/members",
        json={"members": [{"name": "Léa Petit", "email": member}]},
        headers=manager.auth,
    )
    assert added.status_code == 200, added.text
    await wait_for_mail(mail_api, member)  # its delivery names the account the address is reported for
    bearer = {"Authorization": f"Bearer {system.bounce_webhook_token}"}
    report = {"recipient": member.upper(), "type": "hard", "reason": "550 5.1.1 user unknown"}
    marked = await gateway.post(HOOK, json=report, headers=bearer)
    assert marked.status_code == 202 and marked.json() == {"marked": [member]}, marked.text

    dashboard = (await gateway.get(f"/api/v1/accounts/{manager.account_id}/dashboard", headers=manager.auth)).json()
    [bouncing] = dashboard["bouncing"]["addresses"]
    assert (bouncing["address"], bouncing["reason"]) == (member, "550 5.1.1 user unknown")

    browser = await portal_login(system.url("gateway"), manager.email)
    try:
        page = await browser.get("/account")
        assert 'id="bouncing"' in page.text and member in page.text
        retried = await submit(
            browser, "/account", "/account/bounces/retry", {"address": member}, follow_redirects=False
        )
        assert retried.status_code == 303
        page = await browser.get("/account")
        assert 'id="bouncing"' not in page.text
        again = await submit(browser, "/account", "/account/bounces/retry", {"address": member}, follow_redirects=False)
        assert again.status_code == 404
    finally:
        await browser.aclose()
    assert (await notifier.get(f"/internal/accounts/{manager.account_id}/bounces")).json() == {"addresses": []}


async def test_a_delivery_status_notification_marks_its_failed_recipient(gateway, notifier, system):
    gone = unique_email("dsn-gone")
    dsn = (
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {gone}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b1--\r\n"
    ).encode()
    answer = await gateway.post(
        HOOK,
        content=dsn,
        headers={
            "Authorization": f"Bearer {system.bounce_webhook_token}",
            "Content-Type": 'multipart/report; report-type=delivery-status; boundary="b1"',
        },
    )
    assert answer.status_code == 202 and answer.json() == {"marked": [gone]}, answer.text


async def test_bad_reports_and_wrong_bearers_are_refused(gateway, system):
    bearer = {"Authorization": f"Bearer {system.bounce_webhook_token}"}
    for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": system.bounce_webhook_token}):
        refused = await gateway.post(HOOK, json={"recipient": "a@b.fr", "type": "hard"}, headers=wrong)
        assert refused.status_code == 401, wrong
    deep = b"[" * 100 + b"]" * 100
    for body in [
        b"not json",
        b"\xff\xfe",
        deep,
        b'{"type": "hard"}',
        b'{"recipient": "not an address", "type": "hard"}',
        b'{"recipient": "a@b.fr", "type": "medium"}',
        b'{"recipient": "a@b.fr", "type": "hard", "reason": "' + b"x" * 1001 + b'"}',
        b'{"recipient": "a@b.fr", "type": "hard", "reason": "a\\u0000b"}',
        b"[1, 2]",
    ]:
        answer = await gateway.post(HOOK, content=body, headers=bearer | {"Content-Type": "application/json"})
        assert answer.status_code == 400, (body[:40], answer.status_code, answer.text)
        assert answer.json()["code"] in ("invalid_body", "invalid_request")
    soft = await gateway.post(HOOK, json={"recipient": "a@b.fr", "type": "soft"}, headers=bearer)
    assert soft.status_code == 202 and soft.json() == {"marked": []}
