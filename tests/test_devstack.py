"""deploy/local/devstack.py against the real thing: Kafka, PostgreSQL and the SMTP catcher.

The stack here has its own temporary state dir and free ports, so it never meets a running `make up` or
the session's shared test stack; the last infra test stops it and checks that no process is left behind.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import devstack
from devstack import COMPONENTS, Ports, Stack


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    # Not pytest's tmp_path: its parents are 0700 and PostgreSQL runs as another user.
    state_dir = Path(tempfile.mkdtemp(prefix="visiopass-devstack-"))
    state_dir.chmod(0o755)
    stack = Stack(state_dir, Ports(*_free_ports(5)), fast=True)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


async def _consume_one(bootstrap: str, topic: str, group: str) -> tuple[bytes, int, int]:
    """The next message of `group` on `topic`, committed; (value, partition, offset)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 30)
        await consumer.commit()
        assert message.value is not None
        return message.value, message.partition, message.offset
    finally:
        await consumer.stop()


@pytest.mark.infra
async def test_kafka_keeps_messages_and_offsets_across_a_restart(own_stack: Stack) -> None:
    bootstrap = own_stack.kafka_bootstrap
    topic, group = f"devstack.{uuid.uuid4().hex[:8]}", f"devstack-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"before restart", key=b"account-1")
    finally:
        await producer.stop()

    value, partition, offset = await _consume_one(bootstrap, topic, group)
    assert (value, partition, offset) == (b"before restart", sent.partition, sent.offset)

    own_stack.stop_kafka()
    assert own_stack.status()["kafka"]["running"] is False
    await asyncio.sleep(10)
    own_stack.start_kafka()

    # The committed offset survived ...
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        assert await consumer.committed(TopicPartition(topic, partition)) == offset + 1
    finally:
        await consumer.stop()
    # ... so did the message (a new group reads it from the start) ...
    assert (await _consume_one(bootstrap, topic, f"{group}-new"))[0] == b"before restart"
    # ... and the first group resumes after it, not before.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"after restart", key=b"account-1")
    finally:
        await producer.stop()
    assert (await _consume_one(bootstrap, topic, group))[0] == b"after restart"


@pytest.mark.infra
async def test_postgres_database_over_tcp(own_stack: Stack) -> None:
    own_stack.ensure_database("devstack_check")
    own_stack.ensure_database("devstack_check")  # idempotent
    url = own_stack.database_url("devstack_check")
    assert url == f"postgresql+asyncpg://postgres@127.0.0.1:{own_stack.ports.postgres}/devstack_check"
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await conn.fetchval("SELECT current_database()") == "devstack_check"
        assert int(await conn.fetchval("SHOW max_connections")) >= 200
        assert await conn.fetchval("SHOW fsync") == "off"  # fast=True
        await conn.execute("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)")
        await conn.execute("INSERT INTO note (body) VALUES ($1)", "Réunion à 10 h ✓")
        assert await conn.fetchval("SELECT body FROM note") == "Réunion à 10 h ✓"
    finally:
        await conn.close()
    # The unix socket is in the state dir too.
    conn = await asyncpg.connect(host=str(own_stack.pg_dir), port=own_stack.ports.postgres, user="postgres")
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


@pytest.mark.infra
async def test_mail_is_caught_and_readable_over_http(own_stack: Stack) -> None:
    to = f"zoe.{uuid.uuid4().hex[:6]}@ecole.example"
    message = EmailMessage()
    message["From"] = "Équipe Visiopass <noreply@visiopass.example>"
    message["To"] = f"Zoé Müller <{to}>"
    # Folded into two RFC 2047 encoded words. (Python 3.11's folding drops the space in front of "»" in
    # "« Pronote avancé » ✓": CPython gh-144156, a sender-side bug, so not used here.)
    message["Subject"] = "Inscription confirmée — Pronote avancé ✓"
    message.set_content("Bonjour Zoé,\nVotre lien : https://visiopass.example/join/abc123\nÀ bientôt !\n")
    message.add_alternative(
        '<p>Bonjour Zoé,</p><p><a href="https://visiopass.example/join/abc123">Rejoindre la session</a></p>',
        subtype="html",
    )
    try:
        import aiosmtplib
    except ImportError:  # pragma: no cover - stdlib fallback
        import smtplib

        with smtplib.SMTP(own_stack.smtp_host, own_stack.smtp_port) as smtp:
            smtp.send_message(message)
    else:
        await aiosmtplib.send(message, hostname=own_stack.smtp_host, port=own_stack.smtp_port)

    async with httpx.AsyncClient(base_url=own_stack.mail_api) as client:
        found = (await client.get("/api/messages", params={"to": to})).json()
        assert len(found) == 1
        mail = found[0]
        assert mail["subject"] == "Inscription confirmée — Pronote avancé ✓"
        assert mail["from"] == "Équipe Visiopass <noreply@visiopass.example>"
        assert mail["to"] == [to]
        assert "Bonjour Zoé," in mail["text"] and "À bientôt !" in mail["text"]
        assert "Rejoindre la session" in mail["html"]
        assert mail["links"] == ["https://visiopass.example/join/abc123"]
        assert (await client.get(f"/api/messages/{mail['id']}")).json()["subject"] == mail["subject"]
        assert (await client.get("/api/messages/00000000000000000000-00000000")).status_code == 404
        page = await client.get("/")
        assert page.status_code == 200 and "Inscription confirmée" in page.text
        assert (await client.get("/api/messages", params={"to": "nobody@example.org"})).json() == []


@pytest.mark.infra
def test_stop_leaves_no_process_behind(own_stack: Stack) -> None:
    status = own_stack.status()
    pids = [pid for name in COMPONENTS for pid in status[name]["pids"]]
    assert all(status[name]["ready"] for name in COMPONENTS), status
    assert len(pids) >= 4  # kafka, mail catcher, the postmaster and its background workers
    own_stack.stop()
    left = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert not list(own_stack.run_dir.glob("*.pid"))
    assert not any(own_stack.status()[name]["running"] for name in COMPONENTS)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_spawned_children_die_with_their_parent_process_not_with_its_thread(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, threading, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(devstack.__file__).parent)!r})
        from devstack import spawn
        log = Path({str(tmp_path / "children.log")!r})
        pids = [spawn(["sleep", "300"], log).pid]
        worker = threading.Thread(target=lambda: pids.append(spawn(["sleep", "300"], log).pid))
        worker.start()
        worker.join()
        print(*pids, flush=True)
        time.sleep(300)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 2
    time.sleep(0.5)
    assert not any(_gone(pid) for pid in pids)  # the worker thread has ended, its child lives on
    assert all(os.getsid(pid) == pid for pid in pids)  # each in a session of its own
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in pids)
