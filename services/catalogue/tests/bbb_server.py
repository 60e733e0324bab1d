"""A small BigBlueButton API server for tests, on 127.0.0.1 and a free port, in a thread.

It checks checksums the way bbb-web does (GetChecksum and GetChecksumValidator): it takes the raw query string
of the request line, removes the `checksum=<value>` parameter textually, and compares HASH(callName + rest +
secret) with the given checksum, under its one configured algorithm. It keeps meetings in memory and answers
`create`, `join` and `end` with BigBlueButton's XML and message keys.

Stricter than BigBlueButton on purpose: a join must name a valid role, and a password, when given, must be that
role's password (a real server lets the role win), so the tests see the passwords we send are consistent.
"""

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

API_PATH = "/bigbluebutton/api"
ROLES = ("MODERATOR", "VIEWER")


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def xml_reply(returncode: str, key: str = "", message: str = "", **fields: str) -> Reply:
    root = ElementTree.Element("response")
    for name, value in {"returncode": returncode, **fields, "messageKey": key, "message": message}.items():
        ElementTree.SubElement(root, name).text = value
    return Reply(200, ElementTree.tostring(root, encoding="utf-8"), {"Content-Type": "text/xml;charset=utf-8"})


class FakeBigBlueButton:
    """Use as a context manager; `api_url` is the base URL to configure the adapter with."""

    def __init__(self, secret: str, algorithm: str = "sha256") -> None:
        self.secret = secret
        self.algorithm = algorithm
        self.meetings: dict[str, dict[str, str]] = {}  # running meeting id -> its create parameters
        self.creates: list[dict[str, str]] = []  # every create call that passed the checksum, in order
        self.joins: list[dict[str, str]] = []  # every join let in
        self.refusals: list[str] = []  # the messageKey of every FAILED answer
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reply = fake.answer(self.path)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval makes shutdown quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-bbb", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PATH

    def __enter__(self) -> "FakeBigBlueButton":
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def answer(self, raw_path: str) -> Reply:
        """The reply to one GET, from its request target exactly as it arrived."""
        target = urlsplit(raw_path)
        if not target.path.startswith(API_PATH + "/"):
            return Reply(404, b"not found")
        call = target.path.removeprefix(API_PATH + "/")
        params = dict(parse_qsl(target.query, keep_blank_values=True))
        checksum = params.pop("checksum", "")
        with self._lock:
            if not self.checksum_matches(call, target.query, checksum):
                return self._refuse("checksumError", "Checksums do not match")
            if call == "create":
                return self._create(params)
            if call == "join":
                return self._join(params)
            if call == "end":
                return self._end(params)
            return self._refuse("unsupportedRequest", "This request is not supported.")

    def checksum_matches(self, call: str, query: str, checksum: str) -> bool:
        if not checksum:
            return False
        rest = query.replace("&checksum=" + checksum, "")
        rest = rest.replace("checksum=" + checksum + "&", "")
        rest = rest.replace("checksum=" + checksum, "")
        expected = hashlib.new(self.algorithm, (call + rest + self.secret).encode()).hexdigest()
        return hmac.compare_digest(expected.encode(), checksum.encode())

    def _create(self, params: dict[str, str]) -> Reply:
        meeting_id = params.get("meetingID", "")
        if not meeting_id or not params.get("name"):
            return self._refuse("missingParam", "You must specify a name and a meetingID.")
        self.creates.append(params)
        existing = self.meetings.get(meeting_id)
        if existing is not None:
            same = (existing["attendeePW"], existing["moderatorPW"]) == (params["attendeePW"], params["moderatorPW"])
            if not same:
                return self._refuse("idNotUnique", "A meeting already exists with that meeting ID.")
            return self._meeting_reply(existing, "duplicateWarning", "This conference was already in existence.")
        bridge = params.get("voiceBridge")
        if bridge and any(m.get("voiceBridge") == bridge for m in self.meetings.values()):
            return self._refuse("nonUniqueVoiceBridge", "The selected voice bridge is already in use.")
        self.meetings[meeting_id] = params
        return self._meeting_reply(params)

    def _join(self, params: dict[str, str]) -> Reply:
        meeting = self.meetings.get(params.get("meetingID", ""))
        if meeting is None:
            return self._refuse("notFound", "We could not find a meeting with that meeting ID.")
        role = params.get("role", "").upper()
        if role not in ROLES or not params.get("fullName"):
            return self._refuse("invalidRole", "You must send a valid role and a full name.")
        password = params.get("password")
        if password is not None and password != meeting["moderatorPW" if role == "MODERATOR" else "attendeePW"]:
            return self._refuse("invalidPassword", "You must enter a valid password.")
        self.joins.append(params | {"role": role})
        session_token = secrets.token_hex(8)
        return Reply(302, b"", {"Location": f"{self.base_url}/html5client/join?sessionToken={session_token}"})

    def _end(self, params: dict[str, str]) -> Reply:
        if self.meetings.pop(params.get("meetingID", ""), None) is None:
            return self._refuse("notFound", "We could not find a meeting with that meeting ID.")
        return xml_reply("SUCCESS", "sentEndMeetingRequest", "A request to end the meeting was sent.")

    def _meeting_reply(self, meeting: dict[str, str], key: str = "", message: str = "") -> Reply:
        return xml_reply(
            "SUCCESS",
            key,
            message,
            meetingID=meeting["meetingID"],
            attendeePW=meeting.get("attendeePW", ""),
            moderatorPW=meeting.get("moderatorPW", ""),
            voiceBridge=meeting.get("voiceBridge", ""),
            dialNumber=meeting.get("dialNumber", ""),
            duration=meeting.get("duration", "0"),
            hasUserJoined="false",
        )

    def _refuse(self, key: str, message: str) -> Reply:
        self.refusals.append(key)
        return xml_reply("FAILED", key, message)
