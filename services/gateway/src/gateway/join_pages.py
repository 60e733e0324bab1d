"""What the public links open, no login needed (docs/portal.md, "Joining a session"):

- `/join/<token>`: a participation link (enrollment resolves it: `POST /internal/join/resolve`). Before the room
  opens ("waiting"): when the session starts, in its own zone and (portal.js) in the viewer's, the animator's
  waiting message and agenda, a link to test one's equipment, and the phone number and PIN to join by phone. Once
  it opens ("open"): the entry code first when the session asks one (a passed code is remembered in a signed,
  short-lived, HttpOnly cookie for that link's path only), then the person's name and, if they like, their email
  (for their certificate): the attendance is recorded in enrollment, the catalogue signs a URL of the conference
  provider for that name, and the browser goes there (303). Once it is over ("ended"): "the session is over" and
  a feedback form (the name one joined under, a rating, a comment).
  A link that is malformed, unknown, revoked, expired or of a cancelled session gets one 404 page, the same bytes
  whatever the cause.
- `/feedback/<token>`: a person's feedback, from the link of the thank-you mail that carries their certificate.
- `/certificates/verify?code=`: anyone checks a certificate's code: what it attests, or that no certificate has it.
- `/hooks/rooms/{id}/ended?sig=` (BigBlueButton's end callback, GET or POST, signed by the catalogue) and
  `/hooks/rooms/jitsi` (Jitsi's webhook, bearer token): people leaving a room, told to enrollment.

The forms carry the CSRF token; their POSTs, entry codes and certificate checks are counted per address in the
`join` rate-limit class (gateway.limits), since they try secrets."""

import asyncio
import hashlib
import hmac
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post, route
from litestar.response import Redirect, Template
from pydantic import BaseModel, ConfigDict, Field

from gateway.i18n import N_, gettext
from gateway.limits import RATE_LIMIT
from gateway.notifications import check_bearer, json_model
from gateway.planning_pages import day_label, duration_label, time_label, zone_label
from gateway.portal import FORM, cookie_secure, page
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from servicekit.http import ProblemError
from servicekit.inputs import text
from servicekit.read_cache import ReadCache

LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # a participation link's or a feedback link's token (256 bits)
CODE_COOKIE = "vp_join_code"
CODE_COOKIE_SECONDS = 3 * 3600  # a passed entry code is remembered this long, for that link only
FORM_BYTES = 16 * 1024
HOOK_BYTES = 64 * 1024
GUESSED = RATE_LIMIT("join")
HOOK = {"exclude_from_csrf": True}  # a provider's call, authenticated by its signature or token
MAX_NAME, MAX_EMAIL, MAX_COMMENT, MAX_CODE = 200, 320, 2000, 64
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
JITSI_LEFT = "PARTICIPANT_LEFT"
ROOM_PREFIX = "visiopass-"


@dataclass(frozen=True)
class PublicLinks:
    """What these pages need of the gateway's settings (`app.state["public_links"]`, set by gateway.main)."""

    cookie_key: bytes  # signs the entry-code cookie (the gateway's secret key)
    equipment_test_url: str
    room_callback_secret: str | None  # the catalogue's room secret: BigBlueButton's end callback is signed with it
    jitsi_webhook_token: str | None

    @classmethod
    def of(cls, settings: GatewaySettings, secret_key: str) -> "PublicLinks":
        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value else None

        return cls(
            cookie_key=hashlib.sha256(b"join-code-cookie:" + secret_key.encode()).digest(),
            equipment_test_url=settings.equipment_test_url,
            room_callback_secret=secret(settings.room_callback_secret),
            jitsi_webhook_token=secret(settings.jitsi_webhook_token),
        )


def _settings(request: Request[Any, Any, Any]) -> PublicLinks:
    links: PublicLinks = request.app.state["public_links"]
    return links


class LinkGone(Exception):
    """The link does not open anything (whatever the reason): the one 404 page."""

    def __init__(self, visitor: dict[str, Any] | None, kind: str = "join") -> None:
        super().__init__(kind)
        self.visitor, self.kind = visitor, kind


class ServiceDown(Exception):
    def __init__(self, visitor: dict[str, Any] | None) -> None:
        super().__init__("unavailable")
        self.visitor = visitor


def link_gone(_: Request[Any, Any, Any], exc: LinkGone) -> Template:
    # nothing of the request in the page (not even its path, for the language switch): the same bytes for a
    # malformed, unknown, revoked or expired link
    return page("link_gone.html", exc.visitor, 404, kind=exc.kind, language_next="/")


def service_down(_: Request[Any, Any, Any], exc: ServiceDown) -> Template:
    return page("link_gone.html", exc.visitor, 503, kind="unavailable", language_next="/")


# -- forms ----------------------------------------------------------------------------------------------------------


def _plain(value: str, limit: int, *, multiline: bool = False) -> str | None:
    """The text stripped, or None when it is too long or holds a control character (new lines only if
    `multiline`) or U+FFFD (what a body that is not UTF-8 decodes to)."""
    value = value.strip()
    allowed = "\n\r\t" if multiline else ""
    if len(value) > limit or any(
        (unicodedata.category(character) in ("Cc", "Cs", "Co") and character not in allowed) or character == "\ufffd"
        for character in value
    ):
        return None
    return value


class NameForm(BaseModel):
    name: str = ""
    email: str = ""

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        name = _plain(self.name, MAX_NAME)
        if not name:
            errors["name"] = gettext(
                N_("Indiquez votre nom : les autres participants le verront (200 caractères au plus).")
            )
        email = _plain(self.email, MAX_EMAIL)
        if email is None or (email and not EMAIL.fullmatch(email)):
            errors["email"] = gettext(N_("Cette adresse e-mail n'est pas valide."))
        return {"name": name, "email": email or None}, errors

    def kept(self) -> dict[str, str]:
        return {"name": self.name.strip()[:MAX_NAME], "email": self.email.strip()[:MAX_EMAIL]}


class CodeForm(BaseModel):
    code: str = ""


class RatingForm(BaseModel):
    rating: str = ""
    comment: str = ""

    def checked_rating(self, errors: dict[str, str]) -> dict[str, Any]:
        if self.rating not in ("1", "2", "3", "4", "5"):
            errors["rating"] = gettext(N_("Choisissez une note de 1 à 5."))
        comment = _plain(self.comment, MAX_COMMENT, multiline=True)
        if comment is None:
            errors["comment"] = gettext(N_("%(max)d caractères au plus, sans caractère de contrôle.")) % {
                "max": MAX_COMMENT
            }
        rating = int(self.rating) if self.rating in ("1", "2", "3", "4", "5") else None
        return {"rating": rating, "comment": comment or None}

    def kept(self) -> dict[str, str]:
        return {"rating": self.rating[:1], "comment": self.comment.strip()[:MAX_COMMENT]}


class FeedbackForm(RatingForm):
    name: str = ""

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        name = _plain(self.name, MAX_NAME)
        if not name:
            errors["name"] = gettext(N_("Indiquez le nom sous lequel vous avez participé."))
        return {"name": name} | self.checked_rating(errors), errors

    def kept(self) -> dict[str, str]:
        return super().kept() | {"name": self.name.strip()[:MAX_NAME]}


# -- the link and what its page shows -------------------------------------------------------------------------------


async def resolve(enrollment: Upstream, token: str, visitor: dict[str, Any] | None) -> dict[str, Any]:
    """Enrollment's view of a valid link (`state`, `opens_at`, `session`...); LinkGone for anything else."""
    if not LINK_TOKEN.fullmatch(token):
        raise LinkGone(visitor)
    answer = await _call(enrollment, visitor, "POST", "/internal/join/resolve", {"token": token})
    if answer.status_code == 404:
        raise LinkGone(visitor)
    if answer.status_code != 200:
        raise ServiceDown(visitor)
    link: dict[str, Any] = answer.json()
    return link


async def _call(upstream: Upstream, visitor: dict[str, Any] | None, *args: Any) -> Any:
    try:
        return await upstream.call(*args)
    except ProblemError:
        raise ServiceDown(visitor) from None


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def when(starts_at: str, ends_at: str, zone_name: str) -> dict[str, str]:
    """A session's day and times in its own zone, for the page (portal.js adds the viewer's own)."""
    zone = ZoneInfo(zone_name)
    starts, ends = _instant(starts_at).astimezone(zone), _instant(ends_at).astimezone(zone)
    return {
        "day": day_label(starts),
        "start": time_label(starts),
        "end": time_label(ends),
        "zone": zone_label(zone, starts),
        "starts_at": _instant(starts_at).isoformat(),
    }


# A class opening its links together asks for the same session's waiting room: its text and dial-in (organisers
# rarely change them) are reused for a few seconds per process, and asked once however many wait (read_cache).
WAITING_DETAILS = ReadCache(ttl=10.0)


async def _waiting_details(catalogue: Upstream, session_id: str) -> dict[str, Any]:
    """The catalogue's waiting message, agenda and dial-in; each left out when the catalogue does not answer (the
    page still says when the session starts)."""

    async def ask() -> dict[str, Any]:
        details: dict[str, Any] = {"waiting_message": "", "agenda": "", "dial_in": None}
        try:
            shown, dial_in = await asyncio.gather(
                catalogue.call("GET", f"/internal/sessions/{session_id}"),
                catalogue.call("GET", f"/internal/sessions/{session_id}/dial-in"),
            )
        except ProblemError:
            return details
        if shown.status_code == 200:
            details |= {key: shown.json().get(key) or "" for key in ("waiting_message", "agenda")}
        if dial_in.status_code == 200:
            details["dial_in"] = dial_in.json()
        return details

    return dict(await WAITING_DETAILS.get(session_id, ask))


def _code_signature(key: bytes, token: str, expires: int) -> str:
    return hmac.new(key, f"join-code:{token}:{expires}".encode(), hashlib.sha256).hexdigest()


def code_passed(request: Request[Any, Any, Any], token: str) -> bool:
    """Whether this browser typed the session's entry code through this link lately (the signed cookie)."""
    value = request.cookies.get(CODE_COOKIE, "")
    expires, _, signature = value.partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return False
    expected = _code_signature(_settings(request).cookie_key, token, int(expires))
    return hmac.compare_digest(signature.encode(), expected.encode())


def remember_code(request: Request[Any, Any, Any], response: Response[Any], token: str) -> None:
    expires = int(time.time()) + CODE_COOKIE_SECONDS
    value = f"{expires}.{_code_signature(_settings(request).cookie_key, token, expires)}"
    response.set_cookie(
        CODE_COOKIE,
        value,
        max_age=CODE_COOKIE_SECONDS,
        path=f"/join/{token}",
        httponly=True,
        secure=cookie_secure(request),
        samesite="lax",
    )


def _problem(answer: Any) -> dict[str, Any]:
    if answer.status_code >= 500 or not answer.headers.get("content-type", "").endswith("json"):
        return {"code": "upstream_error"}
    problem: dict[str, Any] = answer.json()
    return problem


def _status(upstream_status: int) -> int:
    return upstream_status if 400 <= upstream_status < 500 else 502


# What enrollment's and the catalogue's refusals of these forms mean to the person, and the field they are about.
REFUSALS = {
    "room_not_open": ("_form", N_("La salle n'est pas ouverte en ce moment : rechargez la page.")),
    "wrong_entry_code": ("code", N_("Ce code d'accès n'est pas le bon.")),
    "not_an_attendee": (
        "name",
        N_("Personne n'a rejoint la session sous ce nom par ce lien : indiquez le nom saisi pour entrer."),
    ),
    "feedback_already_given": ("name", N_("Votre avis sur cette session est déjà enregistré : merci !")),
    "session_not_ended": ("_form", N_("La session n'est pas encore terminée : votre avis sera le bienvenu après.")),
    "upstream_error": ("_form", N_("Le service a rencontré une erreur : réessayez plus tard.")),
    "upstream_unavailable": ("_form", N_("Le service est momentanément indisponible : réessayez dans un instant.")),
}
FIELD_REFUSED = N_("Cette valeur n'est pas acceptée (caractères non autorisés ou trop longue).")


def refusal_text(code: str) -> str:
    return gettext(REFUSALS[code][1])


def refusal(problem: dict[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    """{field: message} for a service's refusal."""
    code = problem.get("code")
    if isinstance(code, str) and code in REFUSALS:
        field, message = REFUSALS[code]
        return {field: gettext(message)}
    field = problem.get("field")
    if isinstance(field, str) and field in fields:
        return {field: gettext(FIELD_REFUSED)}
    return {"_form": refusal_text("upstream_error")}


class JoinPages(Controller):
    path = "/join"
    include_in_schema = False
    exception_handlers = {LinkGone: link_gone, ServiceDown: service_down}

    @get("/{token:str}")
    async def join_page(
        self,
        token: str,
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        enrollment: Upstream,
        catalogue: Upstream,
        done: str | None = None,
    ) -> Template:
        link = await resolve(enrollment, token, visitor)
        return await self._page(request, visitor, catalogue, token, link, feedback_done=done == "feedback")

    @post("/{token:str}/entry-code", opt=GUESSED, request_max_body_size=FORM_BYTES)
    async def entry_code(
        self,
        token: str,
        request: Request[Any, Any, Any],
        data: Annotated[CodeForm, FORM],
        visitor: dict[str, Any] | None,
        enrollment: Upstream,
        catalogue: Upstream,
    ) -> Response[Any]:
        """The session's entry code, checked by the catalogue; remembered for this link when right."""
        link = await resolve(enrollment, token, visitor)
        if link["state"] != "open" or link["session"]["access"] != "code":
            return Redirect(f"/join/{token}", status_code=303)
        code = _plain(data.code, MAX_CODE)
        if not code:
            errors = {"code": gettext(N_("Saisissez le code d'accès de la session."))}
            return await self._page(request, visitor, catalogue, token, link, 400, errors)
        path = f"/internal/sessions/{link['session']['id']}/entry-code"
        answer = await _call(catalogue, visitor, "POST", path, {"code": code})
        if answer.status_code != 204:
            errors = refusal(_problem(answer), ("code",))
            return await self._page(request, visitor, catalogue, token, link, _status(answer.status_code), errors)
        response: Response[Any] = Redirect(f"/join/{token}", status_code=303)
        remember_code(request, response, token)
        return response

    @post("/{token:str}", opt=GUESSED, request_max_body_size=FORM_BYTES)
    async def enter(
        self,
        token: str,
        request: Request[Any, Any, Any],
        data: Annotated[NameForm, FORM],
        visitor: dict[str, Any] | None,
        enrollment: Upstream,
        catalogue: Upstream,
    ) -> Response[Any]:
        """Into the room: the attendance recorded, then a 303 to the provider's URL signed for that name."""
        link = await resolve(enrollment, token, visitor)
        typed = data.kept()
        if link["state"] != "open":
            errors = {"_form": refusal_text("room_not_open")}
            return await self._page(request, visitor, catalogue, token, link, 409, errors, typed)
        if link["session"]["access"] == "code" and not code_passed(request, token):
            errors = {"code": gettext(N_("Saisissez d'abord le code d'accès de la session."))}
            return await self._page(request, visitor, catalogue, token, link, 403, errors)
        body, errors = data.checked()
        if errors:
            return await self._page(request, visitor, catalogue, token, link, 400, errors, typed)
        answer = await _call(enrollment, visitor, "POST", "/internal/join/attendances", {"token": token} | body)
        if answer.status_code == 404:
            raise LinkGone(visitor)
        if answer.status_code == 201:
            attendance_id = answer.json()["attendance_id"]
            path = f"/internal/sessions/{link['session']['id']}/join"
            answer = await _call(
                catalogue, visitor, "POST", path, {"name": body["name"], "participant_id": attendance_id}
            )
            if answer.status_code == 200:
                return Redirect(answer.json()["url"], status_code=303)
        errors = refusal(_problem(answer), ("name", "email"))
        return await self._page(request, visitor, catalogue, token, link, _status(answer.status_code), errors, typed)

    @post("/{token:str}/feedback", opt=GUESSED, request_max_body_size=FORM_BYTES)
    async def feedback(
        self,
        token: str,
        request: Request[Any, Any, Any],
        data: Annotated[FeedbackForm, FORM],
        visitor: dict[str, Any] | None,
        enrollment: Upstream,
        catalogue: Upstream,
    ) -> Response[Any]:
        """A participant's rating once the session is over, under the name they joined with."""
        link = await resolve(enrollment, token, visitor)
        body, errors = data.checked()
        typed = data.kept()
        if errors:
            return await self._page(request, visitor, catalogue, token, link, 400, errors, typed)
        answer = await _call(enrollment, visitor, "POST", "/internal/join/feedback", {"token": token} | body)
        if answer.status_code == 404:
            raise LinkGone(visitor)
        if answer.status_code == 201:
            return Redirect(f"/join/{token}?done=feedback", status_code=303)
        errors = refusal(_problem(answer), ("name", "rating", "comment"))
        return await self._page(request, visitor, catalogue, token, link, _status(answer.status_code), errors, typed)

    async def _page(
        self,
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        catalogue: Upstream,
        token: str,
        link: dict[str, Any],
        status_code: int = 200,
        errors: dict[str, str] | None = None,
        typed: dict[str, str] | None = None,
        feedback_done: bool = False,
    ) -> Template:
        session = link["session"]
        state = link["state"]
        step = state
        if state == "open":
            step = "code" if session["access"] == "code" and not code_passed(request, token) else "name"
        context: dict[str, Any] = {
            "token": token,
            "link": link,
            "session": session,
            "state": state,
            "step": step,
            "when": when(session["starts_at"], session["ends_at"], session["timezone"]),
            "opens_at": when(link["opens_at"], session["ends_at"], session["timezone"]),
            "errors": errors or {},
            "typed": typed or {},
            "feedback_done": feedback_done,
            "equipment_test_url": _settings(request).equipment_test_url,
        }
        if state == "waiting":
            context |= await _waiting_details(catalogue, session["id"])
        return page("join_session.html", visitor, status_code, **context)


# -- a person's feedback (the thank-you mail's link) ----------------------------------------------------------------


class FeedbackPages(Controller):
    path = "/feedback"
    include_in_schema = False
    exception_handlers = {LinkGone: link_gone, ServiceDown: service_down}

    @get("/{token:str}")
    async def feedback_page(
        self, token: str, visitor: dict[str, Any] | None, enrollment: Upstream, done: str | None = None
    ) -> Template:
        found = await self._link(enrollment, token, visitor)
        state = "done" if done and found["given"] else "given" if found["given"] else "form"
        return page("feedback_link.html", visitor, token=token, link=found, state=state, errors={}, typed={})

    @post("/{token:str}", opt=GUESSED, request_max_body_size=FORM_BYTES)
    async def give(
        self, token: str, data: Annotated[RatingForm, FORM], visitor: dict[str, Any] | None, enrollment: Upstream
    ) -> Response[Any]:
        found = await self._link(enrollment, token, visitor)
        errors: dict[str, str] = {}
        body = data.checked_rating(errors)
        status_code = 400
        if not errors:
            answer = await _call(enrollment, visitor, "POST", f"/internal/feedback/{token}", body)
            if answer.status_code == 201:
                return Redirect(f"/feedback/{token}?done=1", status_code=303)
            if answer.status_code == 404:
                raise LinkGone(visitor, "feedback")
            problem = _problem(answer)
            if problem.get("code") == "feedback_already_given":
                return page("feedback_link.html", visitor, 409, token=token, link=found, state="given")
            errors, status_code = refusal(problem, ("rating", "comment")), _status(answer.status_code)
        return page(
            "feedback_link.html", visitor, status_code, token=token, link=found, state="form", errors=errors,
            typed=data.kept(),
        )  # fmt: skip

    async def _link(self, enrollment: Upstream, token: str, visitor: dict[str, Any] | None) -> dict[str, Any]:
        if not LINK_TOKEN.fullmatch(token):
            raise LinkGone(visitor, "feedback")
        answer = await _call(enrollment, visitor, "GET", f"/internal/feedback/{token}")
        if answer.status_code == 404:
            raise LinkGone(visitor, "feedback")
        if answer.status_code != 200:
            raise ServiceDown(visitor)
        found: dict[str, Any] = answer.json()
        return found


# -- certificates: anyone checks a code -----------------------------------------------------------------------------


class CertificateCheckPages(Controller):
    path = "/certificates"
    include_in_schema = False
    exception_handlers = {ServiceDown: service_down}

    @get("/verify", opt=GUESSED)
    async def verify(self, visitor: dict[str, Any] | None, enrollment: Upstream, code: str | None = None) -> Template:
        """The form; with `code`, what the certificate bearing it attests, or that none does (404)."""
        typed = (code or "").strip()[:MAX_CODE]
        if not typed:
            return page("certificate_verify.html", visitor, code="", certificate=None, state="ask")
        certificate = None
        if _plain(typed, 40):  # a code is 19 characters; anything much longer is no code
            answer = await _call(
                enrollment, visitor, "GET", f"/internal/certificates/verification?{urlencode({'code': typed})}"
            )
            if answer.status_code == 200:
                certificate = answer.json()
            elif answer.status_code not in (400, 404):
                raise ServiceDown(visitor)
        if certificate is None:
            return page("certificate_verify.html", visitor, 404, code=typed, certificate=None, state="unknown")
        zone = ZoneInfo(certificate["timezone"])
        starts = _instant(certificate["session_starts_at"]).astimezone(zone)
        shown = certificate | {"day": day_label(starts), "duration": duration_label(certificate["duration_minutes"])}
        return page("certificate_verify.html", visitor, code=typed, certificate=shown, state="found")


# -- the conference providers' calls --------------------------------------------------------------------------------


def end_callback_signature(secret: str, room_id: uuid.UUID) -> str:
    """What the catalogue puts in the end callback URL it gives BigBlueButton (catalogue.rooms, same formula)."""
    return hmac.new(secret.encode(), f"room-ended:{room_id}".encode(), hashlib.sha256).hexdigest()


class JitsiData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: text(200) | None = None  # type: ignore[valid-type]  # the JWT's context.user.id: the attendance's id


class JitsiEvent(BaseModel):
    """A Jitsi as a Service (JaaS) webhook: `{"eventType": "PARTICIPANT_LEFT", "fqn": "<app id>/<room>",
    "timestamp": <ms since the epoch>, "data": {"id": "<the JWT's context.user.id>", ...}, ...}`; `room` may
    name the room instead of `fqn` (a self-hosted relay). Other fields are ignored, other events too."""

    model_config = ConfigDict(extra="ignore")

    eventType: text(64, min_length=1)  # type: ignore[valid-type]
    fqn: text(300) | None = None  # type: ignore[valid-type]
    room: text(300) | None = None  # type: ignore[valid-type]
    timestamp: Annotated[int, Field(ge=0, le=2**53)] | None = None
    data: JitsiData = JitsiData()

    def session_id(self) -> uuid.UUID | None:
        name = (self.room or (self.fqn or "").rsplit("/", 1)[-1]).lower()
        return _uuid(name[len(ROOM_PREFIX) :]) if name.startswith(ROOM_PREFIX) else None

    def left_at(self) -> datetime:
        if self.timestamp is None:
            return datetime.now(UTC)
        return datetime.fromtimestamp(self.timestamp / 1000, UTC)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None


def _relayed(answer: Any) -> None:
    """Enrollment took it (204), or has nothing to record (404: not a session's attendance); else 502, for the
    provider to try again."""
    if answer.status_code not in (204, 404):
        raise ProblemError(502, "upstream_error", "Service error", "The event could not be recorded.")


class RoomHooks(Controller):
    path = "/hooks/rooms"
    include_in_schema = False

    @route("/{session_id:uuid}/ended", http_method=["GET", "POST"], opt=HOOK, status_code=204)
    async def ended(self, session_id: uuid.UUID, request: Request[Any, Any, Any], enrollment: Upstream) -> None:
        """BigBlueButton's end callback (it calls with GET; POST too): the signature must be the catalogue's, else
        404, as for a route that does not exist. Query parameters BigBlueButton adds are ignored."""
        secret = _settings(request).room_callback_secret
        given = request.query_params.get("sig") or ""
        if not secret or not hmac.compare_digest(given.encode(), end_callback_signature(secret, session_id).encode()):
            raise ProblemError(404, "not_found", "Not found", "No such route.")
        _relayed(await enrollment.call("POST", f"/internal/rooms/{session_id}/ended", {}))

    @post("/jitsi", opt=HOOK, status_code=204, request_max_body_size=HOOK_BYTES)
    async def jitsi(self, request: Request[Any, Any, Any], enrollment: Upstream) -> None:
        """Jitsi's webhook (`Authorization: Bearer <GATEWAY_JITSI_WEBHOOK_TOKEN>`): PARTICIPANT_LEFT of a
        participant who came through a join page (the JWT's user id is the attendance's) is told to enrollment;
        any other event, room or participant: 204 and nothing done."""
        check_bearer(request, _settings(request).jitsi_webhook_token, "A Jitsi webhook needs its token.")
        event = json_model(await request.body(), JitsiEvent)
        session_id, attendance_id = event.session_id(), _uuid(event.data.id)
        if event.eventType != JITSI_LEFT or session_id is None or attendance_id is None:
            return
        body = {"attendance_id": str(attendance_id), "left_at": event.left_at().isoformat()}
        _relayed(await enrollment.call("POST", f"/internal/rooms/{session_id}/left", body))


CONTROLLERS = [JoinPages, FeedbackPages, CertificateCheckPages, RoomHooks]
