"""notifier.sms without infrastructure: numbers, the GSM 03.38 length rules, and the HTTP gateway adapter
against a real HTTP server on 127.0.0.1 (the error classification depends on real sockets: refused, cut, slow)."""

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifier.service import TransientDeliveryError, Undeliverable
from notifier.settings import NotifierSettings
from notifier.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    HttpSmsGateway,
    InvalidPhoneNumber,
    SmsNotSentYet,
    encoding,
    fit,
    normalise,
    prepare,
    retry_after_seconds,
    segments,
)

# -- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entered",
    ["06 12 34 56 78", "0612345678", "06.12.34.56.78", "+33 6 12 34 56 78", "+33612345678", "0033 6 12 34 56 78",
     "+33 (0)6 12 34 56 78"],
)  # fmt: skip
def test_french_mobile_numbers_are_normalised_to_e164(entered: str) -> None:
    assert normalise(entered) == "+33612345678"


def test_landlines_overseas_departments_and_other_countries() -> None:
    assert normalise("01 23 45 67 89") == "+33123456789"  # fixed line
    assert normalise("0692 12 34 56", "RE") == "+262692123456"  # La Réunion
    assert normalise("+262 692 12 34 56") == "+262692123456"
    assert normalise("+32 470 12 34 56") == "+32470123456"  # Belgian mobile, entered with its country code
    assert normalise("(415) 555-2671", default_region="US") == "+14155552671"


@pytest.mark.parametrize(
    ("entered", "code", "says"),
    [
        ("bonjour", "phone_not_a_number", "is not a phone number"),
        ("", "phone_not_a_number", "is not a phone number"),
        ("+999 123 456", "phone_unknown_country", "no known country code"),
        ("06 12 34 56", "phone_too_short", "too short"),
        ("06 12 34 56 78 90", "phone_too_long", "too long"),
        ("07 12 34 56 78", "phone_invalid", "not an existing phone number in France"),
        ("+44 7700 900123", "phone_invalid", "in United Kingdom"),  # Ofcom's drama range
        ("08 00 12 34 56", "phone_wrong_type", "toll-free"),
        ("08 99 12 34 56", "phone_wrong_type", "premium-rate"),
    ],
)
def test_invalid_numbers_are_refused_with_a_reason_for_the_form(entered: str, code: str, says: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as refused:
        normalise(entered)
    assert refused.value.code == code
    assert says in str(refused.value)
    assert refused.value.number == entered
    assert isinstance(refused.value, ValueError)


# -- length rules ----------------------------------------------------------------------------------------


def test_the_gsm_table_is_gsm_03_38() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes, the escape (0x1B) not being a character
    assert len(GSM7_EXTENSION) == 10
    # French letters in the table, and those that are not (they make the message UCS-2)
    assert set("éèàùìòÉÇ") <= GSM7_BASIC
    assert not set("êâîôûëïüçœÈÀ") & (GSM7_BASIC - {"ü"})
    assert "ü" in GSM7_BASIC and "ç" not in GSM7_BASIC  # 0x09 is the capital Ç in 3GPP TS 23.038
    assert encoding("Réunion à 9 h, café offert") == "GSM-7"
    assert encoding("Fenêtre") == "UCS-2"
    assert encoding("Leçon") == "UCS-2"


def test_single_and_concatenated_gsm7() -> None:
    assert segments("") == 1
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("a" * 306) == 2  # 2 x 153
    assert segments("a" * 307) == 3
    assert segments("é" * 160) == 1  # é is one septet


def test_extension_characters_count_double_and_never_straddle_two_parts() -> None:
    assert segments("€" * 80) == 1  # 160 septets
    assert segments("€" * 80 + "a") == 2
    assert segments("a" * 159 + "[") == 2  # 161 septets
    # 152 septets then an escape pair: it cannot be split, so it opens part 2 (152 + 154 > 2 x 153 would be 3)
    assert segments("a" * 152 + "{" + "a" * 151) == 2
    assert segments("a" * 152 + "{" + "a" * 152) == 3


def test_ucs2_when_one_character_is_not_in_the_table() -> None:
    assert segments("ê" * 70) == 1
    assert segments("ê" * 71) == 2
    assert segments("ê" * 134) == 2  # 2 x 67
    assert segments("ê" * 135) == 3
    assert segments("a" * 69 + "ê") == 1
    assert segments("a" * 70 + "ê") == 2  # one ê turns 71 characters into two SMS, not one
    assert segments("😀" * 35) == 1  # beyond the BMP: two UTF-16 units each
    assert segments("😀" * 36) == 2
    assert segments("a" * 68 + "😀") == 1  # 70 units
    assert segments("a" * 69 + "😀") == 2
    # 134 units = 2 x 67, but the pair cannot be split after unit 66: it opens part 2, which then overflows
    assert segments("a" * 66 + "😀" + "a" * 66) == 3


def test_typographic_characters_are_replaced_only_when_that_makes_the_text_gsm7() -> None:
    text = "L\u2019inscription à «\u00a0Pronote\u00a0» est confirmée \u2013 rendez-vous à 9\u202fh\u2026"
    assert encoding(text) == "GSM-7"
    assert prepare(text) == 'L\'inscription à " Pronote " est confirmée - rendez-vous à 9 h...'
    assert segments(text) == 1
    # with a character that has no equivalent, the text goes as written, in UCS-2
    kept = "L\u2019inscription à la leçon"
    assert prepare(kept) == kept and encoding(kept) == "UCS-2"
    # a decomposed é (e + combining accent) is the GSM-7 é
    assert prepare("e\u0301cole") == "école" and encoding("e\u0301cole") == "GSM-7"


def test_fit_keeps_what_fits_and_shortens_at_a_word_boundary() -> None:
    short = "Votre session commence dans une heure."
    assert fit(short) == short
    words = " ".join(f"mot{i}" for i in range(200))  # 1,289 characters, GSM-7
    shortened = fit(words)
    assert segments(shortened) == 3 and shortened.endswith("...")
    assert len(shortened) > 3 * 153 - 10  # uses the budget
    head = shortened.removesuffix("...")
    assert words.startswith(head + " ")  # cut between two words
    one = fit(words, 1)
    assert len(one) <= 160 and one.endswith("...") and words.startswith(one.removesuffix("...") + " ")


def test_fit_in_ucs2_uses_the_single_ellipsis_character_and_keeps_a_link_whole() -> None:
    link = "https://visiopass.example/join/6fQk2yR0pLw9xZ3b"
    text = f"Fenêtre ouverte : rejoignez la session « Pronote » dès maintenant avec ce lien {link} merci"
    shortened = fit(text, 1)
    assert segments(shortened) == 1 and encoding(shortened) == "UCS-2"
    assert shortened.endswith("…") and len(shortened) <= 70
    assert link not in shortened and "https" not in shortened  # dropped whole, never cut
    assert shortened == "Fenêtre ouverte : rejoignez la session « Pronote » dès maintenant…"


def test_fit_returns_what_it_counted_when_the_cut_removes_the_last_ucs2_character() -> None:
    text = "L\u2019atelier commence " + "mot " * 60 + "Leçon"  # ç keeps all of it UCS-2, the curly apostrophe too
    assert encoding(text) == "UCS-2" and prepare(text) == text
    shortened = fit(text, 1)  # the ç is cut off: GSM-7 again (160, not 70), its apostrophe replaced
    assert shortened.startswith("L'atelier commence mot mot") and shortened.endswith("mot...")
    assert encoding(shortened) == "GSM-7" and prepare(shortened) == shortened
    assert 150 < len(shortened) <= 160


def test_fit_cuts_inside_a_word_only_when_it_is_the_only_one() -> None:
    assert fit("x" * 400, 1) == "x" * 157 + "..."
    with pytest.raises(ValueError):
        fit("hello", 0)


# -- the adapter against a real HTTP server ----------------------------------------------------------------


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"id": "gw-1", "status": "accepted"}'
    delay: float = 0.0  # seconds before answering
    hang_up: bool = False  # close the connection without an answer


class Gateway:
    """A scripted SMS gateway: answers each POST with the next `Reply` and keeps what it received."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[tuple[dict[str, str], dict[str, object]]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.received.append((dict(self.headers.items()), json.loads(body)))
                reply = gateway.replies.pop(0) if gateway.replies else Reply()
                time.sleep(reply.delay)
                if reply.hang_up:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/sms"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    thread = threading.Thread(target=gw.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield gw
    gw.server.shutdown()
    gw.server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_request_is_the_documented_json_with_a_bearer_token(gateway: Gateway) -> None:
    async with HttpSmsGateway(gateway.url, "Visiopass", token="s3cret-token") as sms:
        await sms.send("+33612345678", "L\u2019inscription est confirmée.", "delivery-1")
    [(headers, body)] = gateway.received
    assert body == {"to": "+33612345678", "from": "Visiopass", "text": "L'inscription est confirmée.",
                    "reference": "delivery-1"}  # fmt: skip
    assert headers["Authorization"] == "Bearer s3cret-token"
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == "delivery-1"


async def test_basic_auth_and_the_length_budget(gateway: Gateway) -> None:
    words = " ".join(["session"] * 200)
    async with HttpSmsGateway(gateway.url, "+33700000000", username="visio", password="pä ss", max_segments=2) as sms:
        await sms.send("+33612345678", words, "delivery-2")
    [(headers, body)] = gateway.received
    assert headers["Authorization"] == "Basic " + base64.b64encode("visio:pä ss".encode()).decode()
    assert body["from"] == "+33700000000"
    assert segments(str(body["text"])) == 2 and str(body["text"]).endswith("session...")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_a_4xx_is_permanent(gateway: Gateway, status: int) -> None:
    gateway.replies.append(Reply(status, body=b'{"error": "invalid destination"}'))
    async with HttpSmsGateway(gateway.url, "Visiopass", token="s3cret-token") as sms:
        with pytest.raises(Undeliverable) as failed:
            await sms.send("+33612345678", "Bonjour", "delivery-3")
    assert failed.value.code == status and "invalid destination" in str(failed.value)
    assert "s3cret-token" not in str(failed.value)


async def test_429_with_retry_after_in_seconds_is_transient_and_carries_it(gateway: Gateway) -> None:
    gateway.replies.append(Reply(429, {"Retry-After": "30"}, b'{"error": "slow down"}'))
    async with HttpSmsGateway(gateway.url, "Visiopass") as sms:
        with pytest.raises(SmsNotSentYet) as later:
            await sms.send("+33612345678", "Bonjour", "delivery-4")
    assert later.value.retry_after == 30 and later.value.code == 429
    assert isinstance(later.value, TransientDeliveryError) and not isinstance(later.value, Undeliverable)
    assert "429" in str(later.value)


async def test_5xx_is_transient_with_retry_after_as_a_date_or_without_it(gateway: Gateway) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    gateway.replies += [Reply(503, {"Retry-After": format_datetime(when, usegmt=True)}), Reply(500), Reply(502)]
    async with HttpSmsGateway(gateway.url, "Visiopass") as sms:
        with pytest.raises(SmsNotSentYet) as unavailable:
            await sms.send("+33612345678", "Bonjour", "delivery-5")
        assert unavailable.value.retry_after is not None and 100 < unavailable.value.retry_after <= 120
        for _ in range(2):
            with pytest.raises(SmsNotSentYet) as error:
                await sms.send("+33612345678", "Bonjour", "delivery-5")
            assert error.value.retry_after is None
        await sms.send("+33612345678", "Bonjour", "delivery-5")  # then accepted
    assert len(gateway.received) == 4


async def test_408_and_a_redirect_are_tried_again(gateway: Gateway) -> None:
    gateway.replies += [Reply(408), Reply(301, {"Location": "http://elsewhere.invalid/"})]
    async with HttpSmsGateway(gateway.url, "Visiopass") as sms:
        for _ in range(2):
            with pytest.raises(SmsNotSentYet):
                await sms.send("+33612345678", "Bonjour", "delivery-6")


async def test_a_slow_gateway_is_a_timeout_to_try_again(gateway: Gateway) -> None:
    gateway.replies.append(Reply(delay=1.0))
    async with HttpSmsGateway(gateway.url, "Visiopass", timeout=0.2) as sms:
        with pytest.raises(SmsNotSentYet, match=r"no answer within 0\.2 s"):
            await sms.send("+33612345678", "Bonjour", "delivery-7")


async def test_a_connection_cut_without_an_answer_is_transient(gateway: Gateway) -> None:
    gateway.replies.append(Reply(hang_up=True))
    async with HttpSmsGateway(gateway.url, "Visiopass") as sms:
        with pytest.raises(SmsNotSentYet, match="unreachable"):
            await sms.send("+33612345678", "Bonjour", "delivery-8")


async def test_a_refused_connection_is_transient() -> None:
    async with HttpSmsGateway(f"http://127.0.0.1:{_closed_port()}/sms", "Visiopass") as sms:
        with pytest.raises(SmsNotSentYet, match="ConnectError"):
            await sms.send("+33612345678", "Bonjour", "delivery-9")


async def test_what_cannot_be_sent_fails_before_any_request(gateway: Gateway) -> None:
    async with HttpSmsGateway(gateway.url, "Visiopass") as sms:
        for number in ("06 12 34 56 78", "0612345678", "+0612345678", "+33 6 12 34 56 78"):
            with pytest.raises(Undeliverable, match=r"not an E\.164"):
                await sms.send(number, "Bonjour", "delivery-10")
        with pytest.raises(Undeliverable, match="no text"):
            await sms.send("+33612345678", "  ", "delivery-10")
    assert gateway.received == []


def test_configuration_mistakes_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="sender"):
        HttpSmsGateway("http://127.0.0.1/sms", "Visiopass Formation")  # 19 characters
    with pytest.raises(ValueError, match="not both"):
        HttpSmsGateway("http://127.0.0.1/sms", "Visiopass", token="t", username="u", password="p")
    with pytest.raises(ValueError, match="segments"):
        HttpSmsGateway("http://127.0.0.1/sms", "Visiopass", max_segments=0)


def test_settings_build_the_adapter() -> None:
    settings = NotifierSettings(sms_gateway_url="https://sms.example/v1/messages", sms_gateway_token="t0k",
                                sms_max_segments=2, sms_timeout_seconds=3)  # fmt: skip
    sms = HttpSmsGateway.from_settings(settings)
    assert (sms.url, sms.sender, sms.max_segments, sms.timeout) == (
        "https://sms.example/v1/messages",
        "Visiopass",
        2,
        3,
    )
    assert NotifierSettings().sms_gateway_url == "http://127.0.0.1:8025/sms"  # the local catcher of `make up`
    assert "t0k" not in repr(settings)


def test_retry_after_values() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds("0") == 0
    assert retry_after_seconds("soon") is None
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    assert retry_after_seconds(past) == 0


# -- through the delivery loop ---------------------------------------------------------------------------


@pytest.mark.infra
async def test_an_sms_delivery_goes_through_the_loop_once_and_a_refused_number_fails_at_once(
    gateway: Gateway, fresh_database: str
) -> None:
    from sqlalchemy import select

    from notifier import service
    from notifier.delivery import Policy, claim, deliver
    from notifier.models import deliveries
    from servicekit.db import Database
    from servicekit.migrations import upgrade
    from servicekit.outbox import Outbox

    db = Database(fresh_database, pool_size=4)
    await upgrade(db, "notifier")
    variables = {"tokens": "3", "expires_at": "3 mars 2027", "link": "https://visiopass.test/planning"}
    async with db.transaction() as session:
        for number in ("+33612345678", "06 12"):  # the second was never normalised: refused before any request
            await service.plan(
                session,
                event_id=uuid.uuid4(),
                template="tokens_expiring",
                language="fr",
                recipient=number,
                variables=variables,
                channel="sms",
            )
    sms = HttpSmsGateway(gateway.url, "Visiopass")
    policy = Policy(sender="Visiopass <no-reply@visiopass.test>")
    try:
        claimed = await claim(db, policy, datetime.now(UTC))
        assert {row.channel for row in claimed} == {"sms"}
        await deliver(db, Outbox("notifier"), None, claimed, policy, sms=sms)  # type: ignore[arg-type]
        assert await claim(db, policy, datetime.now(UTC) + timedelta(hours=2)) == []  # nothing left to try
        async with db.transaction() as session:
            outcome = {row.recipient: row for row in await session.execute(select(deliveries))}
    finally:
        await sms.aclose()
        await db.dispose()
    ((_, first),) = gateway.received
    assert first["text"] == (
        "Visiopass : 3 jetons de votre établissement expirent le 3 mars 2027. "
        "Inscrivez-vous à une Webvisio : https://visiopass.test/planning"
    )
    assert first["reference"] == str(outcome["+33612345678"].id)  # the provider's idempotency key
    assert (outcome["+33612345678"].status, outcome["+33612345678"].context) == ("sent", None)
    refused = outcome["06 12"]
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert "E.164" in refused.last_error


def test_a_message_without_an_sms_text_cannot_be_planned_as_one() -> None:
    from notifier.service import render_sms

    with pytest.raises(ValueError, match="no SMS text"):
        render_sms("password_reset", "fr", {})
