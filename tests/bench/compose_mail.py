"""Time to compose and serialise one participation-link mail (`notifier.service.compose` + `notifier.mailer.to_wire`),
beside a bare `email.mime` (compat32) build of the same multipart/alternative mail, in the same run (the floor).

    uv run python tests/bench/compose_mail.py [--mails 2000]

Pure CPU, one thread: no infrastructure is started. Both build the mail the J-2 burst sends (French subject and
text, so quoted-printable bodies and an RFC 2047 subject) `--mails` times after a short warm-up.
"""

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email import charset, policy
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

from notifier.mailer import to_wire
from notifier.service import Rendered, compose, render

SENDER = "Visiopass <no-reply@visiopass.example>"
VARIABLES = {
    "contact_name": "Claire Martin",
    "expires_at": "3 mars 2027 09:00 CET",
    "link": "https://visiopass.example/verify-email?token=a-token-of-the-bench",
}
UTF8_QP = charset.Charset("utf-8")
UTF8_QP.body_encoding = charset.QP
BARE_WIRE = policy.compat32.clone(linesep="\r\n")


def notifier_mail(rendered: Rendered, number: int) -> bytes:
    message = compose(SENDER, f"participant-{number}@bench.example", rendered, "fr", delivery_id=uuid.uuid4())
    return to_wire(message)


def bare_mail(rendered: Rendered, number: int) -> bytes:
    message = MIMEMultipart("alternative")
    message["From"] = SENDER
    message["To"] = f"participant-{number}@bench.example"
    message["Subject"] = Header(rendered.subject, "utf-8")
    message["Date"] = formatdate(datetime.now(UTC).timestamp())
    message["Message-ID"] = f"<{uuid.uuid4()}@visiopass.example>"
    message["Content-Language"] = "fr"
    message.attach(MIMEText(rendered.text, "plain", UTF8_QP))
    message.attach(MIMEText(rendered.html, "html", UTF8_QP))
    return message.as_bytes(policy=BARE_WIRE)


def ms_per_mail(build: Callable[[Rendered, int], bytes], rendered: Rendered, mails: int) -> float:
    for number in range(min(50, mails)):
        build(rendered, number)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for number in range(mails):
            build(rendered, number)
        runs.append((time.perf_counter() - started) * 1000 / mails)
    return statistics.median(runs)


def main(mails: int) -> None:
    rendered = render("verification_link", "fr", VARIABLES)
    size = len(notifier_mail(rendered, 0))
    bare = ms_per_mail(bare_mail, rendered, mails)
    notifier = ms_per_mail(notifier_mail, rendered, mails)
    print(f"mails per run: {mails}, median of 5 runs; {size} bytes on the wire")
    print(f"bare email.mime (compat32) build + bytes : {bare:6.3f} ms/mail")
    print(
        f"notifier compose + to_wire               : {notifier:6.3f} ms/mail  ({notifier / bare:4.1f}x the bare build)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=2000)
    arguments = parser.parse_args()
    main(arguments.mails)
