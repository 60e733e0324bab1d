"""SMTP transport (aiosmtplib)."""

from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

import aiosmtplib

from notifier.service import Undeliverable
from notifier.settings import NotifierSettings

# Python 3.11's header folding drops a space before some non-ASCII words when it wraps an encoded subject
# (CPython gh-144156): fold only at RFC 5322's hard limit, which our subjects never reach.
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)


def to_wire(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=WIRE_POLICY)


class SmtpMailer:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        """Raises `Undeliverable` when every recipient is refused with a permanent (5xx) reply; any other error
        (connection, 4xx such as greylisting) is left for the delivery loop to try again."""
        try:
            await self._send(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(500 <= refused.code < 600 for refused in exc.recipients):
                replies = "; ".join(f"{refused.code} {refused.message}" for refused in exc.recipients)
                raise Undeliverable(replies) from exc
            raise

    async def _send(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            to_wire(message),
            sender=parseaddr(str(message["From"]))[1],
            recipients=[address for _, address in getaddresses(message.get_all("To", []))],
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds,
        )
