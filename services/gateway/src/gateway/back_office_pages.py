"""The organisers' back-office pages (docs/portal.md, "Back-office"): the organisers (list, grant by address,
revoke) and the notifier's delivery log.

Organisers only: to anyone else signed in these pages do not exist (404, and a security event), so that the
back-office's shape is not shown to institutions; accounts and the notifier decide again on their side. The
calls are those of the JSON API (gateway.api.OrganisersApi, gateway.backoffice)."""

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway.i18n import N_, gettext
from gateway.messages import problem_message
from gateway.portal import FORM, clip, form_status, page
from gateway.upstream import Upstream
from servicekit.http import ProblemError
from servicekit.logs import security_event

PAGE_SIZE = 50
STATUSES = ("pending", "sent", "failed", "skipped")


async def organiser(person: dict[str, Any]) -> dict[str, Any]:
    """The signed-in organiser; 404 for anyone else signed in (the login page for anyone not signed in)."""
    if not person.get("is_organiser"):
        security_event("access_denied", outcome="not_found", user_id=person.get("user_id"), path="/back-office")
        raise NotFoundException
    return person


class OrganiserForm(BaseModel):
    email: str = ""


class BackOfficePages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    @get("/")
    async def landing(self, organiser: dict[str, Any]) -> Response[Any]:
        return Redirect("/back-office/organisers", status_code=303)

    @get("/organisers")
    async def organisers(self, organiser: dict[str, Any], accounts: Upstream) -> Template:
        return await self._organisers_page(organiser, accounts, 200, OrganiserForm(), {})

    async def _organisers_page(
        self, organiser: dict[str, Any], accounts: Upstream, status_code: int, form: OrganiserForm, errors: Any
    ) -> Template:
        answer = await accounts.call("GET", "/internal/organisers", actor=organiser["user_id"])
        listed = answer.json() if answer.status_code == 200 else []
        return page("back_office_organisers.html", organiser, status_code, organisers=listed, form=form, errors=errors)

    @post("/organisers")
    async def grant(
        self, data: Annotated[OrganiserForm, FORM], organiser: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        body = {"email": clip(data.email).strip()[:320]}
        answer = await accounts.call("POST", "/internal/organisers", body, actor=organiser["user_id"])
        if answer.status_code == 204:
            return Redirect("/back-office/organisers?done=granted", status_code=303)
        problem = answer.json()
        message = (
            gettext(N_("Aucune identité Visiopass n'utilise cette adresse : la personne doit d'abord avoir un compte."))
            if problem.get("code") == "not_found"
            else problem_message(problem)
        )
        form = OrganiserForm(email=body["email"])
        return await self._organisers_page(
            organiser, accounts, form_status(answer.status_code), form, {"email": message}
        )

    @post("/organisers/{user_id:uuid}/revocation")
    async def revoke(self, user_id: uuid.UUID, organiser: dict[str, Any], accounts: Upstream) -> Response[Any]:
        answer = await accounts.call("DELETE", f"/internal/organisers/{user_id}", actor=organiser["user_id"])
        if answer.status_code == 204:
            # one's own role taken away: the back-office is no longer theirs
            target = "/account" if str(user_id) == organiser["user_id"] else "/back-office/organisers?done=revoked"
            return Redirect(target, status_code=303)
        errors = {"_form": problem_message(answer.json())}
        return await self._organisers_page(
            organiser, accounts, form_status(answer.status_code), OrganiserForm(), errors
        )

    @get("/deliveries")
    async def deliveries(
        self,
        organiser: dict[str, Any],
        notifier: Upstream,
        recipient: str = "",
        status: str = "",
        event: str = "",
        offset: str = "0",
    ) -> Template:
        """The delivery log, newest first, a page at a time; `recipient` matches an address's beginning, `event`
        keeps the messages one event caused."""
        recipient = clip(recipient).strip()[:320]
        status = status if status in STATUSES else ""
        event = event if _is_uuid(event) else ""
        start = int(offset) if offset.isdigit() and len(offset) < 10 else 0
        query = {"recipient_prefix": recipient, "status": status, "event_id": event}
        params = {name: value for name, value in query.items() if value} | {"limit": PAGE_SIZE, "offset": start}
        log, error = None, None
        try:
            answer = await notifier.call("GET", f"/internal/deliveries?{urlencode(params)}")
            if answer.status_code == 200:
                log = answer.json()
            else:
                error = problem_message(answer.json()) if answer.status_code < 500 else None
        except ProblemError:  # the notifier is down: the page says so
            pass

        def page_link(at: int) -> str:
            return "?" + urlencode({name: value for name, value in query.items() if value} | {"offset": at})

        return page(
            "back_office_deliveries.html",
            organiser,
            200 if log is not None or error is None else 400,
            log=log,
            error=error,
            recipient=recipient,
            status=status,
            event=event,
            statuses=STATUSES,
            offset=start,
            page_size=PAGE_SIZE,
            previous_link=page_link(max(0, start - PAGE_SIZE)) if start > 0 else None,
            next_link=page_link(start + PAGE_SIZE) if log and start + PAGE_SIZE < log["total"] else None,
        )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36
