"""Scaling out, shown on one machine: two replicas of billing, and two of the notifier, run as real processes on
the test stack and share the partitions of the topic they consume (one consumer group, each replica holding some
of its partitions); a burst of events keyed across the partitions is published, one replica is killed (SIGKILL)
in the middle of it, and the other takes its partitions over (the group rebalances) and finishes. Nothing is lost
and no effect is doubled: billing debits each request once (one charge, one ledger line, one TokensDebited in its
outbox); the notifier plans one delivery per event and every recipient gets its mail, under one Message-ID.

Kept apart from the suite's own services (the session-scoped `system` fixture is running when the whole suite
gets here): the replicas run on a fresh database of their own and under another service name
(`<SERVICE>_SERVICE_NAME`), which names their consumer groups (`<name>.<consumer>`), so they never share a group
with the suite's billing or notifier; their groups are started at the topics' current end (earlier tests' events
are not theirs), and their outbox relay is off: what they cause stays in their database, where it is counted, and
reaches no other service. The topics are the contracts' own (there is no other set): the suite's services, when
running, read the burst too and act on it in their own databases (billing rejects debits of accounts it does not
know, the notifier mails the same recipients), so the replicas' mails are told apart by their own sender.
docs/scaling.md reports the figures this test prints."""

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from wallets import fund

from contracts import Event, encode
from contracts.events.accounts import PasswordChanged
from contracts.events.enrollment import EnrollmentRequested
from metrics import sample
from servicekit.db import Database
from servicekit.kafka import topic_partitions
from servicekit.migrations import upgrade
from system import System

PORT_OFFSET = int(os.environ.get("VISIOPASS_TEST_PORT_OFFSET", "0"))
LEASE_SECONDS = 15  # how soon the killed notifier's leased deliveries are taken again (120 s by default)
ACCOUNTS = 40  # billing's funded accounts; the requests are keyed by enrolment, so each account's go everywhere
TIMEOUT = 120


@dataclass(frozen=True)
class Case:
    service: str
    consumer: str  # the consumer under test (servicekit names its group "<service name>.<consumer>")
    topic: str  # the topic it consumes
    consumers: dict[str, str]  # every consumer of the service and its topic (their groups start at the end)
    burst: int
    per_second: int  # the burst is published at this pace, so that the kill falls in its middle
    base_port: int


BILLING = Case(
    service="billing",
    consumer="enrolments",
    topic="enrollment.enrollment",
    consumers={"accounts": "accounts.account", "enrolments": "enrollment.enrollment", "sessions": "catalogue.session"},
    burst=1500,
    per_second=500,
    base_port=28321,
)
NOTIFIER = Case(
    service="notifier",
    consumer="account-mails",
    topic="accounts.account",
    consumers={
        "account-mails": "accounts.account",
        "wallet-mails": "billing.wallet",
        "invoice-mails": "billing.invoice",
        "session-copy": "catalogue.session",
        "enrollment-webhooks": "enrollment.enrollment",
    },
    burst=600,
    per_second=200,
    base_port=28331,
)


@dataclass
class Run:
    """One case's replicas, names and database."""

    case: Case
    name: str  # the replicas' service name
    db: Database
    replicas: list[System]
    sender: str = ""

    @property
    def group(self) -> str:
        return f"{self.name}.{self.case.consumer}"


def replica(stack, run_name: str, case: Case, database_url: str, number: int, log_dir: Path, sender: str) -> System:  # type: ignore[no-untyped-def]
    """A process of `case.service` on the test's own database, under the test's own service name (so its own
    consumer groups), its relay off; the gateway is not started (its URL is in links)."""
    prefix = case.service.upper()
    settings = {
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_SERVICE_NAME": run_name,
        f"{prefix}_RELAY_ENABLED": "false",
    }
    if case.service == "notifier":
        settings |= {"NOTIFIER_MAIL_FROM": sender, "NOTIFIER_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS)}
    ports = {case.service: case.base_port + 2 * number + PORT_OFFSET, "gateway": 28000 + PORT_OFFSET}
    return System(stack, log_dir=log_dir / f"{case.service}-replica-{number}", ports=ports, settings=settings)


async def start_groups_at_the_end(bootstrap: str, groups: dict[str, str]) -> None:
    """Commit each new group's offsets at its topic's current end: it reads only what is published from now on."""
    for group, topic in groups.items():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await topic_partitions(bootstrap, topic)
            consumer.assign(partitions)
            await consumer.commit(await consumer.end_offsets(partitions))
        finally:
            await consumer.stop()


async def assignment(admin: AIOKafkaAdminClient, group: str, topic: str) -> tuple[str, list[set[int]]]:
    """The group's state and, per member, the partitions of `topic` it was assigned (Kafka's own view)."""
    [response] = await admin.describe_consumer_groups([group])
    [described] = response.groups
    state, members = described[2], described[5]
    held = []
    for member in members:
        raw = member[4]
        decoded = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
        held.append({p.partition for p in decoded.partitions() if p.topic == topic} if decoded else set())
    return state, held


async def held_by(replica_: System, service: str, group: str) -> set[int]:
    """The partitions a replica says it holds: the labels of its kafka_consumer_lag_records on /metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        body = (await client.get(replica_.metrics_url(service))).text
    return {
        int(s.labels["partition"])
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "kafka_consumer_lag_records" and s.labels.get("group") == group
    }


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Seconds it took."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


# -- billing --------------------------------------------------------------------------------------------------


async def billing_effects(db: Database, accounts: list[uuid.UUID]) -> int:
    async with db.transaction() as session:
        return int(
            await session.scalar(
                text("SELECT count(*) FROM enrollment_charges WHERE account_id = ANY(:a)"), {"a": accounts}
            )
        )


async def check_billing(db: Database, accounts: list[uuid.UUID], tokens_each: int, requests: list[Event]) -> None:
    wanted = Counter(str(request.enrollment_id) for request in requests)  # type: ignore[attr-defined]
    per_account = Counter(request.account_id for request in requests)  # type: ignore[attr-defined]
    async with db.transaction() as session:
        charges = (
            await session.execute(
                text("SELECT enrollment_id, status FROM enrollment_charges WHERE account_id = ANY(:a)"), {"a": accounts}
            )
        ).all()
        debits = (
            await session.execute(
                text("SELECT enrollment_id FROM ledger WHERE kind = 'debit' AND account_id = ANY(:a)"), {"a": accounts}
            )
        ).all()
        published = (await session.execute(text("SELECT value FROM outbox WHERE topic = 'billing.wallet'"))).all()
        lots_left = await session.execute(
            text("SELECT account_id, sum(remaining) FROM lots WHERE account_id = ANY(:a) GROUP BY account_id"),
            {"a": accounts},
        )
        remaining = {account: int(tokens) for account, tokens in lots_left.all()}
    assert Counter(str(row.enrollment_id) for row in charges) == wanted, "one charge per request, none lost"
    assert {row.status for row in charges} == {"debited"}
    assert Counter(str(row.enrollment_id) for row in debits) == wanted, "one ledger debit per request"
    answers = [json.loads(row.value) for row in published]
    debited = Counter(
        a["enrollment_id"] for a in answers if a["type"] == "TokensDebited" and a["enrollment_id"] in wanted
    )
    assert debited == wanted, "one TokensDebited in the outbox per request"
    assert not [a for a in answers if a["type"] == "TokenDebitRejected" and a["enrollment_id"] in wanted]
    assert remaining == {account: tokens_each - per_account[account] for account in accounts}, "never debited twice"


# -- notifier -------------------------------------------------------------------------------------------------


async def notifier_effects(db: Database, domain: str, status: str | None = None) -> int:
    query = "SELECT count(*) FROM deliveries WHERE recipient LIKE :pattern"
    if status is not None:
        query += " AND status = :status"
    async with db.transaction() as session:
        return int(await session.scalar(text(query), {"pattern": f"%@{domain}", "status": status}))


async def check_notifier(stack, db: Database, domain: str, sender: str, recipients: list[str]) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Copies sent twice and deliveries taken again (the one known exception, as in test_notifier_replicas.py)."""
    async with db.transaction() as session:
        rows = (
            await session.execute(
                text("SELECT recipient, status, attempts FROM deliveries WHERE recipient LIKE :p"), {"p": f"%@{domain}"}
            )
        ).all()
    assert Counter(row.recipient for row in rows) == Counter(recipients), "one delivery planned per event"
    assert {row.status for row in rows} == {"sent"}
    retaken = sum(row.attempts > 1 for row in rows)
    address = sender.split("<")[1].rstrip(">")
    async with httpx.AsyncClient(base_url=stack.mail_api, timeout=120) as catcher:
        mails = [
            mail
            for mail in (await catcher.get("/api/messages")).json()
            if address in mail["from"] and mail["to"][0].endswith(f"@{domain}")
        ]
    per_recipient = Counter(mail["to"][0] for mail in mails)
    message_ids: dict[str, set[str]] = {}
    for mail in mails:
        message_ids.setdefault(mail["to"][0], set()).add(mail["message_id"])
    assert set(per_recipient) == set(recipients), "every recipient got a mail"
    assert all(len(ids) == 1 for ids in message_ids.values()), "one Message-ID per recipient, whatever was resent"
    copies = sum(per_recipient.values()) - len(recipients)
    # a mail goes twice only when the killed replica had handed it to the server without recording it yet: its
    # lease lapsed and the survivor took the row again (test_notifier_replicas.py); never two live senders
    assert copies <= retaken, f"{copies} mails sent twice, but only {retaken} deliveries were taken again"
    return copies, retaken


# -- the test -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [BILLING, NOTIFIER], ids=["billing", "notifier"])
async def test_two_replicas_split_the_partitions_and_the_survivor_of_a_kill_finishes_the_burst(  # type: ignore[no-untyped-def]
    stack, kafka, fresh_database, tmp_path, case: Case
) -> None:
    tag = uuid.uuid4().hex[:8]
    run = Run(case, f"{case.service}-scale-{tag}", Database(fresh_database), [])
    run.sender = f"Visiopass scale-out <scale-{tag}@visiopass.localhost>"
    await upgrade(run.db, case.service)  # once, before two processes start on the database
    accounts: list[uuid.UUID] = []
    tokens_each = case.burst // ACCOUNTS * 2 + 5
    domain = f"scale-{tag}.example"
    if case.service == "billing":
        accounts = await fund(run.db.url, ACCOUNTS, tokens_each)
    events: list[Event] = (
        [
            EnrollmentRequested(
                enrollment_id=uuid.uuid4(),
                account_id=accounts[i % ACCOUNTS],
                session_id=uuid.uuid4(),
                privatisation=False,
            )
            for i in range(case.burst)
        ]
        if case.service == "billing"
        else [
            PasswordChanged(
                account_id=uuid.uuid4(),
                user_id=uuid.uuid4(),
                email=f"person-{i}@{domain}",
                language="fr",
                changed_at=datetime.now(UTC),
                reason="changed",
            )
            for i in range(case.burst)
        ]
    )

    async def effects() -> int:
        if case.service == "billing":
            return await billing_effects(run.db, accounts)
        return await notifier_effects(run.db, domain)

    await start_groups_at_the_end(kafka, {f"{run.name}.{name}": topic for name, topic in case.consumers.items()})
    partitions = {tp.partition for tp in await topic_partitions(kafka, case.topic)}
    assert len(partitions) >= 2, f"{case.topic} has {len(partitions)} partition(s): nothing to split"
    run.replicas = [replica(stack, run.name, case, fresh_database, number, tmp_path, run.sender) for number in (0, 1)]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=5)
    await producer.start()
    try:
        # System.start creates the service's usual database if missing (unused here): once, not in both threads
        await asyncio.to_thread(stack.ensure_database, case.service)
        await asyncio.gather(*(asyncio.to_thread(each.start, (case.service,)) for each in run.replicas))

        # 1. the partitions split: Kafka's view (two members, each some, together all), then each replica's own
        async def split() -> bool:
            state, held = await assignment(admin, run.group, case.topic)
            return (
                state == "Stable"
                and len(held) == 2
                and all(held)
                and set().union(*held) == partitions
                and not held[0] & held[1]
            )

        await wait_until(split, 60, f"the partitions of {case.topic} split between two members of {run.group}")
        holdings: list[set[int]] = []

        async def each_replica_says_so() -> bool:  # the lag gauge is measured every 10 s (servicekit.runtime)
            holdings[:] = [await held_by(each, case.service, run.group) for each in run.replicas]
            return all(holdings) and not holdings[0] & holdings[1] and holdings[0] | holdings[1] == partitions

        await wait_until(each_replica_says_so, 40, "each replica's /metrics to list the partitions it holds")
        print(
            f"\n[{case.service}] {case.topic}: {len(partitions)} partitions; replica 0 holds {sorted(holdings[0])}, "
            f"replica 1 holds {sorted(holdings[1])}"
        )

        # 2. the burst, keyed across the partitions, at a steady pace; 3. one replica killed in its middle
        sent_partitions: Counter[int] = Counter()
        published = 0

        async def publish() -> None:
            nonlocal published
            chunk = max(1, case.per_second // 20)
            sends = []
            for start in range(0, case.burst, chunk):
                for event in events[start : start + chunk]:
                    record = encode(event, source="test")
                    sends.append(
                        await producer.send(record.topic, record.value, key=record.key, headers=record.headers)
                    )
                published = min(start + chunk, case.burst)
                await asyncio.sleep(0.05)
            for metadata in await asyncio.gather(*sends):
                sent_partitions[metadata.partition] += 1

        began = time.monotonic()
        publisher = asyncio.create_task(publish())
        await wait_until(lambda: _at_least(effects, case.burst // 4), 60, "a quarter of the burst applied")
        victim, survivor = run.replicas[1], run.replicas[0]
        victim.processes[case.service].kill()  # SIGKILL: no clean stop, no offsets committed on the way out
        victim.processes.pop(case.service).wait()
        killed = time.monotonic()
        applied_at_kill, published_at_kill = await effects(), published
        assert applied_at_kill < case.burst, "the burst was over before the kill: nothing was tested"

        async def taken_over() -> bool:
            state, held = await assignment(admin, run.group, case.topic)
            return state == "Stable" and held == [partitions]

        takeover = await wait_until(taken_over, TIMEOUT, f"the survivor to hold every partition of {case.topic}")
        applied_at_takeover = await effects()
        await publisher
        assert sum(sent_partitions.values()) == case.burst and set(sent_partitions) == partitions, sent_partitions

        # 4. it finishes: every event applied (billing) or mailed (notifier), then nothing lost and nothing doubled
        async def finished() -> bool:
            if case.service == "billing":
                return await effects() >= case.burst
            return await notifier_effects(run.db, domain, "sent") >= case.burst

        await wait_until(finished, TIMEOUT, "the survivor to finish the burst")
        done = time.monotonic()
        await asyncio.sleep(2)  # time for a second effect to show
        async with httpx.AsyncClient(timeout=10) as client:
            survivor_metrics = (await client.get(survivor.metrics_url(case.service))).text
        duplicates = sample(survivor_metrics, "consumer_events_total", consumer=case.consumer, outcome="duplicate")
        processed = sample(survivor_metrics, "consumer_events_total", consumer=case.consumer, outcome="processed")

        async def survivor_says_so() -> bool:
            return await held_by(survivor, case.service, run.group) == partitions

        await wait_until(survivor_says_so, 25, "the survivor's /metrics to list every partition")
        if case.service == "billing":
            await check_billing(run.db, accounts, tokens_each, events)
            extra = ""
        else:
            copies, retaken = await check_notifier(
                stack,
                run.db,
                domain,
                run.sender,
                [event.email for event in events],  # type: ignore[attr-defined]
            )
            extra = f"; deliveries taken again after the lease: {retaken}, mails sent twice: {copies}"
        backlog = case.burst - applied_at_takeover
        print(
            f"[{case.service}] burst {case.burst} events over partitions {dict(sorted(sent_partitions.items()))} at "
            f"{case.per_second}/s; killed replica 1 at {killed - began:.1f} s ({applied_at_kill} applied, "
            f"{published_at_kill} published); survivor held every partition {takeover:.1f} s after the kill "
            f"({applied_at_takeover} applied by then); burst finished {done - began:.1f} s after its start, "
            f"{done - killed - takeover:.1f} s after the takeover ({backlog} events left then: "
            f"{backlog / max(done - killed - takeover, 0.001):.0f} events/s by the survivor alone); survivor's "
            f"{case.consumer}: {processed:.0f} processed, {duplicates:.0f} duplicates dropped by its inbox{extra}"
        )
    finally:
        await producer.stop()
        await admin.close()
        for each in run.replicas:
            await asyncio.to_thread(each.stop)
        await run.db.dispose()


async def _at_least(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() >= wanted
