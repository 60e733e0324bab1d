"""DKIM signatures (RFC 6376) on outgoing mail, with dkimpy, so that mailbox providers trust our mail (the J-2
participation link must not land in spam).

What is signed: the exact bytes the SMTP transport sends (`mailer.to_wire`), so the signature verifies on
arrival as long as nobody changes the signed parts. Canonicalisation is relaxed/relaxed: a relay that refolds
or re-spaces a header, or trims trailing blanks, does not break it. The body is 7-bit clean (`service.compose`),
so no relay has to re-encode it. Every header that matters is signed (From, To, Cc, Subject, Date, Message-ID,
Reply-To, MIME headers, List-Unsubscribe and List-Unsubscribe-Post, which RFC 8058 requires signed): each
name is listed once more than it occurs, so that adding one (a second From, a List-Unsubscribe on a
transactional mail) breaks the signature too.

The key: an RSA private key in PEM (PKCS#1 "BEGIN RSA PRIVATE KEY" or PKCS#8 "BEGIN PRIVATE KEY"), 2048 bits
advised, from the environment: NOTIFIER_DKIM_PRIVATE_KEY holds the PEM itself (a secret; "\\n" escapes are
accepted for one-line environments) or NOTIFIER_DKIM_PRIVATE_KEY_FILE its path (a mounted secret), never both.
NOTIFIER_DKIM_SELECTOR names it; NOTIFIER_DKIM_DOMAIN is the signing domain (default: the domain of mail_from,
which must be it or below it for DMARC alignment). No key: mail goes out unsigned.

Publishing the public key: a TXT record at `<selector>._domainkey.<domain>` holding
`v=DKIM1; k=rsa; p=<base64 of the DER public key>`, e.g.
`openssl rsa -in dkim.pem -pubout -outform DER | base64 -w0`.
"""

import logging
from pathlib import Path
from typing import Protocol

import dkim
from pydantic import SecretStr

log = logging.getLogger(__name__)

SIGNED_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-language",
    "list-unsubscribe",
    "list-unsubscribe-post",
)


class DkimSettings(Protocol):
    mail_from: str
    dkim_selector: str | None
    dkim_domain: str | None
    dkim_private_key: SecretStr | None
    dkim_private_key_file: str | None


class DkimSigner:
    def __init__(self, *, selector: str, domain: str, private_key: bytes) -> None:
        """Raises ValueError at once (at start-up) for a selector, domain or key that cannot sign."""
        if not selector or not selector.isascii() or not domain or not domain.isascii():
            raise ValueError("the DKIM selector and domain must be non-empty ASCII (an IDN domain in its xn-- form)")
        self.selector = selector.encode("ascii")
        self.domain = domain.lower().encode("ascii")
        self._private_key = private_key
        try:
            self.sign(b"From: probe@" + self.domain + b"\r\nSubject: probe\r\n\r\nprobe\r\n")
        except dkim.DKIMException as exc:
            raise ValueError(f"the DKIM private key cannot sign: {exc}") from None

    def __repr__(self) -> str:
        return f"DkimSigner(selector={self.selector.decode()!r}, domain={self.domain.decode()!r})"

    @classmethod
    def from_settings(cls, settings: DkimSettings) -> "DkimSigner | None":
        """The signer the settings describe, or None when no key is configured (mail goes out unsigned)."""
        key = _private_key(settings)
        if key is None:
            return None
        if not settings.dkim_selector:
            raise ValueError("a DKIM private key is configured without NOTIFIER_DKIM_SELECTOR")
        sender_domain = settings.mail_from.rpartition("@")[2].strip(" >").lower()
        domain = (settings.dkim_domain or sender_domain).lower()
        if sender_domain != domain and not sender_domain.endswith("." + domain):
            log.warning(
                "DKIM domain %s does not align with the sender's %s: DMARC will not pass", domain, sender_domain
            )
        return cls(selector=settings.dkim_selector, domain=domain, private_key=key)

    def sign(self, wire: bytes) -> bytes:
        """`wire` with a DKIM-Signature header on top. Raises dkim.DKIMException on a message it cannot sign."""
        headers = _header_names(wire)
        include = [name for name in SIGNED_HEADERS for _ in range(headers.count(name.encode("ascii")) + 1)]
        signature = dkim.sign(
            wire,
            self.selector,
            self.domain,
            self._private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[name.encode("ascii") for name in include],
            linesep=b"\r\n",
        )
        return signature + wire


def _private_key(settings: DkimSettings) -> bytes | None:
    inline = settings.dkim_private_key.get_secret_value().strip() if settings.dkim_private_key else ""
    path = settings.dkim_private_key_file
    if inline and path:
        raise ValueError("set NOTIFIER_DKIM_PRIVATE_KEY or NOTIFIER_DKIM_PRIVATE_KEY_FILE, not both")
    if path:
        return Path(path).read_bytes()
    if not inline:
        return None
    if "\n" not in inline:
        inline = inline.replace("\\n", "\n")  # a PEM squeezed onto one line of an env file
    return inline.encode("ascii") + b"\n"


def _header_names(wire: bytes) -> list[bytes]:
    """The lower-cased names of the message's header fields, one per occurrence."""
    head = wire.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n") if line and line[:1] not in b" \t"]
