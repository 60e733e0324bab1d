"""SMTP catcher for local development and tests.

An aiosmtpd server keeps every message it receives as an .eml file under ``<state_dir>/mail`` (so messages
survive a restart), and an HTTP server on the same asyncio loop shows them:

- ``GET /``                    an HTML page listing the messages, newest first (refreshes every 5 s);
- ``GET /messages/{id}``       one message for a person: text body, links, HTML version;
- ``GET /api/messages``        JSON ``[{id, from, to, subject, date, text, html, links, ...}]``, newest first;
                               ``?to=<address>`` keeps the messages sent to that address;
- ``GET /api/messages/{id}``   one message; ``/api/messages/{id}/raw`` the .eml as received;
- ``DELETE /api/messages``     deletes every message;
- ``GET /healthz``             ``{"status": "ok"}``.

An address whose local part starts with ``bounce`` (``bounce-anything@example.fr``) is refused at RCPT TO with
``550 5.1.1``, as a real server refuses an unknown mailbox: a way to see a failed delivery locally and in tests.

It is also the local SMS gateway: it takes the request the notifier's HTTP SMS adapter sends (notifier.sms)
and keeps each SMS as a .json file under ``<state_dir>/sms`` (every request, a duplicate too, so that a test
sees a message sent twice):

- ``POST /sms``                ``{"to": "+33612345678", "from": "Visiopass", "text": "...", "reference": "..."}``
                               -> 202 ``{"id", "status": "accepted"}``; 400 for a body that is not that (``to``
                               E.164 and ``text`` non-empty required; ``from`` and ``reference`` strings or absent);
                               422 for a number of the range ARCEP reserves for fiction, ``+33 6 39 98 xx xx``
                               (a subscriber that does not exist: a way to see a failed SMS locally and in tests).
                               Any ``Authorization`` is accepted; its scheme alone is kept (``auth``: bearer|basic);
- ``GET /sms``                 an HTML page listing the SMS, newest first (refreshes every 5 s);
- ``GET /api/sms``             JSON ``[{id, to, from, text, reference, received, auth, characters, links}]``,
                               newest first; ``?to=+33612345678`` keeps those sent to that number (spaces, dots
                               and dashes ignored; a ``+`` turned into a space by form decoding is put back);
- ``GET /api/sms/{id}``        one SMS; ``DELETE /api/sms`` deletes every SMS.

Run: ``python deploy/local/mailcatcher.py --state-dir .run/dev --smtp-port 1025 --http-port 8025``
(deploy/local/devstack.py starts it for you). ``to`` holds the SMTP envelope's recipients (Bcc included),
or the To/Cc headers' addresses for an .eml dropped in the folder by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import html
import json
import logging
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar import Litestar, MediaType, Request, Response, delete, get, post
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler

_ID_RE = re.compile(r"^[0-9]{20}-[0-9a-f]{8}$")
_URL_RE = re.compile(r"""https?://[^\s<>"')\]]+""")
_ENVELOPE_FROM = "X-Mailcatcher-Mail-From"
_ENVELOPE_TO = "X-Mailcatcher-Rcpt-To"
_RECEIVED = "X-Mailcatcher-Received"
_MTIME_TICK_NS = 100_000_000  # well above the coarse clock's tick (a few ms) that file times are taken from


class _TextExtractor(HTMLParser):
    """Text and links of an HTML body (used when a message has no text/plain part)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hrefs: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)
        if tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _part_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError):  # unknown charset or broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def parse_message(message_id: str, raw: bytes, received: datetime) -> dict[str, Any]:
    """The API's view of one stored .eml (MIME decoded: multiparts, transfer encodings, RFC 2047 headers)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    header_to = [addr for _, addr in getaddresses([str(v) for v in msg.get_all("To", []) + msg.get_all("Cc", [])])]
    envelope_to = [a.strip() for a in str(msg.get(_ENVELOPE_TO, "")).split(",") if a.strip()]
    date = received
    if msg.get("Date"):
        try:
            parsed = msg["Date"].datetime
            date = parsed if parsed is not None else received
        except (AttributeError, TypeError, ValueError):
            pass

    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    text = _part_text(text_part) if text_part is not None else ""
    html_body = _part_text(html_part) if html_part is not None else None
    hrefs: list[str] = []
    if html_body is not None:
        extractor = _TextExtractor()
        extractor.feed(html_body)
        hrefs = [h for h in extractor.hrefs if h.startswith(("http://", "https://"))]
        if not text:
            text = re.sub(r"\n\s*\n+", "\n\n", "".join(extractor.parts)).strip()
    attachments = [
        {
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "size": len(part.get_payload(decode=True) or b""),
        }
        for part in msg.iter_attachments()
    ]
    return {
        "id": message_id,
        "from": str(msg.get("From", "")) or str(msg.get(_ENVELOPE_FROM, "")),
        "to": envelope_to or header_to,
        "header_to": header_to,
        "subject": str(msg.get("Subject", "")),
        "message_id": str(msg.get("Message-ID", "")),
        "date": date.isoformat(),
        "received": received.isoformat(),
        "text": text,
        "html": html_body,
        "links": _unique(_URL_RE.findall(text) + hrefs),
        "attachments": attachments,
    }


class _FileStore:
    """A folder of ``<id><suffix>`` files whose ids sort by arrival time (`_new_id`), each written once.

    Tests poll a store many times a second while it grows to thousands of files: each file is parsed once
    (`_load`) and indexed by the keys it is found by (`_keys`), and the folder is read again only when it
    changed (its mtime moves when a file is added or removed, by this process or by hand), so that a lookup
    costs what it finds. A subclass says how it saves, loads and indexes its own kind."""

    suffix = ""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._cache: dict[str, dict[str, Any]] = {}  # the files never change once written
        self._ids: list[str] = []  # oldest first
        self._known: set[str] = set()  # the same ids, to look one up
        self._index: dict[str, list[str]] = {}  # key -> ids, oldest first
        self._settled_at: int | None = None  # the folder's mtime when last read, once it is settled

    @staticmethod
    def _new_id() -> str:
        return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"

    def _path(self, item_id: str) -> Path:
        return self.directory / f"{item_id}{self.suffix}"

    def _write(self, item_id: str, data: bytes) -> None:
        """Writes the file whole: a reader never sees it half written."""
        tmp = self.directory / f".{item_id}.tmp"
        tmp.write_bytes(data)
        tmp.rename(self._path(item_id))

    def _load(self, item_id: str) -> dict[str, Any] | None:
        """The API's view of one file; None for one that is gone or is not of this kind."""
        raise NotImplementedError

    def _keys(self, record: dict[str, Any]) -> set[str]:
        """The keys `record` is found by."""
        raise NotImplementedError

    def _lookup_key(self, to: str) -> str | None:
        """The key a `list(to)` looks up; None to list everything."""
        raise NotImplementedError

    def _index_keys(self, item_id: str) -> set[str] | None:
        """The keys a file is found by; None for one that is gone or is not of this kind. By default from its
        whole record (kept); a store whose records are costly to make reads less here (MailStore)."""
        record = self._load(item_id)
        if record is None:
            return None
        self._cache[item_id] = record
        return self._keys(record)

    def _record(self, item_id: str) -> dict[str, Any] | None:
        """The API's view of a known file, made on first use and kept."""
        if item_id not in self._cache:
            record = self._load(item_id)
            if record is None:
                return None
            self._cache[item_id] = record
        return self._cache[item_id]

    def _refresh(self) -> None:
        """Index the files that appeared since the last look (the caller holds the lock)."""
        changed_at = self.directory.stat().st_mtime_ns
        if changed_at == self._settled_at:
            return
        on_disk = {p.stem for p in self.directory.glob(f"*{self.suffix}") if _ID_RE.match(p.stem)}
        if not on_disk.issuperset(self._known):  # removed by hand: index again from scratch
            self._reset()
        # The mtime has the kernel clock's coarse resolution: a file added in the same tick as this look leaves
        # it unchanged. Only an mtime old enough that no later tick can share it is trusted to skip the next look.
        self._settled_at = changed_at if time.time_ns() - changed_at > _MTIME_TICK_NS else None
        for item_id in sorted(on_disk - self._known):
            keys = self._index_keys(item_id)
            if keys is None:
                continue
            self._ids.append(item_id)
            self._known.add(item_id)
            for key in keys:
                self._index.setdefault(key, []).append(item_id)
        if self._ids and self._ids != sorted(self._ids):  # a file dropped by hand with an older id
            self._ids.sort()
            for ids in self._index.values():
                ids.sort()

    def get(self, item_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._refresh()
            return self._record(item_id) if item_id in self._known else None

    def list(self, to: str | None = None) -> list[dict[str, Any]]:
        """The records, newest first; only those sent to `to` when given."""
        with self._lock:
            self._refresh()
            key = self._lookup_key(to) if to else None
            ids = self._ids if key is None else self._index.get(key, [])
            records = (self._record(item_id) for item_id in reversed(ids))
            return [record for record in records if record is not None]

    def clear(self) -> int:
        with self._lock:
            count = 0
            for path in self.directory.glob(f"*{self.suffix}"):
                path.unlink(missing_ok=True)
                count += 1
            self._reset()
            return count


class MailStore(_FileStore):
    """Messages as ``<id>.eml`` files, as received with the envelope prepended as headers; indexed by
    recipient (envelope and To/Cc, case ignored)."""

    suffix = ".eml"

    def save(self, mail_from: str | None, rcpt_tos: list[str], content: bytes) -> str:
        message_id = self._new_id()
        eol = b"\r\n" if b"\r\n" in content else b"\n"
        received = format_datetime(datetime.now(UTC))
        trace = [f"{_ENVELOPE_FROM}: <{mail_from or ''}>", f"{_ENVELOPE_TO}: {', '.join(rcpt_tos)}"]
        trace.append(f"{_RECEIVED}: {received}")
        self._write(message_id, eol.join(line.encode("utf-8") for line in trace) + eol + content)
        return message_id

    def _load(self, item_id: str) -> dict[str, Any] | None:
        raw = self.raw(item_id)
        if raw is None:
            return None
        return parse_message(item_id, raw, datetime.fromtimestamp(int(item_id[:20]) / 1e9, UTC))

    def _keys(self, record: dict[str, Any]) -> set[str]:
        return {a.lower() for a in record["to"] + record["header_to"]}

    def _index_keys(self, item_id: str) -> set[str] | None:
        """The recipients, from the headers alone: a message's body is decoded only when it is asked for (after a
        burst of thousands of mails, the next lookup must not wait for all of them to be decoded)."""
        raw = self.raw(item_id)
        if raw is None:
            return None
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        addresses = [str(v) for v in headers.get_all("To", []) + headers.get_all("Cc", [])]
        envelope = [a.strip() for a in str(headers.get(_ENVELOPE_TO, "")).split(",") if a.strip()]
        return {address.lower() for _, address in getaddresses(addresses)} | {a.lower() for a in envelope}

    def _lookup_key(self, to: str) -> str | None:
        return to.strip().lower()

    def ids(self) -> list[str]:
        with self._lock:
            self._refresh()
            return list(reversed(self._ids))

    def raw(self, message_id: str) -> bytes | None:
        if not _ID_RE.match(message_id):
            return None
        try:
            return self._path(message_id).read_bytes()
        except FileNotFoundError:
            return None


_E164_RE = re.compile(r"^\+[1-9][0-9]{1,14}$")
# ARCEP's range for fiction (06 39 98 00 00 to 06 39 98 99 99): no subscriber, the SMS is refused for good.
SMS_NO_SUBSCRIBER = re.compile(r"^\+3363998[0-9]{4}$")


def number_key(number: str) -> str:
    """A number as the SMS are indexed by: "+33 6 12 34 56 78", " 33612345678" (a "+" lost in a query string)
    and "0033612345678" all give "+33612345678"."""
    key = re.sub(r"[\s().\-/]", "", number)
    if key.startswith("00"):
        key = key[2:]
    return key if key.startswith("+") else f"+{key}"


class SmsStore(_FileStore):
    """SMS as ``<id>.json`` files, ids like the mails' (they sort by arrival time); indexed by number
    (`number_key`)."""

    suffix = ".json"

    def save(
        self, to: str, sender: str | None, text: str, reference: str | None, auth: str | None = None
    ) -> dict[str, Any]:
        sms_id = self._new_id()
        record = {
            "id": sms_id,
            "to": to,
            "from": sender or "",
            "text": text,
            "reference": reference,
            "received": datetime.now(UTC).isoformat(),
            "auth": auth,
            "characters": len(text),
            "links": _unique(_URL_RE.findall(text)),
        }
        self._write(sms_id, (json.dumps(record, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        return record

    def _load(self, item_id: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self._path(item_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("to"), str):
            return None
        return {**record, "id": item_id}

    def _keys(self, record: dict[str, Any]) -> set[str]:
        return {number_key(record["to"])}

    def _lookup_key(self, to: str) -> str | None:
        return number_key(to) if to.strip() else None


def _sms_problem(status: int, title: str, detail: str) -> Response[dict[str, Any]]:
    return Response(
        content={"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def _sms_request(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """The POST /sms body checked: (fields, "") or (None, what is wrong)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, "the body is not JSON"
    if not isinstance(data, dict):
        return None, 'the body is not a JSON object {"to", "from", "text", "reference"}'
    to, text = data.get("to"), data.get("text")
    if not isinstance(to, str) or not _E164_RE.match(to):
        return None, f"to: {to!r} is not an E.164 number (+<country code><number>, digits only)"
    if not isinstance(text, str) or not text:
        return None, "text: a non-empty string is required"
    for name in ("from", "reference"):
        if data.get(name) is not None and not isinstance(data[name], str):
            return None, f"{name}: a string is expected"
    return data, ""


BOUNCING = re.compile(r"^bounce[^@]*@", re.IGNORECASE)


class _Handler:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if BOUNCING.match(address):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message_id = await asyncio.to_thread(self.store.save, envelope.mail_from, envelope.rcpt_tos, content)
        print(f"mail {message_id} from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 Message accepted for delivery"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
tr:hover td{background:#f5f7fb}a{color:#1a56db}pre{white-space:pre-wrap;background:#f7f7f7;padding:1rem}
iframe{width:100%;height:32rem;border:1px solid #ddd}.muted{color:#777}button{cursor:pointer}
nav{margin-bottom:1rem}td.sms{white-space:pre-wrap;max-width:40rem}
"""
_NAV = '<nav><a href="/">Mail</a> · <a href="/sms">SMS</a></nav>'


def _page(title: str, body: str, refresh: bool = False) -> Response[str]:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return Response(content=document, media_type=MediaType.HTML)


def _list_page(title: str, api: str, columns: list[str], rows: list[str], count: str, none: str) -> Response[str]:
    """A page listing a store's records (`rows`, newest first), with a button that deletes them all through `api`."""
    header = "".join(f"<th>{column}</th>" for column in columns)
    table = f"<table><tr>{header}</tr>{''.join(rows)}</table>" if rows else f'<p class="muted">{none}</p>'
    clear = f"<button onclick=\"fetch('{api}',{{method:'DELETE'}}).then(()=>location.reload())\">Delete all</button>"
    body = f"{_NAV}<h1>{title}</h1><p>{count}, newest first. {clear}</p>{table}"
    return _page(title, body, refresh=True)


def _linkify(text: str) -> str:
    out, last = [], 0
    for match in _URL_RE.finditer(text):
        url = match.group(0)
        out.append(html.escape(text[last : match.start()]))
        out.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


_MAIL_COLUMNS = ["Subject", "From", "To", "Date"]
_SMS_COLUMNS = ["To", "From", "Text", "Received"]


def _mail_row(m: dict[str, Any]) -> str:
    subject = html.escape(m["subject"] or "(no subject)")
    return (
        f'<tr><td><a href="/messages/{m["id"]}">{subject}</a></td><td>{html.escape(m["from"])}</td>'
        f'<td>{html.escape(", ".join(m["to"]))}</td><td class="muted">{html.escape(m["date"])}</td></tr>'
    )


def _sms_row(m: dict[str, Any]) -> str:
    received = f"{html.escape(m['received'])}<br>{m['characters']} character(s)<br>"
    reference = f"ref {html.escape(m['reference'] or '-')}"
    return (
        f"<tr><td>{html.escape(m['to'])}</td><td>{html.escape(m['from'])}</td>"
        f'<td class="sms">{_linkify(m["text"])}</td><td class="muted">{received}{reference}</td></tr>'
    )


def _store_api(path: str, store: _FileStore, noun: str) -> list[HTTPRouteHandler]:
    """``GET <path>`` (newest first, ``?to=`` to filter), ``GET <path>/{id}`` and ``DELETE <path>`` for `store`."""

    @get(path, sync_to_thread=True)
    def list_records(to: str | None = None) -> list[dict[str, Any]]:
        return store.list(to)

    @get(f"{path}/{{item_id:str}}", sync_to_thread=True)
    def get_record(item_id: str) -> dict[str, Any]:
        record = store.get(item_id)
        if record is None:
            raise NotFoundException(f"no {noun} {item_id}")
        return record

    @delete(path, status_code=200, sync_to_thread=True)
    def clear_records() -> dict[str, int]:
        return {"deleted": store.clear()}

    return [list_records, get_record, clear_records]


def create_app(store: MailStore, sms: SmsStore | None = None) -> Litestar:
    """The HTTP API and pages; the SMS are kept in `sms`, by default beside the mails' folder (``../sms``)."""
    sms_store = sms if sms is not None else SmsStore(store.directory.parent / "sms")

    @get("/", sync_to_thread=True)
    def index() -> Response[str]:
        rows = [_mail_row(m) for m in store.list()]
        return _list_page(
            "Mail catcher", "/api/messages", _MAIL_COLUMNS, rows, f"{len(rows)} message(s)", "No message yet."
        )

    @get("/messages/{message_id:str}", sync_to_thread=True)
    def show(message_id: str) -> Response[str]:
        m = store.get(message_id)
        if m is None:
            raise NotFoundException(f"no message {message_id}")
        links = "".join(f'<li><a href="{html.escape(u)}">{html.escape(u)}</a></li>' for u in m["links"])
        html_view = (
            f'<h2>HTML version</h2><iframe sandbox srcdoc="{html.escape(m["html"], quote=True)}"></iframe>'
            if m["html"]
            else ""
        )
        body = (
            f'<p><a href="/">&larr; all messages</a> · <a href="/api/messages/{m["id"]}/raw">raw .eml</a></p>'
            f"<h1>{html.escape(m['subject'] or '(no subject)')}</h1>"
            f"<p><b>From</b> {html.escape(m['from'])}<br><b>To</b> {html.escape(', '.join(m['to']))}<br>"
            f"<b>Date</b> {html.escape(m['date'])}</p>"
            f"<h2>Links</h2><ul>{links or '<li class=muted>none</li>'}</ul>"
            f"<h2>Text</h2><pre>{_linkify(m['text'])}</pre>{html_view}"
        )
        return _page(m["subject"] or "(no subject)", body)

    @get("/api/messages/{message_id:str}/raw", sync_to_thread=True)
    def raw_message(message_id: str) -> Response[bytes]:
        raw = store.raw(message_id)
        if raw is None:
            raise NotFoundException(f"no message {message_id}")
        return Response(content=raw, media_type="message/rfc822")

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @post("/sms", status_code=202)
    async def receive_sms(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        data, problem = _sms_request(await request.body())
        if data is None:
            return _sms_problem(400, "Bad SMS request", problem)
        if SMS_NO_SUBSCRIBER.match(data["to"]):
            return _sms_problem(422, "Unknown subscriber", f"{data['to']} is not attributed to any subscriber")
        scheme = request.headers.get("authorization", "").partition(" ")[0].lower() or None
        record = await asyncio.to_thread(
            sms_store.save, data["to"], data.get("from"), data["text"], data.get("reference"), scheme
        )
        print(f"sms {record['id']} from {record['from']} to {record['to']}", flush=True)
        return Response(content={"id": record["id"], "status": "accepted"}, status_code=202)

    @get("/sms", sync_to_thread=True)
    def sms_page() -> Response[str]:
        rows = [_sms_row(m) for m in sms_store.list()]
        return _list_page("SMS catcher", "/api/sms", _SMS_COLUMNS, rows, f"{len(rows)} SMS", "No SMS yet.")

    handlers = [index, show, *_store_api("/api/messages", store, "message"), raw_message, healthz]
    handlers += [receive_sms, sms_page, *_store_api("/api/sms", sms_store, "SMS")]
    return Litestar(route_handlers=handlers, openapi_config=None)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` owns SIGINT/SIGTERM (uvicorn's would re-raise the
    signal after its shutdown, and a signal that came before it took over would be lost)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(state_dir: Path, smtp_port: int, http_port: int, host: str = "127.0.0.1") -> None:
    """SMTP and HTTP on one loop until SIGINT/SIGTERM."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    store = MailStore(state_dir / "mail")
    sms = SmsStore(state_dir / "sms")
    config = uvicorn.Config(
        create_app(store, sms), host=host, port=http_port, log_level="warning", access_log=False, lifespan="on"
    )
    server = _Server(config)

    def request_exit(signum: int, frame: object) -> None:
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_exit)
    smtp_server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(
            _Handler(store), hostname="mailcatcher.localhost", ident="Visiopass mail catcher", enable_SMTPUTF8=True
        ),
        host,
        smtp_port,
    )
    print(f"mail catcher: smtp://{host}:{smtp_port} http://{host}:{http_port} -> {store.directory}", flush=True)
    print(f"sms catcher: POST http://{host}:{http_port}/sms -> {sms.directory}", flush=True)
    try:
        await server.serve()
    finally:
        smtp_server.close()
        await asyncio.wait_for(smtp_server.wait_closed(), 5)
    print("mail catcher stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="messages go to <state-dir>/mail")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    asyncio.run(serve(args.state_dir, args.smtp_port, args.http_port, args.host))


if __name__ == "__main__":
    main()
