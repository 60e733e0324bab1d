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
import logging
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar import Litestar, MediaType, Response, delete, get
from litestar.exceptions import NotFoundException

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
        "date": date.isoformat(),
        "received": received.isoformat(),
        "text": text,
        "html": html_body,
        "links": _unique(_URL_RE.findall(text) + hrefs),
        "attachments": attachments,
    }


class MailStore:
    """Messages as ``<id>.eml`` files; ids sort by arrival time.

    Tests poll the store many times a second while it grows to thousands of messages: each message is parsed
    once and indexed by recipient, and the folder is read again only when it changed (its mtime moves when a
    file is added or removed, by this process or by hand), so that a lookup costs what it finds."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._cache: dict[str, dict[str, Any]] = {}  # .eml files never change once written
        self._ids: list[str] = []  # oldest first
        self._by_recipient: dict[str, list[str]] = {}
        self._settled_at: int | None = None  # the folder's mtime when last read, once it is settled

    def save(self, mail_from: str | None, rcpt_tos: list[str], content: bytes) -> str:
        message_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        eol = b"\r\n" if b"\r\n" in content else b"\n"
        received = format_datetime(datetime.now(UTC))
        trace = [f"{_ENVELOPE_FROM}: <{mail_from or ''}>", f"{_ENVELOPE_TO}: {', '.join(rcpt_tos)}"]
        trace.append(f"{_RECEIVED}: {received}")
        data = eol.join(line.encode("utf-8") for line in trace) + eol + content
        tmp = self.directory / f".{message_id}.tmp"
        tmp.write_bytes(data)
        tmp.rename(self.directory / f"{message_id}.eml")
        return message_id

    def _refresh(self) -> None:
        """Index the messages that appeared since the last look (the caller holds the lock)."""
        changed_at = self.directory.stat().st_mtime_ns
        if changed_at == self._settled_at:
            return
        on_disk = {p.stem for p in self.directory.glob("*.eml") if _ID_RE.match(p.stem)}
        if not on_disk.issuperset(self._cache):  # removed by hand: index again from scratch
            self._reset()
        # The mtime has the kernel clock's coarse resolution: a file added in the same tick as this look leaves
        # it unchanged. Only an mtime old enough that no later tick can share it is trusted to skip the next look.
        self._settled_at = changed_at if time.time_ns() - changed_at > _MTIME_TICK_NS else None
        for message_id in sorted(on_disk - self._cache.keys()):
            raw = self.raw(message_id)
            if raw is None:
                continue
            received = datetime.fromtimestamp(int(message_id[:20]) / 1e9, UTC)
            self._cache[message_id] = parsed = parse_message(message_id, raw, received)
            self._ids.append(message_id)
            for address in {a.lower() for a in parsed["to"] + parsed["header_to"]}:
                self._by_recipient.setdefault(address, []).append(message_id)
        if self._ids and self._ids != sorted(self._ids):  # a file dropped by hand with an older id
            self._ids.sort()
            for ids in self._by_recipient.values():
                ids.sort()

    def ids(self) -> list[str]:
        with self._lock:
            self._refresh()
            return list(reversed(self._ids))

    def raw(self, message_id: str) -> bytes | None:
        if not _ID_RE.match(message_id):
            return None
        try:
            return (self.directory / f"{message_id}.eml").read_bytes()
        except FileNotFoundError:
            return None

    def get(self, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._refresh()
            return self._cache.get(message_id)

    def list(self, to: str | None = None) -> list[dict[str, Any]]:
        """The messages, newest first; only those sent to `to` when given."""
        with self._lock:
            self._refresh()
            ids = self._ids if not to else self._by_recipient.get(to.strip().lower(), [])
            return [self._cache[message_id] for message_id in reversed(ids)]

    def clear(self) -> int:
        with self._lock:
            count = 0
            for path in self.directory.glob("*.eml"):
                path.unlink(missing_ok=True)
                count += 1
            self._reset()
            return count


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
"""


def _page(title: str, body: str, refresh: bool = False) -> Response[str]:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return Response(content=document, media_type=MediaType.HTML)


def _linkify(text: str) -> str:
    out, last = [], 0
    for match in _URL_RE.finditer(text):
        url = match.group(0)
        out.append(html.escape(text[last : match.start()]))
        out.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def create_app(store: MailStore) -> Litestar:
    @get("/", sync_to_thread=True)
    def index() -> Response[str]:
        messages = store.list()
        rows = "".join(
            f'<tr><td><a href="/messages/{m["id"]}">{html.escape(m["subject"] or "(no subject)")}</a></td>'
            f"<td>{html.escape(m['from'])}</td><td>{html.escape(', '.join(m['to']))}</td>"
            f'<td class="muted">{html.escape(m["date"])}</td></tr>'
            for m in messages
        )
        table = (
            "<table><tr><th>Subject</th><th>From</th><th>To</th><th>Date</th></tr>" + rows + "</table>"
            if messages
            else '<p class="muted">No message yet.</p>'
        )
        clear = (
            "<button onclick=\"fetch('/api/messages',{method:'DELETE'}).then(()=>location.reload())\">"
            "Delete all</button>"
        )
        body = f"<h1>Mail catcher</h1><p>{len(messages)} message(s), newest first. {clear}</p>{table}"
        return _page("Mail catcher", body, refresh=True)

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

    @get("/api/messages", sync_to_thread=True)
    def list_messages(to: str | None = None) -> list[dict[str, Any]]:
        return store.list(to)

    @get("/api/messages/{message_id:str}", sync_to_thread=True)
    def get_message(message_id: str) -> dict[str, Any]:
        m = store.get(message_id)
        if m is None:
            raise NotFoundException(f"no message {message_id}")
        return m

    @get("/api/messages/{message_id:str}/raw", sync_to_thread=True)
    def raw_message(message_id: str) -> Response[bytes]:
        raw = store.raw(message_id)
        if raw is None:
            raise NotFoundException(f"no message {message_id}")
        return Response(content=raw, media_type="message/rfc822")

    @delete("/api/messages", status_code=200, sync_to_thread=True)
    def clear_messages() -> dict[str, int]:
        return {"deleted": store.clear()}

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    handlers = [index, show, list_messages, get_message, raw_message, clear_messages, healthz]
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
    config = uvicorn.Config(
        create_app(store), host=host, port=http_port, log_level="warning", access_log=False, lifespan="on"
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
