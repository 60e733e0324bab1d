"""Preferences, unsubscribe links and bouncing addresses (notifier.preferences): the signed link (no forgery, no
expiry, nothing else read as one), the categories, a reminder skipped for an institution that opted out while its
transactional mail goes, a reminder sent with its link (footer and List-Unsubscribe one-click), and an address the
server refuses at RCPT TO marked bouncing so that the next mail to it fails at once without the server."""

import asyncio
import contextlib
import email
import email.policy
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select

from notifier import preferences, service
from notifier.delivery import Policy, claim, deliver
from notifier.mailer import SmtpConfig, SmtpPool
from notifier.models import bouncing_addresses, deliveries
from notifier.preferences import UnsubscribeLinks
from notifier.service import RecipientRefused, Undeliverable
from servicekit.db import Database, outbox
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

POLICY = Policy(sender="Visiopass <no-reply@visiopass.test>", max_attempts=4, concurrency=8)
VARIABLES = {"contact_name": "Claire", "expires_at": "3 mars 2027 09:00 CET", "link": "https://x/verify-email?token=t"}
KEY = "k" * 64
LINKS = UnsubscribeLinks(KEY, "https://visiopass.example/")
ACCOUNT = uuid.UUID("6f1c2d3e-0000-4000-8000-000000000001")
REMINDER_VARIABLES = {"name": "Claire", "tokens": "3", "expires_at": "3 mars 2027 09:00 CET", "link": "https://x/p"}


# --- the link --------------------------------------------------------------------------------------------------


def test_a_link_names_its_account_and_category_and_is_the_same_every_time():
    token = LINKS.token(ACCOUNT)
    assert LINKS.read(token) == (ACCOUNT, "reminders")
    assert LINKS.token(ACCOUNT) == token  # no expiry, no state: the link mailed months ago still reads
    assert LINKS.url(ACCOUNT) == f"https://visiopass.example/unsubscribe/{token}"
    assert all(c.isalnum() or c in "-_." for c in token) and len(token) < preferences.MAX_TOKEN


def test_a_forged_or_damaged_token_is_unknown():
    token = LINKS.token(ACCOUNT)
    payload, mac = token.split(".")
    other = UnsubscribeLinks("another key", "https://visiopass.example")
    forged_for_another_account = LINKS.token(uuid.uuid4()).split(".")[0] + "." + mac
    for bad in [
        other.token(ACCOUNT),  # signed with another key
        forged_for_another_account,
        payload + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"),
        payload,
        token + ".x",
        "",
        "é.é",
        "!!!.???",
        token + "A" * 300,
        LINKS.token(ACCOUNT, "transactional"),  # a category one cannot leave
    ]:
        assert LINKS.read(bad) is None, bad


def test_reminders_are_planned_as_bulk_and_everything_else_is_transactional():
    assert "tokens_expiring" in service.REMINDERS
    assert not {"password_reset", "payment_received", "member_invitation"} & service.REMINDERS


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_reminder_shows_its_unsubscribe_link_in_both_parts(language):
    url = LINKS.url(ACCOUNT)
    rendered = service.render("tokens_expiring", language, REMINDER_VARIABLES | {service.UNSUBSCRIBE_URL: url})
    assert url in rendered.text and f'href="{url}"' in rendered.html
    assert url not in service.render("tokens_expiring", language, REMINDER_VARIABLES).text


# --- the delivery loop -----------------------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler keeping the mails it takes; `answer(command, count)` may refuse one instead (as in
    test_delivery.py)."""

    def __init__(self, answer: Callable[[str, int], str | None] = lambda command, count: None) -> None:
        self.answer = answer
        self.counts: Counter[str] = Counter()
        self.mails: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.counts["RCPT"] += 1
        if refusal := self.answer("RCPT", self.counts["RCPT"]):
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 Message accepted"


@contextlib.asynccontextmanager
async def smtp_server(mailbox: Mailbox) -> AsyncIterator[SmtpPool]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(mailbox, hostname="mx.test"), "127.0.0.1", 0)
    pool = SmtpPool(SmtpConfig(host="127.0.0.1", port=server.sockets[0].getsockname()[1], timeout=5.0, pool_size=4))
    try:
        yield pool
    finally:
        await pool.close()
        server.close()


async def rows(db: Database) -> dict[str, Any]:
    async with db.transaction() as session:
        return {row.recipient: row for row in await session.execute(select(deliveries))}


async def one_pass(db: Database, mailer: SmtpPool, policy: Policy = POLICY) -> int:
    claimed = await claim(db, policy, datetime.now(UTC))
    await deliver(db, Outbox("notifier"), mailer, claimed, policy)
    return len(claimed)


async def events(db: Database) -> Counter[str]:
    async with db.transaction() as session:
        return Counter(
            row.value.split(b'"type":"')[1].split(b'"')[0].decode() for row in await session.execute(select(outbox))
        )


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=12)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


async def plan(db: Database, template: str, recipient: str, variables: dict, account_id=ACCOUNT) -> None:  # type: ignore[no-untyped-def,type-arg]
    async with db.transaction() as session:
        await service.plan(
            session,
            event_id=uuid.uuid4(),
            template=template,
            language="fr",
            recipient=recipient,
            variables=variables,
            account_id=account_id,
        )


WITH_LINKS = Policy(sender=POLICY.sender, max_attempts=4, concurrency=8, unsubscribe=LINKS)


@pytest.mark.infra
async def test_a_reminder_carries_its_link_and_one_click_unsubscribe(db: Database) -> None:
    mailbox = Mailbox()
    await plan(db, "tokens_expiring", "claire@example.fr", REMINDER_VARIABLES)
    assert (await rows(db))["claire@example.fr"].priority == 1  # a reminder is bulk
    async with smtp_server(mailbox) as mailer:
        assert await one_pass(db, mailer, policy=WITH_LINKS) == 1
    [mail] = mailbox.mails
    url = LINKS.url(ACCOUNT)
    assert mail["List-Unsubscribe"] == f"<{url}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in mail.get_body(("plain",)).get_content()


@pytest.mark.infra
async def test_an_opted_out_institution_gets_no_reminder_but_its_transactional_mail(db: Database) -> None:
    async with db.transaction() as session:
        await preferences.choose(session, ACCOUNT, reminders=False, by=preferences.BY_LINK)
    mailbox = Mailbox()
    await plan(db, "tokens_expiring", "claire@example.fr", REMINDER_VARIABLES)
    await plan(db, "verification_link", "paul@example.fr", VARIABLES)
    await plan(db, "tokens_expiring", "other@example.fr", REMINDER_VARIABLES, account_id=uuid.uuid4())
    async with smtp_server(mailbox) as mailer:
        assert await one_pass(db, mailer, policy=WITH_LINKS) == 3
    found = await rows(db)
    skipped = found["claire@example.fr"]
    assert (skipped.status, skipped.last_error, skipped.context) == ("skipped", "opted out of reminders", None)
    assert (found["paul@example.fr"].status, found["other@example.fr"].status) == ("sent", "sent")
    assert sorted(str(mail["To"]) for mail in mailbox.mails) == ["other@example.fr", "paul@example.fr"]
    assert "List-Unsubscribe" not in next(m for m in mailbox.mails if m["To"] == "paul@example.fr")
    assert await events(db) == {"NotificationSent": 2}  # nothing failed


@pytest.mark.infra
async def test_a_mailbox_refused_at_rcpt_is_marked_and_the_next_mail_to_it_fails_without_the_server(
    db: Database,
) -> None:
    mailbox = Mailbox(lambda command, count: "550 5.1.1 No such user here" if command == "RCPT" else None)
    await plan(db, "verification_link", "Nobody@Example.fr", VARIABLES)
    async with smtp_server(mailbox) as mailer:
        assert await one_pass(db, mailer) == 1
        async with db.transaction() as session:
            [marked] = (await session.execute(select(bouncing_addresses))).all()
        assert (marked.address, marked.kind, marked.source, marked.account_id) == (
            "nobody@example.fr",
            "hard",
            "smtp",
            ACCOUNT,
        )
        assert "550 5.1.1" in marked.reason
        await plan(db, "password_reset", "nobody@example.FR", VARIABLES)
        assert await one_pass(db, mailer) == 1
    assert mailbox.counts["RCPT"] == 1  # the second mail never reached the server
    second = (await rows(db))["nobody@example.FR"]
    assert (second.status, second.last_error) == ("failed", "address bounces (hard bounce)")
    async with db.transaction() as session:
        assert [a["address"] for a in await preferences.bouncing_of(session, ACCOUNT)] == ["nobody@example.fr"]
        assert not await preferences.clear(session, uuid.uuid4(), "nobody@example.fr")  # not that account's
        assert await preferences.clear(session, ACCOUNT, "NOBODY@example.fr")
        assert await preferences.bouncing_of(session, ACCOUNT) == []


@pytest.mark.infra
async def test_a_policy_refusal_of_our_relay_is_no_bounce(db: Database) -> None:
    mailbox = Mailbox(lambda command, count: "550 5.7.1 Relaying denied" if command == "RCPT" else None)
    await plan(db, "verification_link", "claire@example.fr", VARIABLES)
    async with smtp_server(mailbox) as mailer:
        assert await one_pass(db, mailer) == 1
    assert (await rows(db))["claire@example.fr"].status == "failed"
    async with db.transaction() as session:
        assert (await session.execute(select(bouncing_addresses))).all() == []


@pytest.mark.infra
async def test_the_transport_tells_a_mailbox_refusal_from_a_policy_one() -> None:
    message = service.compose(
        POLICY.sender, "a@example.fr", service.Rendered("s", "t\n", "<p>t</p>\n"), "fr", date=datetime.now(UTC)
    )
    for reply, refused in [("550 5.1.1 No such user", True), ("550 5.7.1 Relaying denied", False), ("530 Auth", False)]:
        async with smtp_server(Mailbox(lambda command, count, reply=reply: reply if command == "RCPT" else None)) as m:
            with pytest.raises(Undeliverable) as caught:
                await m.send(message)
        assert isinstance(caught.value, RecipientRefused) is refused, reply


@pytest.mark.infra
async def test_a_bounce_report_marks_the_address_for_the_account_of_its_latest_mail(db: Database) -> None:
    await plan(db, "verification_link", "léa@example.fr", VARIABLES)
    async with db.transaction() as session:
        await preferences.mark_bouncing(session, "LÉA@example.fr", "mailbox full for good", source="report")
        await preferences.mark_bouncing(session, "unknown@example.fr", "no such user", source="report")
        marked = {row.address: row for row in await session.execute(select(bouncing_addresses))}
    assert marked["léa@example.fr"].account_id == ACCOUNT and marked["léa@example.fr"].source == "report"
    assert marked["unknown@example.fr"].account_id is None


@pytest.mark.infra
async def test_a_closed_account_leaves_no_preference_and_no_bouncing_address(db: Database) -> None:
    other = uuid.uuid4()
    async with db.transaction() as session:
        await preferences.choose(session, ACCOUNT, reminders=False, by="someone")
        await preferences.mark_bouncing(session, "gone@example.fr", "550", source="report", account_id=ACCOUNT)
        await preferences.mark_bouncing(session, "kept@example.fr", "550", source="report", account_id=other)
        await service.forget_account(session, ACCOUNT, except_event=uuid.uuid4())
        assert (await preferences.preferences_of(session, ACCOUNT))["reminders"] is True
        assert await preferences.bouncing_of(session, ACCOUNT) == []
        assert [a["address"] for a in await preferences.bouncing_of(session, other)] == ["kept@example.fr"]
