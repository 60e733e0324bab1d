"""Least privilege in deployment, shown on a real broker and a real database.

Kafka: a second broker, started here beside the devstack's, with deploy/local/kafka/sasl-server.properties.template
(SASL/SCRAM-SHA-512 over TLS, the StandardAuthorizer, nothing allowed without an ACL), one SCRAM user per service
and the ACLs of servicekit.kafka_acls granted with Kafka's own AclCommand. Each service's principal may create and
use its own topics; it is refused on a topic it does not own, on one it does not consume, and on another service's
consumer group; a wrong password and a plaintext client get nowhere. Then accounts and billing run as real
processes on that broker, each with its principal and its own PostgreSQL role, and an account opened in accounts
reaches billing.

PostgreSQL: deploy/postgres/service-role.sql gives each service a login role owning its database; a role cannot
reach another service's database, nor create databases or roles.
"""

import asyncio
import datetime
import ipaddress
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy import text

from accounts_world import institution
from contracts import TOPICS, topics_read_by, topics_written_by
from contracts.examples import EXAMPLE_KEYRING
from servicekit.db import Database
from servicekit.kafka import KafkaAccess, ensure_topics
from servicekit.kafka_acls import SERVICES, acl_arguments
from system import System

ROOT = Path(__file__).resolve().parent.parent
PORT_OFFSET = int(os.environ.get("VISIOPASS_TEST_PORT_OFFSET", "0"))
KAFKA_PORT = 29192 + PORT_OFFSET
CONTROLLER_PORT = 29193 + PORT_OFFSET
ADMIN = "admin"
ROLE_SQL = ROOT / "deploy" / "postgres" / "service-role.sql"

pytestmark = pytest.mark.infra


@dataclass
class SecureKafka:
    bootstrap: str
    ca_file: Path
    passwords: dict[str, str]

    def access(self, user: str, password: str | None = None) -> KafkaAccess:
        return KafkaAccess(self.bootstrap, user, SecretStr(password or self.passwords[user]), str(self.ca_file))


def _pem(*items: object) -> bytes:
    return b"".join(
        item.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]
        if isinstance(item, x509.Certificate)
        else item.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        for item in items
    )


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA of this test, and the broker's key and certificate for 127.0.0.1 signed by it (PEM files)."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer, ca: bool):  # type: ignore[no-untyped-def]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Visiopass test CA")])
    ca = certificate("Visiopass test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    broker = certificate("kafka", key, ca_name, ca_key, ca=False)
    ca_file, keystore = directory / "ca.pem", directory / "broker.pem"
    ca_file.write_bytes(_pem(ca))
    keystore.write_bytes(_pem(key, broker, ca))
    keystore.chmod(0o600)
    return ca_file, keystore


def _java_tool(stack, main_class: str, *arguments: str) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        ["java", "-cp", f"{stack.kafka_libs}/*", main_class, *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"{main_class} {arguments}:\n{result.stdout}{result.stderr}"


async def _until_up(kafka: SecureKafka, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            await ensure_topics(kafka.access(ADMIN), [])
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
async def secure_kafka(stack, tmp_path_factory) -> AsyncIterator[SecureKafka]:  # type: ignore[no-untyped-def]
    from devstack import spawn, terminate

    directory = tmp_path_factory.mktemp("secure-kafka")
    ca_file, keystore = make_certificates(directory)
    passwords = {user: secrets.token_urlsafe(24) for user in (ADMIN, *SERVICES)}
    properties = directory / "server.properties"
    template = Template((ROOT / "deploy" / "local" / "kafka" / "sasl-server.properties.template").read_text())
    properties.write_text(
        template.substitute(
            kafka_port=KAFKA_PORT,
            controller_port=CONTROLLER_PORT,
            admin_user=ADMIN,
            admin_password=passwords[ADMIN],
            controller_password=secrets.token_urlsafe(24),
            keystore=keystore,
            truststore=ca_file,
            data_dir=directory / "data",
        )
    )
    properties.chmod(0o600)
    users = [f"SCRAM-SHA-512=[name={user},password={password}]" for user, password in passwords.items()]
    cluster_id = "VmlzaW9wYXNzU2VjdXJlQQ"  # 16 bytes, url-safe base64
    scram = [argument for user in users for argument in ("--add-scram", user)]
    _java_tool(stack, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties), *scram)
    log = directory / "kafka.log"
    process = spawn(
        [
            "java",
            "-Xmx384m",
            f"-Dlog4j2.configurationFile={ROOT / 'deploy' / 'local' / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={directory / 'logs'}",
            "-cp",
            f"{stack.kafka_libs}/*",
            "kafka.Kafka",
            str(properties),
        ],
        log,
    )
    kafka = SecureKafka(f"127.0.0.1:{KAFKA_PORT}", ca_file, passwords)
    try:
        await _until_up(kafka, process, directory / "logs" / "server.log")
        admin_config = directory / "admin.properties"
        admin_config.touch(mode=0o600)
        admin_config.write_text(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN}" password="{passwords[ADMIN]}";\n'
            f"ssl.truststore.type=PEM\nssl.truststore.location={ca_file}\n"
        )
        connection = ("--bootstrap-server", kafka.bootstrap, "--command-config", str(admin_config))
        grants = [arguments for service in SERVICES for arguments in acl_arguments(service)]
        with ThreadPoolExecutor(max_workers=3) as pool:
            for future in [
                pool.submit(_java_tool, stack, "org.apache.kafka.tools.AclCommand", *connection, "--add", *arguments)
                for arguments in grants
            ]:
                future.result()
        yield kafka
    finally:
        terminate(process, 30)


async def _produce(access: KafkaAccess, topic: str) -> None:
    producer = AIOKafkaProducer(**access.client_options(), acks="all", request_timeout_ms=10_000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"least-privilege")
    finally:
        await producer.stop()


async def _read(access: KafkaAccess, topic: str, group: str) -> None:
    """Join `group` and read `topic` from its start (one fetch), committing where it got."""
    consumer = AIOKafkaConsumer(
        topic, **access.client_options(), group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=3000)
        await consumer.commit()
    finally:
        await consumer.stop()


async def test_each_service_uses_its_own_topics_and_is_refused_on_the_others(secure_kafka: SecureKafka) -> None:
    for service in SERVICES:
        mine = topics_written_by(service) + topics_read_by(service)
        await ensure_topics(secure_kafka.access(service), mine)  # what the service does at start
    for service in SERVICES:
        access = secure_kafka.access(service)
        for topic in topics_written_by(service):
            await _produce(access, topic)
        for topic in topics_read_by(service):
            await _read(access, topic, f"{service}.least-privilege")
        foreign = [topic.name for topic in TOPICS.values() if topic.name not in topics_written_by(service)]
        assert foreign, service
        for topic in foreign:
            with pytest.raises(TopicAuthorizationFailedError):
                await _produce(access, topic)
    billing = secure_kafka.access("billing")
    with pytest.raises(TopicAuthorizationFailedError):  # owned by billing, consumed by others only
        await _read(billing, "billing.wallet", "billing.least-privilege")
    with pytest.raises(GroupAuthorizationFailedError):  # another service's consumer group
        await _read(billing, "accounts.account", "notifier.account-mails")
    with pytest.raises(TopicAuthorizationFailedError):  # a topic it has no business creating
        await ensure_topics(billing, ["billing.anything-else"])


async def test_a_wrong_password_or_a_plaintext_client_gets_nowhere(secure_kafka: SecureKafka) -> None:
    with pytest.raises(KafkaConnectionError):
        await _produce(secure_kafka.access("billing", password="not-billing's"), "billing.wallet")
    with pytest.raises(KafkaConnectionError):  # another service's password
        await _produce(secure_kafka.access("billing", password=secure_kafka.passwords["accounts"]), "billing.wallet")
    plaintext = AIOKafkaProducer(bootstrap_servers=secure_kafka.bootstrap, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await plaintext.start()
    await plaintext.stop()


def run_role_sql(stack, name: str, password: str | None) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """deploy/postgres/service-role.sql for a role and database called `name`, as a superuser runs it."""
    admin_url = f"postgresql://postgres@127.0.0.1:{stack.ports.postgres}/postgres"
    variables = ["-v", "ON_ERROR_STOP=1", "-v", f"role={name}", "-v", f"database={name}"]
    env = {key: value for key, value in os.environ.items() if key != "ROLE_PASSWORD"}
    return subprocess.run(
        [str(_psql()), admin_url, "-q", *variables, "-f", str(ROLE_SQL)],
        capture_output=True,
        text=True,
        check=False,
        env=env | ({"ROLE_PASSWORD": password} if password else {}),
    )


@pytest.fixture
def service_database(stack) -> Iterator[Callable[[str], tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """Provisions a service's database and role (same name) through deploy/postgres/service-role.sql, run twice as
    it may be on every deployment; both are dropped afterwards."""
    made: list[str] = []

    def provision(service: str) -> tuple[str, str]:
        name, password = f"lp_{uuid.uuid4().hex[:8]}_{service}", secrets.token_urlsafe(18)
        made.append(name)
        for _ in range(2):
            result = run_role_sql(stack, name, password)
            assert result.returncode == 0, result.stderr
        return name, password

    yield provision
    admin_url = f"postgresql://postgres@127.0.0.1:{stack.ports.postgres}/postgres"
    for name in made:
        drop = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{name}"']
        subprocess.run([str(_psql()), admin_url, "-q", *(f"-c{sql}" for sql in drop)], capture_output=True, check=False)


def _psql() -> Path:
    from devstack import pg_bin

    return pg_bin("psql")


async def test_a_service_role_reaches_only_its_own_database(stack, service_database) -> None:  # type: ignore[no-untyped-def]
    billing, billing_password = service_database("billing")
    accounts, _ = service_database("accounts")
    url = f"postgresql://{billing}:{billing_password}@127.0.0.1:{stack.ports.postgres}"
    own = await asyncpg.connect(f"{url}/{billing}")
    try:
        await own.execute("CREATE TABLE migrated (id int PRIMARY KEY)")  # its migrations run as this role
        flags = await own.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert not any(flags.values())
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await own.execute("CREATE DATABASE another_one")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await own.execute("CREATE ROLE another_one")
    finally:
        await own.close()
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
        await asyncpg.connect(f"{url}/{accounts}")
    refused = run_role_sql(stack, f"lp_{uuid.uuid4().hex[:8]}_nopassword", None)
    assert refused.returncode != 0 and "ROLE_PASSWORD is not set" in refused.stderr


async def test_services_run_with_their_own_principal_and_role(  # type: ignore[no-untyped-def]
    stack, secure_kafka: SecureKafka, service_database, tmp_path, monkeypatch
) -> None:
    """accounts and billing as real processes, each with its Kafka principal over TLS and its database role: an
    account opened in accounts is published by its relay, consumed by billing, and billing keeps its wallet."""
    settings: dict[str, str] = {}
    urls: dict[str, str] = {}
    for service in ("accounts", "billing"):
        role, password = service_database(service)
        urls[service] = f"postgresql+asyncpg://{role}:{password}@127.0.0.1:{stack.ports.postgres}/{role}"
        prefix = service.upper()
        settings |= {
            f"{prefix}_DATABASE_URL": urls[service],
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": secure_kafka.bootstrap,
            f"{prefix}_KAFKA_SASL_USERNAME": service,
            f"{prefix}_KAFKA_SASL_PASSWORD": secure_kafka.passwords[service],
            f"{prefix}_KAFKA_SSL_CAFILE": str(secure_kafka.ca_file),
            f"{prefix}_RELAY_POLL_SECONDS": "0.5",
        }
    ports = {"accounts": 28341 + PORT_OFFSET, "billing": 28343 + PORT_OFFSET, "gateway": 28345 + PORT_OFFSET}
    keyring = EXAMPLE_KEYRING.to_text()  # accounts_world seals the new account's token in this process
    monkeypatch.setenv("ACCOUNTS_EVENT_SECRET_KEYS", os.environ.get("ACCOUNTS_EVENT_SECRET_KEYS", keyring))
    system = System(stack, log_dir=tmp_path / "logs", ports=ports, settings=settings, event_secret_keys=keyring)
    system.start(("accounts", "billing"), timeout=120)
    accounts_db, billing_db = Database(urls["accounts"]), Database(urls["billing"])
    try:
        account_id, _ = await institution(accounts_db, f"least-privilege-{uuid.uuid4().hex[:8]}@example.org")
        deadline = time.monotonic() + 60
        query = text("SELECT institution_name FROM wallets WHERE account_id = :id")
        while (name := await _scalar(billing_db, query, {"id": account_id})) is None:
            assert time.monotonic() < deadline, system.log_tail("accounts") + system.log_tail("billing")
            await asyncio.sleep(0.3)
        assert name == "Lycée Hugo"
        for service in ("accounts", "billing"):  # no Kafka authorisation error anywhere, and no password in clear
            log = system.log_tail(service, lines=10_000)
            assert "AuthorizationFailed" not in log, service
            assert secure_kafka.passwords[service] not in log, service
    finally:
        system.stop()
        await accounts_db.dispose()
        await billing_db.dispose()


async def _scalar(db: Database, query, values):  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        return await session.scalar(query, values)
