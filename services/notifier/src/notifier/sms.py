"""SMS: phone numbers, the length rules, and the port to a provider with its one adapter, an HTTP gateway.

**Guarantee.** `SmsSender.send` either hands the message to the provider, or raises: `Undeliverable` when no
later attempt can succeed (the gateway refused the request with a 4xx other than 408/429, the number is not
E.164), `SmsNotSentYet` when a later attempt may (429, 5xx, timeout, connection refused or cut), carrying the
gateway's Retry-After in seconds when it gave one. A timeout does not prove the gateway did not take the
message: the delivery's id travels as `reference` (and `Idempotency-Key`) so that a gateway that deduplicates
sends it once; one that does not may send it twice, which is the price of never losing one.

**The gateway's request** (the local mail catcher, deploy/local/mailcatcher.py, accepts the same)::

    POST <NOTIFIER_SMS_GATEWAY_URL>
    Content-Type: application/json
    Authorization: Bearer <token>  |  Basic base64(<username>:<password>)   (neither when none is set)
    Idempotency-Key: <reference>

    {"to": "+33612345678", "from": "Visiopass", "text": "…", "reference": "<delivery id>"}

``to`` is E.164; ``from`` an alphanumeric sender id (1 to 11 characters, a letter among them) or an E.164
number; ``text`` already within the length budget (`fit`): the gateway splits it into concatenated parts.
Any 2xx means accepted; the body of the answer is not read.

**Length rules** (3GPP TS 23.038 / GSM 03.38). A text whose every character is in the GSM 7-bit default
alphabet (`GSM7_BASIC`) or its extension table (`GSM7_EXTENSION`, each counting two: escape + character) goes
as GSM-7: 160 septets in a single SMS, 153 per part once concatenated (the rest carries the part header).
Any other character sends the whole text as UCS-2: 70 UTF-16 units alone, 67 per part; a character beyond the
BMP (an emoji) counts two. An escape pair or a surrogate pair is never split across two parts.

Note that the table is narrower than French: it has é è à ù ì ò É Ç, but not ê â î ô û ë ï ç œ — one of those
sends the message as UCS-2 (70 characters instead of 160). Characters are replaced only where a typographic
equivalent exists in GSM-7 (`GSM7_REPLACEMENTS`: curly quotes and guillemets, dashes, the ellipsis, the
no-break and thin spaces, the tab), and only when that makes the whole text GSM-7; when some other character
keeps it UCS-2, the text is sent as written. No letter is ever replaced (ç stays ç, never c or Ç).
"""

import logging
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol, Self

import httpx
import phonenumbers
from babel import Locale
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

from notifier.service import TransientDeliveryError, Undeliverable
from notifier.settings import NotifierSettings

log = logging.getLogger(__name__)

# -- numbers ---------------------------------------------------------------------------------------------

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
ACCEPTED_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_TYPE_NAMES = {
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "an internet (VoIP) number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal redirection number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a company switchboard number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
}


class InvalidPhoneNumber(ValueError):
    """A number a person entered that cannot receive our messages; `str()` says why, for the form it came from.
    `code` is stable (for translations): phone_not_a_number, phone_unknown_country, phone_too_short,
    phone_too_long, phone_invalid, phone_wrong_type."""

    def __init__(self, code: str, number: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.number = number


def normalise(number: str, default_region: str = "FR") -> str:
    """`number` as E.164 ("06 12 34 56 78" -> "+33612345678"); a number without its country code is read as
    one of `default_region`. Only a valid mobile or fixed-line number passes; else `InvalidPhoneNumber`."""
    shown = " ".join(number.split())[:40]
    try:
        parsed = phonenumbers.parse(number, default_region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidPhoneNumber(
                "phone_unknown_country",
                number,
                f"“{shown}” has no known country code: write it as +<country code> <number>, e.g. +33 6 12 34 56 78",
            ) from exc
        raise InvalidPhoneNumber("phone_not_a_number", number, f"“{shown}” is not a phone number") from exc
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible in (ValidationResult.TOO_SHORT, ValidationResult.INVALID_LENGTH):
        raise InvalidPhoneNumber("phone_too_short", number, f"“{shown}” is too short for a phone number")
    if possible == ValidationResult.TOO_LONG:
        raise InvalidPhoneNumber("phone_too_long", number, f"“{shown}” is too long for a phone number")
    if not phonenumbers.is_valid_number(parsed):
        region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        where = f" in {_country(region)}" if region.isalpha() and region != "ZZ" else ""
        raise InvalidPhoneNumber("phone_invalid", number, f"“{shown}” is not an existing phone number{where}")
    kind = phonenumbers.number_type(parsed)
    if kind not in ACCEPTED_TYPES:
        what = _TYPE_NAMES.get(kind, "not a personal number")
        raise InvalidPhoneNumber("phone_wrong_type", number, f"“{shown}” is {what}: give a mobile or landline number")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def _country(region: str) -> str:
    return str(Locale("en").territories.get(region, region))


# -- length rules ------------------------------------------------------------------------------------------

# GSM 03.38 default alphabet, in code order 0x00-0x7F (0x1B, the escape to the extension table, left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as escape + character, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
# The only replacements made, and only when they make the whole text GSM-7.
GSM7_REPLACEMENTS = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark (the French apostrophe)
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # « guillemet
    "\u00bb": '"',  # » guillemet
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # ellipsis
    "\u00a0": " ",  # no-break space (French typography, amounts)
    "\u202f": " ",  # narrow no-break space (before ; : ! ? and in amounts formatted by Babel)
    "\u2009": " ",  # thin space
    "\u2007": " ",  # figure space
    "\t": " ",
}
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
DEFAULT_MAX_SEGMENTS = 3

Encoding = Literal["GSM-7", "UCS-2"]


def _is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def prepare(text: str) -> str:
    """The text as it is sent: NFC-composed (so a decomposed "é" is the GSM-7 "é"), with `GSM7_REPLACEMENTS`
    applied if that makes it GSM-7, else unchanged."""
    text = unicodedata.normalize("NFC", text)
    if _is_gsm7(text):
        return text
    replaced = "".join(GSM7_REPLACEMENTS.get(ch, ch) for ch in text)
    return replaced if _is_gsm7(replaced) else text


def encoding(text: str) -> Encoding:
    """The encoding `text` is sent in (after `prepare`)."""
    return "GSM-7" if _is_gsm7(prepare(text)) else "UCS-2"


def _costs(text: str) -> tuple[list[int], int, int]:
    """Per character of the prepared `text`: its size in the encoding's units; and the single / part capacity."""
    if _is_gsm7(text):
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text], GSM7_SINGLE, GSM7_PART
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text], UCS2_SINGLE, UCS2_PART


def _pack(costs: Iterable[int], capacity: int) -> int:
    parts, used = 1, 0
    for cost in costs:
        if used + cost > capacity:  # an escape or surrogate pair never straddles two parts
            parts, used = parts + 1, 0
        used += cost
    return parts


def segments(text: str) -> int:
    """How many SMS `text` costs once prepared (an empty text still takes one)."""
    costs, single, part = _costs(prepare(text))
    return 1 if sum(costs) <= single else _pack(costs, part)


_TRAILING = " \n\r\t,;:.-"


def fit(text: str, max_segments: int = DEFAULT_MAX_SEGMENTS) -> str:
    """The prepared `text` if it fits in `max_segments` SMS; else its longest beginning that fits with an
    ellipsis after it, cut at a word boundary ("..." in GSM-7, "…" in UCS-2). A single word longer than the
    whole budget is cut inside. Never cutting inside a word also keeps a link whole or drops it whole."""
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, not {max_segments}")
    text = prepare(text)
    if segments(text) <= max_segments:
        return text

    def shortened(length: int) -> str:  # prepared again: the cut may have removed what kept the text UCS-2
        return prepare(text[:length].rstrip(_TRAILING) + "\u2026")

    low, high = 0, len(text)  # shortened(low) fits (an ellipsis alone does), shortened(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if segments(shortened(middle)) <= max_segments else (low, middle)
    cut = low
    if cut < len(text) and not text[cut].isspace():  # inside a word: back to its start, if it has one
        boundary = next((i for i in range(cut - 1, 0, -1) if text[i].isspace()), 0)
        cut = boundary if text[:boundary].strip() else cut
    return shortened(cut)


# -- the port and its adapter ------------------------------------------------------------------------------


class SmsSender(Protocol):
    async def send(self, to_e164: str, text: str, reference: str) -> None:
        """Hand the SMS to the provider, or raise: `Undeliverable` when no later attempt can succeed,
        `TransientDeliveryError` (`SmsNotSentYet`) or anything else to try again. `reference` identifies the
        delivery (the provider's idempotency key)."""


class SmsNotSentYet(TransientDeliveryError):
    """The gateway could not take the message now (busy, down, unreachable, too slow): try again, not before
    `retry_after` seconds when the gateway said so (Retry-After). `code` is the HTTP status, if one came."""

    def __init__(self, reason: str, retry_after: float | None = None, *, code: int | None = None) -> None:
        super().__init__(reason if retry_after is None else f"{reason} (retry after {retry_after:g} s)", code=code)
        self.retry_after = retry_after


_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 .\-]{1,11}$")
_TRANSIENT = {408, 429}


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (delay in seconds, or an HTTP date) as seconds from now; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HttpSmsGateway:
    """`SmsSender` over an HTTP gateway (the request is in the module's docstring). One connection pool per
    instance: make one per process and `aclose()` it at shutdown."""

    def __init__(
        self,
        url: str,
        sender: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
    ) -> None:
        if not (E164.match(sender) or _SENDER.match(sender)):
            raise ValueError(
                f"SMS sender {sender!r}: 1 to 11 letters, digits or spaces (a letter among them), or E.164"
            )
        if token and username:
            raise ValueError("SMS gateway: give a bearer token or a username and password, not both")
        if max_segments < 1:
            raise ValueError(f"SMS max segments must be at least 1, not {max_segments}")
        self.url = url
        self.sender = sender
        self.timeout = timeout
        self.max_segments = max_segments
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._client = httpx.AsyncClient(headers=headers, auth=auth, timeout=timeout, follow_redirects=False)

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> Self:
        s = settings
        return cls(
            s.sms_gateway_url,
            s.sms_sender,
            token=s.sms_gateway_token.get_secret_value() if s.sms_gateway_token else None,
            username=s.sms_gateway_username,
            password=s.sms_gateway_password.get_secret_value() if s.sms_gateway_password else None,
            timeout=s.sms_timeout_seconds,
            max_segments=s.sms_max_segments,
        )

    async def send(self, to_e164: str, text: str, reference: str) -> None:
        """Sends `fit(text, max_segments)`. Raises `Undeliverable` for a number that is not E.164, an empty text
        or a 4xx answer other than 408/429; `SmsNotSentYet` for 408, 429, 5xx, 1xx/3xx (an answer no gateway
        should give: a misconfigured URL, tried again until the operator fixes it or the attempts run out),
        a timeout or a connection error."""
        if not E164.match(to_e164):
            raise Undeliverable(f"{to_e164!r} is not an E.164 phone number")
        body = fit(text, self.max_segments)
        if not body.strip():
            raise Undeliverable("the SMS has no text")
        payload = {"to": to_e164, "from": self.sender, "text": body, "reference": reference}
        try:
            response = await self._client.post(self.url, json=payload, headers={"Idempotency-Key": reference})
        except httpx.TimeoutException as exc:
            raise SmsNotSentYet(f"SMS gateway: no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise SmsNotSentYet(f"SMS gateway unreachable: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            log.info("SMS %s accepted by the gateway (%d segment(s), %s)", reference, segments(body), encoding(body))
            return
        detail = f"SMS gateway answered {status} {response.reason_phrase}: {' '.join(response.text.split())[:300]}"
        if 400 <= status < 500 and status not in _TRANSIENT:
            raise Undeliverable(detail, code=status)
        raise SmsNotSentYet(detail, retry_after_seconds(response.headers.get("Retry-After")), code=status)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
