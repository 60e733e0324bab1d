"""The SMTP transport against real SMTP servers (aiosmtpd on 127.0.0.1, a free port each, started by the test):
transient and permanent failures told apart, internationalised addresses, persistent pooled connections that
survive the server closing them, TLS and AUTH, DKIM signatures verified with dkimpy on the bytes the server
received, and what `compose` puts in a mail (Message-ID, Date, List-Unsubscribe, parts, attachments)."""

import asyncio
import base64
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from notifier.dkim_signing import DkimSigner
from notifier.mailer import SmtpConfig, SmtpPool, TransientDeliveryError, Undeliverable, address_problem, to_wire
from notifier.service import Attachment, Rendered, compose
from notifier.settings import NotifierSettings

SENDER = "Visiopass <no-reply@visiopass.test>"
RENDERED = Rendered("Votre lien de participation", "Bonjour,\nvoici le lien.\n", "<p>Bonjour, voici le lien.</p>\n")


class Server:
    """An aiosmtpd handler keeping what it receives; `reply` may answer a command otherwise (a 4xx, a 5xx)."""

    def __init__(self, reply: Callable[[str, Any, Any], str | None] | None = None) -> None:
        self.reply = reply or (lambda command, server, session: None)
        self.connections = 0  # counted as the server accepts them
        self.commands: list[str] = []
        self.received: list[Any] = []  # the envelopes of the mails taken
        self.in_transaction: set[int] = set()  # sessions between MAIL and the end of DATA
        self.overlaps = 0  # a MAIL on a session already in a transaction (one connection used by two sends)
        self.sent_on: dict[int, int] = {}  # messages taken per session

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.commands.append("MAIL")
        if id(session) in self.in_transaction:
            self.overlaps += 1
        answer = self.reply("MAIL", server, session)
        if answer:
            return answer
        self.in_transaction.add(id(session))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.commands.append("RCPT")
        answer = self.reply("RCPT", server, session)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.commands.append("DATA")
        self.in_transaction.discard(id(session))
        answer = self.reply("DATA", server, session)
        if answer:
            return answer
        self.received.append(envelope)
        self.sent_on[id(session)] = self.sent_on.get(id(session), 0) + 1
        return "250 2.0.0 Message accepted"

    async def handle_RSET(self, server, session, envelope):
        self.in_transaction.discard(id(session))
        return "250 OK"

    def messages(self) -> list[email.message.EmailMessage]:
        """The mails taken, parsed (those sent with SMTPUTF8 have UTF-8 headers: parsed from text)."""
        return [
            email.message_from_string(e.original_content.decode(), policy=email.policy.default)
            if e.smtp_utf8
            else email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.received
        ]


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


@contextlib.asynccontextmanager
async def serving(handler: Server, *, tls: ssl.SSLContext | None = None, **options: Any) -> AsyncIterator[int]:
    """`handler` listening on a free port of 127.0.0.1 (TLS from the first byte with `tls`); yields the port."""
    loop = asyncio.get_running_loop()

    def accept() -> SMTP:
        handler.connections += 1
        return SMTP(handler, hostname="mx.test", loop=loop, **options)

    server = await loop.create_server(accept, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def pool_for(port: int, **options: Any) -> SmtpPool:
    config = {"host": "127.0.0.1", "port": port, "timeout": 5.0, "local_hostname": "notifier.test", **options}
    return SmtpPool(SmtpConfig(**config))


def mail(recipient: str = "claire@example.fr", **options: Any) -> email.message.Message:
    return compose(SENDER, recipient, RENDERED, "fr", **options)


def sent(message: email.message.Message) -> email.message.EmailMessage:
    """`message` as a mail program reads it: the bytes sent, parsed."""
    return email.message_from_bytes(to_wire(message), policy=email.policy.default)


# --- failures: transient or permanent ---


async def test_a_server_failing_twice_then_accepting_gives_two_transient_errors_then_one_delivery():
    attempts = []

    def greylist(command, server, session):
        if command == "RCPT":
            attempts.append(command)
            if len(attempts) <= 2:
                return "451 4.7.1 Greylisted, please try again later"
        return None

    server = Server(greylist)
    async with serving(server) as port, pool_for(port) as pool:
        message = mail(delivery_id=uuid.uuid4())
        failures = []
        for _ in range(5):  # what the delivery loop does, without its backoff
            try:
                await pool.send(message)
                break
            except TransientDeliveryError as exc:
                failures.append(exc)
    assert [(f.code, "451" in str(f)) for f in failures] == [(451, True), (451, True)]
    assert len(server.received) == 1
    assert server.connections == 1, "a 4xx ends the transaction (RSET), not the connection"


@pytest.mark.parametrize(
    ("command", "answer", "error", "code"),
    [
        ("MAIL", "553 5.7.1 Sender address rejected", Undeliverable, 553),
        ("RCPT", "550 5.1.1 User unknown", Undeliverable, 550),
        ("DATA", "554 5.6.0 Message content rejected", Undeliverable, 554),
        ("MAIL", "452 4.3.1 Insufficient system storage", TransientDeliveryError, 452),
        ("DATA", "451 4.3.0 Local error in processing", TransientDeliveryError, 451),
    ],
)
async def test_a_refusal_is_permanent_for_a_5xx_and_transient_for_a_4xx(command, answer, error, code):
    refused = []

    def refuse_once(seen, smtp, session):
        if seen == command and not refused:
            refused.append(seen)
            return answer
        return None

    server = Server(refuse_once)
    async with serving(server) as port, pool_for(port) as pool:
        with pytest.raises(error) as raised:
            await pool.send(mail())
        assert raised.value.code == code and answer in str(raised.value)
        assert server.commands.count(command) == 1, "refused once, not tried again by the transport"
        assert server.received == []
        await pool.send(mail())  # the connection is still good for the next mail
        assert len(server.received) == 1
    assert server.connections == 1


async def test_a_permanent_refusal_of_the_only_recipient_is_recorded_at_once_without_a_retry_loop():
    def refuse(command, smtp, session):
        return "550 5.1.1 <bounce@example.fr>: User unknown" if command == "RCPT" else None

    server = Server(refuse)
    async with serving(server) as port, pool_for(port) as pool:
        with pytest.raises(Undeliverable, match="User unknown"):
            await pool.send(mail("bounce@example.fr"))
    assert server.commands == ["MAIL", "RCPT"]


async def test_an_unreachable_server_and_a_timeout_are_transient():
    async with serving(Server()) as port:
        pass  # closed: nobody listens on that port any more
    async with pool_for(port) as pool:
        with pytest.raises(TransientDeliveryError, match="cannot open a session"):
            await pool.send(mail())

    release = asyncio.Event()

    class Slow(Server):
        async def handle_DATA(self, server, session, envelope):
            await release.wait()
            return "250 OK"

    async with serving(Slow()) as port, pool_for(port, timeout=0.3) as pool:
        with pytest.raises(TransientDeliveryError, match=r"DATA.*[Tt]imed out"):
            await pool.send(mail())
        release.set()


# --- internationalised addresses ---


async def test_an_internationalised_address_without_smtputf8_is_undeliverable_with_the_reason():
    server = Server()
    async with serving(server, enable_SMTPUTF8=False) as port, pool_for(port) as pool:
        with pytest.raises(Undeliverable) as raised:
            await pool.send(mail("élève@exemple.fr"))
    assert "the server cannot carry the internationalised address élève@exemple.fr" in str(raised.value)
    assert "SMTPUTF8" in str(raised.value)
    assert server.commands == [], "refused before any transaction"


async def test_an_internationalised_address_goes_out_with_smtputf8_when_the_server_offers_it():
    server = Server()
    async with serving(server, enable_SMTPUTF8=True) as port, pool_for(port) as pool:
        await pool.send(mail("élève@exemple.fr"))
    [envelope] = server.received
    assert envelope.rcpt_tos == ["élève@exemple.fr"] and envelope.smtp_utf8
    [received] = server.messages()
    assert received["To"].addresses[0].addr_spec == "élève@exemple.fr"
    assert text_of(received) == RENDERED.text


@pytest.mark.parametrize(
    ("address", "smtputf8", "problem"),
    [
        ("claire.martin+visio@lycee-hugo.fr", False, None),
        ("élève@exemple.fr", True, None),
        ("élève@exemple.fr", False, "internationalised"),
        ("claire@exämple.fr", False, "internationalised"),
        ("", False, "empty"),
        (" claire@example.fr", False, "spaces"),
        ("claire martin@example.fr", False, "space"),
        ("claire.example.fr", False, "@"),
        ("claire@@example.fr", False, "more than one @"),
        ("claire..martin@example.fr", False, "before the @"),
        (".claire@example.fr", False, "before the @"),
        ("claire<script>@example.fr", False, "before the @"),
        ("claire@example..fr", False, "domain"),
        ("claire@-example.fr", False, "domain"),
        ("claire@example_fr.com", False, "domain"),
        ("claire@192.168.1.1", False, "domain"),
        ("x" * 65 + "@example.fr", False, "64"),
    ],
)
def test_address_problem_says_why_an_address_cannot_be_mailed(address, smtputf8, problem):
    found = address_problem(address, smtputf8=smtputf8)
    assert (found is None) if problem is None else (found is not None and problem in found), found


# --- persistent connections ---


async def test_twenty_mails_over_a_pool_of_two_open_two_connections_each_used_by_one_send_at_a_time():
    server = Server()
    async with serving(server) as port, pool_for(port, pool_size=2) as pool:
        await asyncio.gather(*(pool.send(mail(f"participant-{n}@example.fr")) for n in range(20)))
        assert server.connections == 2
        await pool.send(mail())  # later mails reuse them too
    assert server.connections == 2 and server.overlaps == 0
    assert sorted(e.rcpt_tos[0] for e in server.received[:20]) == sorted(
        f"participant-{n}@example.fr" for n in range(20)
    )
    assert sum(server.sent_on.values()) == 21


async def test_mails_sent_one_after_the_other_share_one_connection():
    server = Server()
    async with serving(server) as port, pool_for(port, pool_size=4) as pool:
        for n in range(5):
            await pool.send(mail(f"p{n}@example.fr"))
    assert server.connections == 1 and len(server.received) == 5


@pytest.mark.parametrize("how", ["closes after each mail", "answers 421 to the next MAIL and closes"])
async def test_a_connection_the_server_closed_is_replaced_transparently(how):
    def reply(command, smtp, session):
        if how.startswith("answers 421") and command == "MAIL" and getattr(session, "served", False):
            asyncio.get_running_loop().call_soon(smtp.transport.close)
            return "421 4.4.2 mx.test Error: timeout exceeded"
        return None

    class Closing(Server):
        async def handle_DATA(self, server, session, envelope):
            answer = await super().handle_DATA(server, session, envelope)
            session.served = True
            if how == "closes after each mail":
                asyncio.get_running_loop().call_soon(server.transport.close)
            return answer

    server = Closing(reply)
    async with serving(server) as port, pool_for(port) as pool:
        for n in range(3):
            await pool.send(mail(f"p{n}@example.fr"))
    assert len(server.received) == 3
    assert server.connections == 3


async def test_a_server_answering_421_to_every_mail_gets_one_more_try_on_a_new_connection_not_a_loop():
    def reply(command, smtp, session):
        if command == "MAIL" and server.received:
            return "421 4.3.2 mx.test Service shutting down"
        return None

    server = Server(reply)
    async with serving(server) as port, pool_for(port) as pool:
        await pool.send(mail())
        with pytest.raises(TransientDeliveryError, match=r"421 4\.3\.2"):
            await pool.send(mail())
    assert server.commands.count("MAIL") == 3 and server.connections == 2


async def test_an_idle_connection_is_closed_after_idle_seconds_and_reopened_when_needed():
    server = Server()
    async with serving(server) as port, pool_for(port, idle_seconds=0.2) as pool:
        await pool.send(mail())
        await asyncio.sleep(0.5)
        assert pool._idle == [], "closed with QUIT once idle too long"
        await pool.send(mail())
    assert server.connections == 2 and len(server.received) == 2


# --- TLS and authentication ---


@dataclass
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Certificate:
    """A self-signed certificate for 127.0.0.1: the client validates it against it as its CA bundle."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(folder / "cert.pem", folder / "key.pem")


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"notifier", b"s3cret")
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@pytest.mark.parametrize("security", ["starttls", "tls"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # it is TLS, that aiosmtpd cannot see
async def test_starttls_or_implicit_tls_with_authentication(certificate, security):
    server = Server()
    options = {"authenticator": authenticator, "auth_required": True}
    if security == "starttls":
        options.update(tls_context=certificate.server_context(), require_starttls=True)
    else:
        options.update(auth_require_tls=False)  # aiosmtpd does not see TLS it did not start itself
    tls = certificate.server_context() if security == "tls" else None
    async with serving(server, tls=tls, **options) as port:
        secure = {"security": security, "cert_bundle": str(certificate.cert_file)}
        async with pool_for(port, username="notifier", password="s3cret", **secure) as pool:
            await pool.send(mail())
            await pool.send(mail())
        async with pool_for(port, username="notifier", password="wrong", **secure) as pool:
            with pytest.raises(TransientDeliveryError, match=r"cannot open a session.*535"):
                await pool.send(mail())
        async with pool_for(port, security=security) as pool:  # no CA bundle: the self-signed certificate fails
            with pytest.raises(TransientDeliveryError, match=r"(?i)certificate"):
                await pool.send(mail())
    assert len(server.received) == 2


def test_the_pool_is_built_from_the_settings():
    settings = NotifierSettings(
        smtp_host="smtp.example.net", smtp_port=587, smtp_starttls=True, smtp_username="u", smtp_pool_size=3
    )
    pool = SmtpPool.from_settings(settings)
    assert (pool.config.host, pool.config.port, pool.config.security, pool.config.pool_size) == (
        "smtp.example.net",
        587,
        "starttls",
        3,
    )
    assert pool.signer is None, "no DKIM key: unsigned"
    assert SmtpPool.from_settings(NotifierSettings(smtp_use_tls=True)).config.security == "tls"
    with pytest.raises(ValueError, match="exclude each other"):
        SmtpPool.from_settings(NotifierSettings(smtp_use_tls=True, smtp_starttls=True))


# --- DKIM ---


@pytest.fixture(scope="module")
def dkim_key() -> tuple[bytes, bytes]:
    """A private key in PEM and the TXT record publishing its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns(record: bytes):
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name.rstrip(b".") == b"mail2026._domainkey.visiopass.test" else None

    return lookup


async def test_the_received_mail_verifies_against_the_published_key_and_fails_once_a_signed_header_changes(
    dkim_key, tmp_path
):
    pem, record = dkim_key
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(pem)
    server = Server()
    async with serving(server) as port:
        settings = NotifierSettings(
            smtp_port=port,
            smtp_local_hostname="notifier.test",
            mail_from=SENDER,
            dkim_selector="mail2026",
            dkim_private_key_file=str(key_file),
        )
        async with SmtpPool.from_settings(settings) as pool:
            await pool.send(mail(delivery_id=uuid.uuid4(), unsubscribe_url="https://visiopass.test/u/abc"))
            french = Rendered("Inscription confirmée : « Pronote avancé » ✓", "Élève, à bientôt\n", "<p>Élève</p>\n")
            pdf = Attachment("facture-2026-001.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n%%EOF\n")
            await pool.send(compose(SENDER, "claire@example.fr", french, "fr", [pdf], delivery_id=uuid.uuid4()))
    first, second = (e.original_content for e in server.received)
    lookup = dns(record)
    for raw in (first, second):
        assert raw.startswith(b"DKIM-Signature: ")
        assert dkim.verify(raw, dnsfunc=lookup)
        signature = dkim.DKIM(raw)
        signature.verify(dnsfunc=lookup)
        signed = {name.decode() for name in signature.include_headers}
        assert {"from", "to", "subject", "date", "message-id", "content-type", "mime-version"} <= signed
    assert {b"list-unsubscribe", b"list-unsubscribe-post"} <= set(dkim.DKIM(first).verify_headerprep()[1])

    assert not dkim.verify(first.replace(b"Subject: Votre lien", b"Subject: Votre gain"), dnsfunc=lookup)
    assert not dkim.verify(first.replace(b"<https://visiopass.test/u/abc>", b"<https://evil.test/u>"), dnsfunc=lookup)
    assert not dkim.verify(first.replace(b"\r\n\r\n", b"\r\nFrom: ceo@visiopass.test\r\n\r\n", 1), dnsfunc=lookup)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_der = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert not dkim.verify(first, dnsfunc=dns(b"v=DKIM1; k=rsa; p=" + base64.b64encode(other_der)))


def test_the_dkim_key_comes_inline_with_escaped_newlines_or_from_a_file_never_both(dkim_key, tmp_path):
    pem, _ = dkim_key
    one_line = pem.decode().strip().replace("\n", "\\n")
    signer = DkimSigner.from_settings(
        NotifierSettings(mail_from=SENDER, dkim_selector="mail2026", dkim_private_key=one_line)
    )
    assert signer is not None and signer.domain == b"visiopass.test"
    assert "BEGIN" not in repr(signer)
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(pem)
    with pytest.raises(ValueError, match="not both"):
        DkimSigner.from_settings(
            NotifierSettings(dkim_selector="s", dkim_private_key=pem.decode(), dkim_private_key_file=str(key_file))
        )
    with pytest.raises(ValueError, match="SELECTOR"):
        DkimSigner.from_settings(NotifierSettings(dkim_private_key=pem.decode()))
    with pytest.raises(ValueError, match="cannot sign"):
        DkimSigner(selector="s", domain="visiopass.test", private_key=b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----")


# --- what compose puts in a mail ---


def test_list_unsubscribe_and_its_one_click_post_only_with_an_unsubscribe_url():
    reminder = sent(mail(unsubscribe_url="https://visiopass.test/unsubscribe/tok3n"))
    assert reminder["List-Unsubscribe"] == "<https://visiopass.test/unsubscribe/tok3n>"
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    transactional = sent(mail())
    assert transactional["List-Unsubscribe"] is None and transactional["List-Unsubscribe-Post"] is None
    with pytest.raises(ValueError):
        mail(unsubscribe_url="javascript:alert(1)")


def test_the_message_id_is_stable_for_one_delivery_and_the_date_is_set():
    delivery = uuid.uuid4()
    first, again = sent(mail(delivery_id=delivery)), sent(mail(delivery_id=delivery))
    assert first["Message-ID"] == again["Message-ID"] == f"<{delivery}@visiopass.test>"
    assert sent(mail(delivery_id=uuid.uuid4()))["Message-ID"] != first["Message-ID"]
    assert sent(mail())["Message-ID"].endswith("@visiopass.test>")
    assert abs(first["Date"].datetime - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    moment = dt.datetime(2026, 3, 12, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert sent(mail(date=moment))["Date"] == "Thu, 12 Mar 2026 08:30:00 +0000"


@dataclass(frozen=True)
class Invitation:
    filename: str
    content: bytes
    content_type: str


def test_text_html_and_attachments_of_any_type():
    ics = Invitation(
        "session.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar; method=REQUEST; charset=utf-8"
    )
    files = [Attachment("facture.pdf", b"%PDF-1.7\n"), ics, Attachment("notes.xyz-unknown", b"\x00\x01")]
    message = sent(mail(attachments=files))
    assert message.get_content_type() == "multipart/mixed"
    body, *attached = message.iter_parts()
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert [(p.get_content_type(), p.get_filename()) for p in attached] == [
        ("application/pdf", "facture.pdf"),
        ("text/calendar", "session.ics"),
        ("application/octet-stream", "notes.xyz-unknown"),
    ]
    assert attached[1].get_param("method") == "REQUEST"
    assert [p.get_payload(decode=True) for p in attached] == [f.content for f in files]
    assert [p for p in message.walk() if p is not message and p["MIME-Version"]] == []
    assert (message["MIME-Version"], message["Content-Language"]) == ("1.0", "fr")


def test_non_ascii_text_goes_out_7bit_clean_and_reads_back_the_same():
    text = "Bonjour Élodie,\nla session « Pronote avancé » commence à 10 h.\n"
    message = compose(SENDER, "a@b.fr", Rendered("Rappel : séance à 10 h", text, f"<p>{text}</p>\n"), "fr")
    wire = to_wire(message)
    assert wire.isascii()
    back = email.message_from_bytes(wire, policy=email.policy.default)
    assert text_of(back) == text
    assert back["Subject"] == "Rappel : séance à 10 h"
