"""SMTP transport: a pool of persistent connections to our mail relay (aiosmtplib), DKIM-signing what it sends.

Guarantees:
- At most `pool_size` connections are open; each carries one message at a time (a connection is taken out of the
  pool for a whole MAIL/RCPT/DATA transaction). An idle connection is reused, most recent first; one idle longer
  than `idle_seconds`, or that the server has closed (idle timeout, 421, restart), is dropped and replaced.
- A reused connection found dead at MAIL FROM (the server closed it or answered 421 before taking anything) is
  replaced and the message tried once more, transparently. Never after DATA has begun: the server may have the
  message already.
- Every failure is one of two (notifier.service): `Undeliverable` when no later attempt can succeed (a 5xx reply
  to MAIL, RCPT or DATA, every recipient refused for good, a malformed address, an internationalised address
  while the server lacks SMTPUTF8, a message larger than the server's SIZE), or `TransientDeliveryError` (a 4xx
  reply, the server unreachable or dropping the connection, a timeout, a TLS or login failure with our relay).
- The bytes sent are the bytes signed: `to_wire` renders the message once, `DkimSigner` signs those bytes, and
  aiosmtplib puts them on the wire as they are (it only dot-stuffs, which the server undoes).

A timeout or lost connection during DATA is ambiguous (the message may have been delivered): it is reported
transient and sent again later with the same Message-ID (service.compose), by which the copy is recognisable.
"""

import asyncio
import copy
import ipaddress
import logging
from dataclasses import dataclass, field
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses
from typing import Literal

import aiosmtplib
import dkim

from notifier.dkim_signing import DkimSigner
from notifier.service import DeliveryError, RecipientRefused, TransientDeliveryError, Undeliverable
from notifier.settings import NotifierSettings

__all__ = [
    "DeliveryError",
    "SmtpConfig",
    "SmtpEnvelope",
    "SmtpMailer",
    "SmtpPool",
    "TransientDeliveryError",
    "Undeliverable",
    "address_problem",
    "prepare",
    "to_wire",
]

log = logging.getLogger(__name__)


class WirePolicy(Compat32):
    """How `to_wire` writes a mail made by `service.compose`: compat32, so that nothing parses a header again
    (the modern policy's header registry parses each one it reads, which made serialising slow), and each header
    written as it was set, with CRLF line ends: compose sets them ready to send (a non-ASCII subject or display
    name in RFC 2047 encoded words). `utf8`: for a mail with an internationalised address (RFC 6531/6532), whose
    headers go out in UTF-8 as they are; else they must be ASCII. 7-bit: a body part holding 8-bit text would be
    re-encoded (compose makes none), so the mail needs no 8BITMIME and no relay re-encodes it (DKIM survives)."""

    utf8 = False

    def fold(self, name: str, value: str) -> str:
        return f"{name}: {self.linesep.join(value.splitlines())}{self.linesep}"

    def fold_binary(self, name: str, value: str) -> bytes:
        return self.fold(name, value).encode("utf-8" if self.utf8 else "ascii")


WIRE_POLICY = WirePolicy(linesep="\r\n", cte_type="7bit")
UTF8_WIRE_POLICY = WIRE_POLICY.clone(utf8=True)  # type: ignore[call-arg]  # WirePolicy's own setting

ADDRESS_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc")
RECIPIENT_HEADERS = ("To", "Cc", "Bcc")
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")


def address_problem(address: str, *, smtputf8: bool = False) -> str | None:
    """Why `address` (a bare addr-spec, as a person types it) cannot be mailed, or None when it can.

    For the places where an address is entered, so that one our mail server cannot carry is refused there,
    clearly, instead of being accepted and failing at the first mail. `smtputf8` says whether the mail server
    carries internationalised addresses (non-ASCII, RFC 6531); by default it is assumed not to. Stricter than
    RFC 5321 where no real address suffers: no quoted local part, no address literal ([192.0.2.1])."""
    if not address or address != address.strip():
        return "the address is empty or has spaces around it"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in address):
        return "the address contains a space or a control character"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "the address needs a part before and after a single @"
    if "@" in local:
        return "the address contains more than one @"
    if not address.isascii() and not smtputf8:
        return (
            f"{address} is an internationalised address (non-ASCII characters), which our mail server cannot carry "
            "(no SMTPUTF8); an ASCII address is needed"
        )
    if len(local.encode()) > 64:
        return "the part before the @ is longer than 64 characters"
    if len(address.encode()) > 254:
        return "the address is longer than 254 characters"
    if "" in local.split(".") or any(c.isascii() and c not in _ATEXT and c != "." for c in local):
        return f"the part before the @ ({local}) holds a character an address cannot have, or a misplaced dot"
    labels = domain.removesuffix(".").split(".")
    for label in labels:
        if not label or len(label.encode()) > 63 or label.startswith("-") or label.endswith("-"):
            return f"the domain ({domain}) is not a valid domain name"
        if any(c.isascii() and not (c.isalnum() or c == "-") for c in label):
            return f"the domain ({domain}) is not a valid domain name"
    if labels[-1].isdigit():
        return f"the domain ({domain}) is not a valid domain name"
    return None


def needs_smtputf8(message: Message) -> bool:
    """Whether one of the message's addresses is internationalised (then sent with SMTPUTF8, headers in UTF-8)."""
    values = _values(message, ADDRESS_HEADERS)  # an ASCII header holds no such address: parsed only if not ASCII
    return not all(value.isascii() for value in values) and not all(a.isascii() for _, a in getaddresses(values))


def to_wire(message: Message) -> bytes:
    """The message as sent: CRLF line ends, no Bcc header; 7-bit clean unless an address is internationalised.
    `message` is a compat32 Message whose headers are set as they are sent, as `service.compose` makes it."""
    if message["Bcc"] is not None:
        message = copy.copy(message)
        del message["Bcc"]
    return message.as_bytes(policy=UTF8_WIRE_POLICY if needs_smtputf8(message) else WIRE_POLICY)


@dataclass(frozen=True)
class SmtpEnvelope:
    """What one SMTP transaction carries: the envelope addresses and the final (signed) bytes."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    smtputf8: bool  # an address (envelope or header) is internationalised: needs a server offering SMTPUTF8
    international: str | None = None  # the first such address, to say which one a server cannot carry


def prepare(message: Message, signer: DkimSigner | None = None, *, envelope_from: str | None = None) -> SmtpEnvelope:
    """The envelope and the bytes to send for `message`, signed when `signer` is given. Raises `Undeliverable`
    for an address no server can take or a message that cannot be signed."""
    senders = [address for _, address in _addresses(message, ("From",))]
    sender = envelope_from or (senders[0] if senders else "")
    recipients = tuple(dict.fromkeys(address for _, address in _addresses(message, RECIPIENT_HEADERS)))
    if not recipients:
        raise Undeliverable("the mail has no recipient")
    for address in (sender, *recipients):
        problem = address_problem(address, smtputf8=True)
        if problem:
            raise Undeliverable(f"cannot send to or from {address!r}: {problem}")
    wire = to_wire(message)
    if signer is not None:
        try:
            wire = signer.sign(wire)
        except dkim.DKIMException as exc:
            raise Undeliverable(f"the mail cannot be DKIM-signed: {exc}") from exc
    everyone = (sender, *recipients, *(address for _, address in _addresses(message, ADDRESS_HEADERS)))
    international = next((address for address in everyone if not address.isascii()), None)
    return SmtpEnvelope(sender, recipients, wire, smtputf8=international is not None, international=international)


def _addresses(message: Message, headers: tuple[str, ...]) -> list[tuple[str, str]]:
    return getaddresses(_values(message, headers))


def _values(message: Message, headers: tuple[str, ...]) -> list[str]:
    return [str(value) for name in headers for value in message.get_all(name, [])]


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the relay. `security`: "plain", "starttls" (upgrade required, usually port 587) or "tls"
    (TLS from the first byte, usually port 465)."""

    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["plain", "starttls", "tls"] = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    pool_size: int = 4
    idle_seconds: float = 30.0
    validate_certs: bool = True
    cert_bundle: str | None = None
    local_hostname: str | None = None
    envelope_from: str | None = None

    def __post_init__(self) -> None:
        if self.security not in ("plain", "starttls", "tls"):
            raise ValueError(f"unknown SMTP security {self.security!r}: plain, starttls or tls")
        if self.pool_size < 1:
            raise ValueError("the SMTP pool needs at least one connection")

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> "SmtpConfig":
        if settings.smtp_starttls and settings.smtp_use_tls:
            raise ValueError("NOTIFIER_SMTP_STARTTLS and NOTIFIER_SMTP_USE_TLS exclude each other")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security="tls" if settings.smtp_use_tls else "starttls" if settings.smtp_starttls else "plain",
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout_seconds,
            pool_size=settings.smtp_pool_size,
            idle_seconds=settings.smtp_idle_seconds,
            validate_certs=settings.smtp_validate_certs,
            cert_bundle=settings.smtp_cert_bundle,
            local_hostname=settings.smtp_local_hostname,
            envelope_from=settings.smtp_envelope_from,
        )


class _StaleConnection(Exception):
    """The server had closed the connection (or answered 421) before this transaction took anything."""


@dataclass(eq=False)
class _Connection:
    smtp: aiosmtplib.SMTP
    idle_since: float = 0.0
    clean: bool = True  # no transaction left half-way: reusable


class SmtpPool:
    """Sends mail through up to `config.pool_size` persistent connections. `send` is safe to call concurrently;
    `close` when done (pending sends finish, their connections are then closed)."""

    def __init__(self, config: SmtpConfig, *, signer: DkimSigner | None = None) -> None:
        self.config = config
        self.signer = signer
        self._slots = asyncio.Semaphore(config.pool_size)
        self._idle: list[_Connection] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        if config.username and config.security == "plain" and not _is_loopback(config.host):
            log.warning("SMTP password sent in clear to %s: set NOTIFIER_SMTP_STARTTLS or _USE_TLS", config.host)

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> "SmtpPool":
        return cls(SmtpConfig.from_settings(settings), signer=DkimSigner.from_settings(settings))

    async def __aenter__(self) -> "SmtpPool":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, message: Message) -> None:
        """Deliver `message` to the relay, or raise `Undeliverable` (never worth another try) or
        `TransientDeliveryError` (try again later)."""
        envelope = prepare(message, self.signer, envelope_from=self.config.envelope_from)
        async with self._slots:
            connection, reused = await self._checkout()
            while True:
                try:
                    await self._transact(connection, envelope)
                    return
                except _StaleConnection as exc:
                    connection.clean = False
                    if not reused:
                        raise TransientDeliveryError(f"the mail server closed the connection: {exc}") from None
                    log.info("SMTP connection closed by the server (%s); sending again on a new one", exc)
                finally:
                    self._checkin(connection)
                connection, reused = await self._connect(), False

    async def close(self) -> None:
        """Close the idle connections (QUIT); the ones in use close when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(connection) for connection in idle), *self._closing)

    async def _checkout(self) -> tuple[_Connection, bool]:
        """A connection for this send alone (the caller holds a slot): the most recently used idle one still open
        and fresh enough, else a new one."""
        if self._closed:
            raise TransientDeliveryError("the mail transport is shut down")
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if connection.smtp.is_connected and now - connection.idle_since <= self.config.idle_seconds:
                return connection, True
            await self._quit(connection)
        return await self._connect(), False

    def _checkin(self, connection: _Connection) -> None:
        if connection.clean and connection.smtp.is_connected and not self._closed:
            loop = asyncio.get_running_loop()
            connection.idle_since = loop.time()
            self._idle.append(connection)
            loop.call_later(self.config.idle_seconds + 0.1, self._expire, connection)
        else:
            connection.smtp.close()

    def _expire(self, connection: _Connection) -> None:
        """Say goodbye (QUIT) on a connection left idle too long, rather than wait for the server to drop it."""
        idle_for = asyncio.get_running_loop().time() - connection.idle_since
        if connection in self._idle and idle_for > self.config.idle_seconds:
            self._idle.remove(connection)
            task = asyncio.get_running_loop().create_task(self._quit(connection))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _connect(self) -> _Connection:
        c = self.config
        smtp = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            use_tls=c.security == "tls",
            start_tls=c.security == "starttls",
            validate_certs=c.validate_certs,
            cert_bundle=c.cert_bundle,
            local_hostname=c.local_hostname,
            timeout=c.timeout,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise TransientDeliveryError(
                f"cannot open a session with the mail server {c.host}:{c.port}: {_describe(exc)}",
                code=getattr(exc, "code", None),
            ) from None
        return _Connection(smtp)

    async def _transact(self, connection: _Connection, envelope: SmtpEnvelope) -> None:
        smtp = connection.smtp
        if envelope.smtputf8 and not smtp.supports_extension("smtputf8"):
            raise Undeliverable(
                f"the server cannot carry the internationalised address {envelope.international} "
                "(it does not offer SMTPUTF8)"
            )
        options = self._mail_options(smtp, envelope)
        encoding = "utf-8" if envelope.smtputf8 else "ascii"
        connection.clean = False
        try:
            await smtp.mail(envelope.sender, options=options, encoding=encoding)
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise _StaleConnection(_describe(exc)) from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                raise _StaleConnection(_describe(exc)) from None
            await self._reset(connection)
            raise _failure(exc, "MAIL FROM") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _failure(exc, "MAIL FROM") from None
        command = "RCPT TO"
        try:
            refused = await self._recipients(smtp, envelope, encoding)
            if len(refused) == len(envelope.recipients):
                await self._reset(connection)
                replies = "; ".join(f"{address}: {_describe(exc)}" for address, exc in refused.items())
                if all(_mailbox_refused(exc) for exc in refused.values()):
                    raise RecipientRefused(f"every recipient refused (RCPT TO): {replies}", code=_first_code(refused))
                if all(_permanent(exc) for exc in refused.values()):
                    raise Undeliverable(f"every recipient refused (RCPT TO): {replies}", code=_first_code(refused))
                raise TransientDeliveryError(
                    f"recipients refused for now (RCPT TO): {replies}", code=_first_code(refused)
                )
            for address, exc in refused.items():
                log.warning("recipient %s refused (%s); the mail goes to the others", address, _describe(exc))
            command = "DATA"
            await smtp.data(envelope.data)
        except DeliveryError:
            raise
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(connection)
            raise _failure(exc, command) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _failure(exc, command) from None
        connection.clean = True

    @staticmethod
    def _mail_options(smtp: aiosmtplib.SMTP, envelope: SmtpEnvelope) -> list[str]:
        options = []
        if envelope.smtputf8:
            options.append("SMTPUTF8")
        if not envelope.data.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if smtp.supports_extension("size"):
            limit = smtp.esmtp_extensions.get("size", "")
            if limit.isdigit() and 0 < int(limit) < len(envelope.data):
                raise Undeliverable(f"the mail ({len(envelope.data)} bytes) is larger than the server takes ({limit})")
            options.append(f"SIZE={len(envelope.data)}")
        return options

    @staticmethod
    async def _recipients(
        smtp: aiosmtplib.SMTP, envelope: SmtpEnvelope, encoding: str
    ) -> dict[str, aiosmtplib.SMTPRecipientRefused]:
        refused = {}
        for address in envelope.recipients:
            try:
                await smtp.rcpt(address, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                if not smtp.is_connected:  # a 421: the server is going away, nothing more on this connection
                    raise _failure(exc, "RCPT TO") from None
                refused[address] = exc
        return refused

    @staticmethod
    async def _reset(connection: _Connection) -> None:
        """End the failed transaction (RSET) so that the connection serves the next message; if that fails, the
        connection is dropped instead."""
        if not connection.smtp.is_connected:
            return
        try:
            await connection.smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            return
        connection.clean = True

    async def _quit(self, connection: _Connection) -> None:
        try:
            if connection.smtp.is_connected:
                await connection.smtp.quit(timeout=min(self.config.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            connection.smtp.close()


class SmtpMailer(SmtpPool):
    """The pool built from the notifier's settings (`SmtpPool.from_settings`), for callers that pass settings."""

    def __init__(self, settings: NotifierSettings) -> None:
        super().__init__(SmtpConfig.from_settings(settings), signer=DkimSigner.from_settings(settings))


def _permanent(exc: aiosmtplib.SMTPResponseException) -> bool:
    return 500 <= exc.code < 600


def _mailbox_refused(exc: aiosmtplib.SMTPResponseException) -> bool:
    """A hard bounce: a 5xx to RCPT about the mailbox, not our relay's policy refusing us (530, or an enhanced
    status 5.7.x: authentication required, relaying denied), which would otherwise mark every address bouncing."""
    return _permanent(exc) and exc.code != 530 and not exc.message.lstrip().startswith("5.7.")


def _first_code(refused: dict[str, aiosmtplib.SMTPRecipientRefused]) -> int | None:
    return next((exc.code for exc in refused.values()), None)


def _failure(exc: Exception, command: str) -> DeliveryError:
    """The delivery error for a failure during a transaction: permanent only for a 5xx reply."""
    if isinstance(exc, aiosmtplib.SMTPResponseException) and _permanent(exc):
        return Undeliverable(f"refused at {command}: {_describe(exc)}", code=exc.code)
    return TransientDeliveryError(f"failed at {command}: {_describe(exc)}", code=getattr(exc, "code", None))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}".strip()
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
