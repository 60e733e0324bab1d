"""The delivery loop (notifier.delivery) on a real notifier database and real SMTP servers (aiosmtpd on 127.0.0.1,
started by the test): a server failing twice then accepting gets one mail after two retries; a permanent refusal
is recorded once, never retried; an internationalised address on a server without SMTPUTF8 fails at once; two
replicas sharing 300 deliveries send each exactly once; transactional mail goes before a bulk fan-out; a replica
that dies with leased deliveries leaves them to another once the lease lapses; a template missing a variable is
refused when planned."""

import asyncio
import contextlib
import email
import email.policy
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select, update

from notifier import service
from notifier.delivery import Policy, backoff, claim, deliver
from notifier.mailer import SmtpConfig, SmtpPool
from notifier.models import deliveries
from servicekit.db import Database, outbox
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

pytestmark = pytest.mark.infra

POLICY = Policy(sender="Visiopass <no-reply@visiopass.test>", max_attempts=4, concurrency=8)
VARIABLES = {
    "contact_name": "Claire Martin",
    "expires_at": "3 mars 2027 09:00 CET",
    "link": "https://visiopass.test/verify-email?token=t",
}


class Mailbox:
    """An aiosmtpd handler keeping the mails it takes; `answer(command, count)` may refuse one instead."""

    def __init__(self, answer: Callable[[str, int], str | None] = lambda command, count: None) -> None:
        self.answer = answer
        self.counts: Counter[str] = Counter()
        self.mails: list[email.message.EmailMessage] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.counts["RCPT"] += 1
        refusal = self.answer("RCPT", self.counts["RCPT"])
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.counts["DATA"] += 1
        refusal = self.answer("DATA", self.counts["DATA"])
        if refusal:
            return refusal
        self.mails.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 Message accepted"

    def by_message_id(self) -> Counter[str]:
        return Counter(str(mail["Message-ID"]) for mail in self.mails)


@contextlib.asynccontextmanager
async def smtp_server(mailbox: Mailbox, **options: Any) -> AsyncIterator[SmtpPool]:
    """`mailbox` listening on a free port of 127.0.0.1; yields a pool of connections to it."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(mailbox, hostname="mx.test", **options), "127.0.0.1", 0)
    pool = SmtpPool(SmtpConfig(host="127.0.0.1", port=server.sockets[0].getsockname()[1], timeout=5.0, pool_size=8))
    try:
        yield pool
    finally:
        await pool.close()
        server.close()


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=12)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


async def planned(db: Database, recipients: list[str], *, bulk: bool = False, template: str = "verification_link"):
    event_id = uuid.uuid4()
    async with db.transaction() as session:
        for recipient in recipients:
            await service.plan(
                session,
                event_id=event_id,
                template=template,
                language="fr",
                recipient=recipient,
                variables=VARIABLES,
                bulk=bulk,
            )
    return event_id


async def rows(db: Database) -> dict[str, Any]:
    async with db.transaction() as session:
        return {row.recipient: row for row in await session.execute(select(deliveries))}


async def one_pass(db: Database, mailer: SmtpPool, now: datetime | None = None, policy: Policy = POLICY) -> int:
    claimed = await claim(db, policy, now or datetime.now(UTC))
    await deliver(db, Outbox("notifier"), mailer, claimed, policy)
    return len(claimed)


async def make_due(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(update(deliveries).values(next_attempt_at=datetime.now(UTC)))


async def events(db: Database) -> Counter[str]:
    async with db.transaction() as session:
        return Counter(
            row.value.split(b'"type":"')[1].split(b'"')[0].decode() for row in await session.execute(select(outbox))
        )


async def test_a_server_failing_twice_then_accepting_gets_one_mail(db: Database) -> None:
    mailbox = Mailbox(
        lambda command, count: "451 4.7.1 Greylisted, try later" if command == "RCPT" and count <= 2 else None
    )
    await planned(db, ["claire@example.fr"])
    async with smtp_server(mailbox) as mailer:
        for attempt in (1, 2):
            assert await one_pass(db, mailer) == 1
            waiting = (await rows(db))["claire@example.fr"]
            assert (waiting.status, waiting.attempts) == ("pending", attempt)
            assert "451" in waiting.last_error and waiting.next_attempt_at > datetime.now(UTC)
            await make_due(db)
        assert await one_pass(db, mailer) == 1
    sent = (await rows(db))["claire@example.fr"]
    assert (sent.status, sent.attempts, sent.context, sent.last_error) == ("sent", 3, None, None)
    assert len(mailbox.mails) == 1
    assert mailbox.mails[0]["Message-ID"] == f"<{sent.id}@visiopass.test>"
    assert await events(db) == {"NotificationSent": 1}


async def test_a_permanent_refusal_is_recorded_once_and_never_retried(db: Database) -> None:
    mailbox = Mailbox(lambda command, count: "550 5.1.1 No such user here" if command == "RCPT" else None)
    await planned(db, ["nobody@example.fr"])
    async with smtp_server(mailbox) as mailer:
        assert await one_pass(db, mailer) == 1
        await make_due(db)
        assert await one_pass(db, mailer) == 0
    failed = (await rows(db))["nobody@example.fr"]
    assert (failed.status, failed.attempts, failed.context) == ("failed", 1, None)
    assert "550" in failed.last_error
    assert mailbox.counts["RCPT"] == 1 and not mailbox.mails
    assert await events(db) == {"NotificationFailed": 1}


async def test_an_internationalised_address_on_a_server_without_smtputf8_fails_at_once(db: Database) -> None:
    mailbox = Mailbox()
    await planned(db, ["josé@exemple.fr"])
    async with smtp_server(mailbox, enable_SMTPUTF8=False) as mailer:
        assert await one_pass(db, mailer) == 1
    failed = (await rows(db))["josé@exemple.fr"]
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "SMTPUTF8" in failed.last_error
    assert not mailbox.mails


async def test_the_last_attempt_that_fails_gives_up(db: Database) -> None:
    mailbox = Mailbox(lambda command, count: "421 4.3.2 Service shutting down" if command == "DATA" else None)
    await planned(db, ["claire@example.fr"])
    async with smtp_server(mailbox) as mailer:
        for _ in range(POLICY.max_attempts):
            await make_due(db)
            await one_pass(db, mailer)
    failed = (await rows(db))["claire@example.fr"]
    assert (failed.status, failed.attempts) == ("failed", POLICY.max_attempts)
    assert await events(db) == {"NotificationFailed": 1}


async def test_two_replicas_share_300_deliveries_and_send_each_once(db: Database, fresh_database: str) -> None:
    mailbox = Mailbox()
    recipients = [f"person-{number}@example.fr" for number in range(300)]
    await planned(db, recipients)
    other = Database(fresh_database, pool_size=12)
    small = Policy(sender=POLICY.sender, batch=25, concurrency=4)
    try:
        async with smtp_server(mailbox) as first, smtp_server(mailbox) as second:

            async def replica(database: Database, mailer: SmtpPool) -> int:
                tried = 0
                while (count := await one_pass(database, mailer, policy=small)) > 0:
                    tried += count
                return tried

            shares = await asyncio.gather(replica(db, first), replica(other, second))
    finally:
        await other.dispose()
    assert sum(shares) == 300 and all(share > 0 for share in shares)
    assert len(mailbox.mails) == 300 and set(mailbox.by_message_id().values()) == {1}
    assert {str(mail["To"]) for mail in mailbox.mails} == set(recipients)
    assert {row.status for row in (await rows(db)).values()} == {"sent"}


async def test_transactional_mail_goes_before_a_bulk_fan_out(db: Database) -> None:
    await planned(db, [f"reminder-{number}@example.fr" for number in range(50)], bulk=True)
    await planned(db, ["reset@example.fr"])
    claimed = await claim(db, Policy(sender=POLICY.sender, batch=10), datetime.now(UTC) + timedelta(seconds=1))
    assert claimed[0].recipient == "reset@example.fr"
    assert [row.priority for row in claimed] == [0] + [1] * 9


async def test_leased_deliveries_of_a_dead_replica_are_taken_again_once_the_lease_lapses(db: Database) -> None:
    mailbox = Mailbox()
    await planned(db, ["claire@example.fr", "paul@example.fr"])
    now = datetime.now(UTC)
    leased = await claim(db, POLICY, now)  # a replica claims them, then dies before sending
    assert len(leased) == 2
    assert await claim(db, POLICY, now + timedelta(seconds=POLICY.lease_seconds - 1)) == []
    async with smtp_server(mailbox) as mailer:
        assert await one_pass(db, mailer, now + timedelta(seconds=POLICY.lease_seconds + 1)) == 2
        # the dead replica's late answer is not recorded over the attempt that owns the rows now
        await deliver(db, Outbox("notifier"), mailer, leased[:1], POLICY)
    assert {(row.status, row.attempts) for row in (await rows(db)).values()} == {("sent", 2)}
    assert await events(db) == {"NotificationSent": 2}


async def test_a_template_missing_a_variable_is_refused_when_planned(db: Database) -> None:
    with pytest.raises(jinja2.UndefinedError):
        async with db.transaction() as session:
            await service.plan(
                session,
                event_id=uuid.uuid4(),
                template="verification_link",
                language="fr",
                recipient="claire@example.fr",
                variables={"contact_name": "Claire Martin", "link": "https://visiopass.test/verify-email?token=t"},
            )
    assert await rows(db) == {}


def test_backoff_grows_with_full_jitter_up_to_its_cap() -> None:
    policy = Policy(sender="x@y.z", backoff_base_seconds=5, backoff_cap_seconds=300)
    rng = random.Random(7)
    for attempts in range(1, 12):
        waits = [backoff(attempts, policy, rng).total_seconds() for _ in range(200)]
        assert 2.5 <= min(waits) and max(waits) <= max(300, 5)
        assert max(waits) <= max(5, 5 * 2 ** (attempts - 1))
    late = [backoff(10, policy, rng).total_seconds() for _ in range(200)]
    assert max(late) > 200 and len(set(late)) > 150  # spread: replicas retrying together do not stay together
