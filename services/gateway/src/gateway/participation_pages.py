"""One enrolment in "Mes Webvisio" (docs/portal.md, "Mes Webvisio: taking part"): `/account/webvisio/{id}`.

The page shows the enrolment's status, the participation link (with a copy button: portal.js) and the "Accès"
button, enabled from the room's opening (15 minutes before the start; before that, disabled, saying when it
opens), the attendance (who joined, when), after the end the institution's feedback form (rating 1 to 5 and a
comment) or its thanks, and the certificates of attendance with their PDFs. Its managers also see, each behind a
confirmation, "Révoquer le lien" and "Générer un nouveau lien", and the form sharing the link by mail or SMS
(recipients one a line, a personal message, now or at a date and time of the viewer's zone) with the list of
sendings and "Annuler" for the scheduled ones.

Which institution acts comes from `web.current_account` (the person's own memberships, never a form); enrollment is
asked for that account only (404 for another's enrolment, share or certificate). Managers' forms: 403 to a member
(`ensure_managed_account`); the feedback: the institution's people. Every form carries the CSRF token; a form that
worked redirects (303) to the page with `?done=…`; a refused one comes back with what was typed and the reason."""

import asyncio
import re
import uuid
import zoneinfo
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from pydantic import BaseModel, ValidationError

from gateway import i18n
from gateway.account_pages import account_page, ensure_managed_account
from gateway.i18n import N_, gettext
from gateway.messages import problem_message
from gateway.participation import (
    FeedbackRequest,
    Recipient,
    ShareRequest,
    by,
    certificate_file,
    enrolment_path,
    give_feedback,
    share_link,
)
from gateway.portal import FORM, clip, form_status
from gateway.upstream import Upstream
from gateway.web import current_account
from servicekit.http import ProblemError

RECIPIENTS_AT_MOST = 20
EMAIL = re.compile(r"[^@\s<>;,]+@[^@\s<>;,]+\.[^@\s<>;,]+")
PHONE_NOISE = str.maketrans("", "", " .-()\u00a0")
REFUSALS = {
    "link_not_found": N_("Cette inscription n'a pas de lien actif : générez-en un nouveau."),
    "share_limit_reached": N_("Votre établissement a atteint le nombre d'envois du jour ; réessayez demain."),
    "share_already_sent": N_("Cet envoi est déjà parti : il ne peut plus être annulé."),
    "not_confirmed": N_("Seule une inscription confirmée a un lien."),
    "session_not_ended": N_("Vous pourrez donner votre avis à la fin de la session."),
    "feedback_already_given": N_("Votre établissement a déjà donné son avis sur cette session."),
}


def refusal(answer: Any) -> str:
    problem = answer.json() if answer.status_code < 500 else {"code": "upstream_error"}
    code = problem.get("code")
    return gettext(REFUSALS[code]) if code in REFUSALS else problem_message(problem)


class ShareForm(BaseModel):
    recipients: str = ""
    message: str = ""
    when: str = "now"
    send_at: str = ""
    timezone: str = ""

    def kept(self) -> dict[str, str]:
        return {
            "recipients": clip(self.recipients),
            "message": clip(self.message),
            "when": "later" if self.when == "later" else "now",
            "send_at": self.send_at[:16],
        }


class FeedbackForm(BaseModel):
    rating: str = ""
    comment: str = ""


def recipient_of(line: str) -> Recipient | None:
    """One line of the recipients' box: an address (email, or phone: +33…, or a French 0… number), with a name
    before or after it (`Name <address>`, `Name; address`, `address, Name`...); None when no address is found."""
    parts = [part.strip() for part in re.split(r"[;,\t<>]", line) if part.strip()]
    for index, part in enumerate(parts):
        name = " ".join(parts[:index] + parts[index + 1 :]) or None
        if EMAIL.fullmatch(part):
            return Recipient(channel="email", address=part, name=name)
        phone = part.translate(PHONE_NOISE)
        if phone.startswith("00"):
            phone = "+" + phone[2:]
        elif re.fullmatch(r"0[1-9]\d{8}", phone):
            phone = "+33" + phone[1:]
        if re.fullmatch(r"\+\d{8,15}", phone):
            return Recipient(channel="sms", address=phone, name=name)
    return None


def checked_share(form: ShareForm, now: datetime) -> tuple[ShareRequest | None, dict[str, str]]:
    errors: dict[str, str] = {}
    recipients: list[Recipient] = []
    lines = [line for line in clip(form.recipients).splitlines()]
    wrong = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            found = recipient_of(line)
        except ValidationError:
            found = None
        if found is None:
            wrong.append(str(number))
        else:
            recipients.append(found)
    if wrong:
        errors["recipients"] = gettext(
            N_("Ligne %(lines)s : une adresse e-mail ou un numéro de téléphone portable est attendu.")
        ) % {"lines": ", ".join(wrong)}
    elif not recipients:
        errors["recipients"] = gettext(N_("Indiquez au moins un destinataire."))
    elif len(recipients) > RECIPIENTS_AT_MOST:
        errors["recipients"] = gettext(N_("%(max)d destinataires au plus par envoi.")) % {"max": RECIPIENTS_AT_MOST}
    if len(form.message) > 1000:
        errors["message"] = gettext(N_("%(max)d caractères au plus.")) % {"max": 1000}
    send_at = None
    if form.when == "later":
        send_at = local_moment(form.send_at, form.timezone)
        if send_at is None:
            errors["send_at"] = gettext(N_("Une date et une heure, par exemple 2027-03-18 09:30."))
        elif send_at <= now:
            errors["send_at"] = gettext(N_("Choisissez un moment à venir."))
    if errors:
        return None, errors
    try:
        return ShareRequest(recipients=recipients, message=form.message.strip() or None, send_at=send_at), {}
    except ValidationError:
        return None, {"message": gettext(N_("Ce texte contient des caractères non autorisés."))}


def local_moment(value: str, zone_name: str) -> datetime | None:
    """A `datetime-local` value (`YYYY-MM-DDTHH:MM`) read in the viewer's zone (sent by portal.js; the portal's zone
    without script), in UTC."""
    try:
        zone = zoneinfo.ZoneInfo(zone_name) if zone_name else i18n.timezone
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        zone = i18n.timezone
    try:
        moment = datetime.strptime(value.strip()[:16], "%Y-%m-%dT%H:%M")
    except ValueError:
        return None
    return moment.replace(tzinfo=zone).astimezone(UTC)


async def _read(enrollment: Upstream, path: str, actor: str) -> tuple[int, Any]:
    """enrollment's answer: (status, body), (503, None) when it did not answer."""
    try:
        answer = await enrollment.call("GET", path, actor=actor)
    except ProblemError:
        return 503, None
    if answer.status_code >= 500:
        return 502, None
    return answer.status_code, answer.json() if answer.content else None


def stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ParticipationPages(Controller):
    path = "/account/webvisio/{enrollment_id:uuid}"
    include_in_schema = False

    @get("/")
    async def enrolment(
        self,
        enrollment_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Template:
        return await self._page(enrollment_id, request, person, accounts, enrollment)

    @post("/link/reissue")
    async def reissue(
        self, enrollment_id: uuid.UUID, request: Request[Any, Any, Any], person: dict[str, Any], enrollment: Upstream
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = enrolment_path(enrollment_id, "link/reissue")
        answer = await enrollment.call("POST", path, by(person, account_id), actor=person["user_id"])
        return self._done(enrollment_id, answer, 200, "reissued")

    @post("/link/revoke")
    async def revoke(
        self, enrollment_id: uuid.UUID, request: Request[Any, Any, Any], person: dict[str, Any], enrollment: Upstream
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = enrolment_path(enrollment_id, "link/revoke")
        answer = await enrollment.call("POST", path, by(person, account_id), actor=person["user_id"])
        return self._done(enrollment_id, answer, 204, "revoked")

    @post("/shares")
    async def share(
        self,
        enrollment_id: uuid.UUID,
        data: Annotated[ShareForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        asked, errors = checked_share(data, datetime.now(UTC))
        status_code = 400
        if asked is not None:
            answer = await share_link(enrollment, person, account_id, enrollment_id, asked)
            if accepted := self._accepted(enrollment_id, answer, "scheduled" if asked.send_at else "shared"):
                return accepted
            field = answer.json().get("field", "") if answer.status_code < 500 else ""
            key = "send_at" if "send_at" in str(field) else "recipients" if "recipient" in str(field) else "_share"
            errors, status_code = {key: refusal(answer)}, form_status(answer.status_code)
        context = {"share_form": data.kept(), "share_errors": errors}
        return await self._page(enrollment_id, request, person, accounts, enrollment, status_code, **context)

    @post("/shares/{share_id:uuid}/cancellation")
    async def cancel_share(
        self,
        enrollment_id: uuid.UUID,
        share_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        enrollment: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = enrolment_path(enrollment_id, f"link/shares/{share_id}", account_id)
        answer = await enrollment.call("DELETE", path, actor=person["user_id"])
        return self._done(enrollment_id, answer, 204, "share_cancelled")

    @post("/feedback")
    async def feedback(
        self,
        enrollment_id: uuid.UUID,
        data: Annotated[FeedbackForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        account_id = current_account(request, person)
        if account_id is None:
            raise NotFoundException
        rating = data.rating.strip()
        errors: dict[str, str] = {}
        if rating not in ("1", "2", "3", "4", "5"):
            errors["rating"] = gettext(N_("Choisissez une note de 1 à 5."))
        elif len(data.comment) > 2000:
            errors["comment"] = gettext(N_("%(max)d caractères au plus.")) % {"max": 2000}
        status_code = 400
        if not errors:
            try:
                asked = FeedbackRequest(rating=int(rating), comment=data.comment.strip() or None)
            except ValidationError:
                errors["comment"] = gettext(N_("Ce texte contient des caractères non autorisés."))
            else:
                answer = await give_feedback(enrollment, person, account_id, enrollment_id, asked)
                if accepted := self._accepted(enrollment_id, answer, "rated"):
                    return accepted
                errors, status_code = {"_feedback": refusal(answer)}, form_status(answer.status_code)
        typed = {"rating": rating[:1], "comment": clip(data.comment)}
        context = {"feedback_form": typed, "feedback_errors": errors}
        return await self._page(enrollment_id, request, person, accounts, enrollment, status_code, **context)

    @get("/certificates/{certificate_id:uuid}/pdf")
    async def certificate(
        self,
        enrollment_id: uuid.UUID,
        certificate_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        enrollment: Upstream,
    ) -> Response[Any]:
        account_id = current_account(request, person)
        if account_id is None:
            raise NotFoundException
        try:
            return await certificate_file(enrollment, person["user_id"], account_id, enrollment_id, certificate_id)
        except ProblemError as exc:
            if exc.status_code == 404:
                raise NotFoundException from exc
            raise

    def _accepted(self, enrollment_id: uuid.UUID, answer: Any, done: str) -> Response[Any] | None:
        """A form's answer from enrollment: the page again with `done` when it created something (201), 404 for an
        enrolment that is not the institution's, None for a refusal (the form comes back)."""
        if answer.status_code == 404:
            raise NotFoundException
        if answer.status_code == 201:
            return Redirect(f"/account/webvisio/{enrollment_id}?done={done}", status_code=303)
        return None

    def _done(self, enrollment_id: uuid.UUID, answer: Any, success: int, done: str) -> Response[Any]:
        if answer.status_code == 404:
            raise NotFoundException
        if answer.status_code == success:
            return Redirect(f"/account/webvisio/{enrollment_id}?done={done}", status_code=303)
        code = answer.json().get("code") if answer.status_code < 500 else "upstream_error"
        return Redirect(f"/account/webvisio/{enrollment_id}?refused={code}", status_code=303)

    async def _page(
        self,
        enrollment_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        account_id = current_account(request, person)
        if account_id is None:
            raise NotFoundException
        actor = person["user_id"]
        manager = person["memberships"].get(str(account_id)) == "manager"
        reads = [
            _read(enrollment, f"/internal/enrolments/{enrollment_id}?account_id={account_id}", actor),
            _read(enrollment, enrolment_path(enrollment_id, "link", account_id), actor),
            _read(enrollment, enrolment_path(enrollment_id, "attendance", account_id), actor),
            _read(enrollment, enrolment_path(enrollment_id, "certificates", account_id), actor),
        ]
        if manager:
            reads.append(_read(enrollment, enrolment_path(enrollment_id, "link/shares", account_id), actor))
        (status, enrolment), (link_status, link), attendance, certificates, *shares = await asyncio.gather(*reads)
        if status == 404:
            raise NotFoundException
        if enrolment is None:
            return await account_page("webvisio_enrolment.html", request, person, accounts, 503, state="unavailable")
        now = datetime.now(UTC)
        session = enrolment["session"]
        opens_at = stamp(link["opens_at"]) if link_status == 200 and link else None
        ended = session.get("status") == "ended" or now >= datetime.fromisoformat(session["ends_at"])
        refused = request.query_params.get("refused")
        return await account_page(
            "webvisio_enrolment.html",
            request,
            person,
            accounts,
            status_code,
            state="shown",
            enrolment=enrolment,
            session=session,
            link=link if link_status == 200 else None,
            link_unavailable=link_status >= 500,
            opens_at=opens_at,
            room_open=opens_at is not None and now >= opens_at and not ended,
            ended=ended,
            attendance=attendance[1] if attendance[0] == 200 else None,
            certificates=certificates[1]["items"] if certificates[0] == 200 else None,
            shares=shares[0][1]["items"] if shares and shares[0][0] == 200 else None,
            refused=gettext(REFUSALS[refused]) if refused in REFUSALS else None,
            zone=str(i18n.timezone),
            **{"share_form": {"when": "now"}, "share_errors": {}, "feedback_form": {}, "feedback_errors": {}} | context,
        )
