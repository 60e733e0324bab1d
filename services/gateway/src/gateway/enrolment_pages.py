"""The enrolment pages (docs/portal.md, "S'inscrire", "Mes Webvisio").

- "S'inscrire", on the public session page (gateway.planning_pages.session_page): for a manager of the institution
  shown, a form (expected participants, questions for the animator, "privatiser" when the session has a premium
  price) posted to `/planning/sessions/{id}/enrolment`; a full session offers its waiting list instead. A request
  accepted (202, pending) sends the browser to "Mes Webvisio" (303), where the enrolment turns "confirmée" without a
  reload (portal.js reloads the list while anything is pending); a refusal comes back on the session page with its
  reason next to the form (and, for want of tokens, the way to buy some). A visitor not logged in is invited to log
  in; a member of the institution is told that its managers enrol.
- "Mes Webvisio" (`/account/webvisio`): the institution's upcoming and past sessions with their status (and, for a
  rejected one, why), a cancel button until the cut-off (enrollment's `cancellable_until`), for a confirmed one
  "Accès" (enabled from the room's opening), the attendance and certificates counts and the link to its own page
  (gateway.participation_pages), its places on waiting lists with "Confirmer la place" while one is held for it
  (and until when), "Quitter la liste d'attente".

Which institution acts comes from `web.current_account` (the person's own memberships, never a form); enrollment is
asked for that account only (404 for another's enrolment or entry). Every form carries the CSRF token."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from pydantic import ValidationError

from gateway.account_pages import account_page, ensure_managed_account
from gateway.enrolment import (
    EnrolmentRequest,
    WaitingListRequest,
    ask_enrolment,
    join_waiting_list,
    take_offered_place,
)
from gateway.i18n import N_, gettext
from gateway.messages import MESSAGES, problem_message, translated
from gateway.planning_pages import session_page
from gateway.portal import clip, form_status
from gateway.upstream import Upstream
from gateway.web import current_account
from servicekit.http import ProblemError

FORM_BYTES = 16 * 1024
PAST_SHOWN = 50
# enrollment's default cut-off (ENROLLMENT_CANCEL_HOURS_BEFORE), for an answer without `cancellable_until`
CANCEL_HOURS_BEFORE = 48
ENROL_FIELDS = ("expected_participants", "questions", "privatisation")


def _problem(answer: Any) -> dict[str, Any]:
    if answer.status_code >= 500:
        return {"code": "upstream_error"}
    problem: dict[str, Any] = answer.json()
    return problem


def _typed(form: Any) -> dict[str, str]:
    return {
        "expected_participants": clip(str(form.get("expected_participants") or "")).strip()[:10],
        "questions": clip(str(form.get("questions") or "")).strip()[:2100],
        "privatisation": "1" if form.get("privatisation") in ("1", "on", "true") else "",
    }


def _checked(typed: dict[str, str]) -> dict[str, str]:
    errors = {}
    value = typed["expected_participants"]
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 1000:
        errors["expected_participants"] = gettext(N_("Indiquez un nombre entier entre 1 et %(max)d.")) % {"max": 1000}
    if len(typed["questions"]) > 2000:
        errors["questions"] = gettext(N_("%(max)d caractères au plus.")) % {"max": 2000}
    return errors


def reason_text(reason: str | None) -> str | None:
    """Why billing refused an enrolment (its `reason`), in the reader's language."""
    if not reason:
        return None
    return translated(reason) if reason in MESSAGES else reason


def shown_enrolment(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An enrolment as the list shows it: whether it may still be cancelled (until enrollment's
    `cancellable_until`), and for its participation link when the room opens (`opens_at`) and whether it is open."""
    session = item["session"]
    starts = datetime.fromisoformat(session["starts_at"])
    cancel_until = (
        datetime.fromisoformat(item["cancellable_until"])
        if item.get("cancellable_until")
        else starts - timedelta(hours=CANCEL_HOURS_BEFORE)
    )
    link = item.get("link") or None
    opens_at = datetime.fromisoformat(link["opens_at"]) if link and link.get("opens_at") else None
    ended = session.get("status") == "ended" or now >= datetime.fromisoformat(session["ends_at"])
    return {
        **item,
        "reason_text": reason_text(item.get("reason")),
        "cancellable": item["status"] in ("pending", "confirmed") and now < cancel_until,
        "cancel_until": cancel_until.isoformat(),
        "opens_at": opens_at,
        "room_open": opens_at is not None and now >= opens_at and not ended,
        "ended": ended,
    }


async def _list(enrollment: Upstream, account_id: uuid.UUID, when: str, limit: int, actor: str) -> Any | None:
    try:
        answer = await enrollment.call(
            "GET", f"/internal/accounts/{account_id}/enrolments?when={when}&limit={limit}", actor=actor
        )
    except ProblemError:
        return None
    return answer.json() if answer.status_code == 200 else None


class EnrolmentPages(Controller):
    include_in_schema = False

    # -- S'inscrire -----------------------------------------------------------------------------------------------

    @post("/planning/sessions/{session_id:uuid}/enrolment", request_max_body_size=FORM_BYTES)
    async def enrol(
        self,
        session_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        catalogue: Upstream,
        billing: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        """ "S'inscrire" (`action=enrol`) or "Rejoindre la liste d'attente" (`action=wait`)."""
        account_id = ensure_managed_account(request, person)
        form = await request.form()
        typed = _typed(form)
        waiting = form.get("action") == "wait"
        errors = _checked(typed)
        if errors:
            return await session_page(
                request, person, catalogue, billing, session_id, None, 400, enrol_typed=typed, enrol_errors=errors
            )
        questions = typed["questions"] or None
        try:
            if waiting:
                participants = int(typed["expected_participants"])
                data = WaitingListRequest(expected_participants=participants, questions=questions)
                answer = await join_waiting_list(enrollment, person, account_id, session_id, data)
            else:
                asked = EnrolmentRequest(
                    session_id=session_id,
                    expected_participants=int(typed["expected_participants"]),
                    questions=questions,
                    privatisation=bool(typed["privatisation"]),
                )
                answer = await ask_enrolment(enrollment, accounts, person, account_id, asked)
        except ValidationError:
            errors = {"questions": gettext(N_("Ce texte contient des caractères non autorisés."))}
            return await session_page(
                request, person, catalogue, billing, session_id, None, 400, enrol_typed=typed, enrol_errors=errors
            )
        except ProblemError as exc:
            answer = None
            problem = {"code": exc.code}
        if answer is not None and answer.status_code in (201, 202):
            if waiting:
                return Redirect("/account/webvisio?done=waiting", status_code=303)
            return Redirect(f"/account/webvisio?done=requested&enrolment={answer.json()['id']}", status_code=303)
        if answer is not None:
            problem = _problem(answer)
        status = form_status(answer.status_code) if answer is not None else 503
        field = problem.get("field")
        key = field if isinstance(field, str) and field in ENROL_FIELDS else "_form"
        return await session_page(
            request, person, catalogue, billing, session_id, None, status, enrol_typed=typed,
            enrol_errors={key: problem_message(problem)}, enrol_code=problem.get("code"),
        )  # fmt: skip

    # -- Mes Webvisio -----------------------------------------------------------------------------------------------

    @get("/account/webvisio")
    async def webvisio(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream, enrollment: Upstream
    ) -> Template:
        return await self._page(request, person, accounts, enrollment)

    @post("/account/webvisio/{enrollment_id:uuid}/cancellation", request_max_body_size=FORM_BYTES)
    async def cancel(
        self,
        enrollment_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = f"/internal/enrolments/{enrollment_id}/cancellation"
        answer = await enrollment.call("POST", path, {"account_id": str(account_id)}, actor=person["user_id"])
        if answer.status_code == 404:
            raise NotFoundException
        if answer.status_code == 200:
            return Redirect("/account/webvisio?done=cancelled", status_code=303)
        errors = {str(enrollment_id): problem_message(_problem(answer))}
        return await self._page(request, person, accounts, enrollment, form_status(answer.status_code), errors)

    @post("/account/webvisio/waiting-list/{entry_id:uuid}/confirmation", request_max_body_size=FORM_BYTES)
    async def take_place(
        self,
        entry_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        answer = await take_offered_place(enrollment, accounts, person["user_id"], account_id, entry_id)
        if answer.status_code == 404:
            raise NotFoundException
        if answer.status_code == 202:
            return Redirect(f"/account/webvisio?done=requested&enrolment={answer.json()['id']}", status_code=303)
        errors = {str(entry_id): problem_message(_problem(answer))}
        return await self._page(request, person, accounts, enrollment, form_status(answer.status_code), errors)

    @post("/account/webvisio/sessions/{session_id:uuid}/waiting-list/leave", request_max_body_size=FORM_BYTES)
    async def leave(
        self,
        session_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        enrollment: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = f"/internal/sessions/{session_id}/waiting-list?account_id={account_id}"
        answer = await enrollment.call("DELETE", path, actor=person["user_id"])
        if answer.status_code == 404:
            raise NotFoundException
        done = "left" if answer.status_code == 204 else "not_left"
        return Redirect(f"/account/webvisio?done={done}", status_code=303)

    async def _page(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
        status_code: int = 200,
        errors: dict[str, str] | None = None,
    ) -> Template:
        account_id = current_account(request, person)
        context: dict[str, Any] = {"errors": errors or {}}
        if account_id is None:
            return await account_page("webvisio.html", request, person, accounts, status_code, state="none", **context)
        upcoming, past = await asyncio.gather(
            _list(enrollment, account_id, "upcoming", 200, person["user_id"]),
            _list(enrollment, account_id, "past", PAST_SHOWN, person["user_id"]),
        )
        if upcoming is None or past is None:
            return await account_page("webvisio.html", request, person, accounts, 503, state="unavailable", **context)
        now = datetime.now(UTC)
        shown_upcoming = [shown_enrolment(item, now) for item in upcoming["items"]]
        return await account_page(
            "webvisio.html", request, person, accounts, status_code, state="shown", upcoming=shown_upcoming,
            past=[shown_enrolment(item, now) for item in past["items"]], waiting_list=upcoming["waiting_list"],
            pending=any(item["status"] == "pending" for item in shown_upcoming), **context,
        )  # fmt: skip
