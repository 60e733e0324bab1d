"""The "Webhooks" tab of Mon compte (docs/portal.md, "Mon compte: Webhooks"): the institution's outgoing webhook
endpoints, for its managers, through the notifier's internal API as the JSON API (`gateway.webhooks`) calls it.

- `/account/webhooks`: the endpoints (URL, events, status and why one was disabled, a button to re-enable it) and
  the form to add one (URL, description, the events ticked). A plain member reads a sentence saying the managers
  manage them; a form posted by a member is refused (403) whatever it holds.
- `/account/webhooks/{id}`: one endpoint: edit it, send a test event, rotate its secret (how long the old one
  still signs), delete it (confirmed), and its recent deliveries, page by page.

The institution is `web.current_account`'s (never a form's): an endpoint of another institution is not found
(404). A new endpoint's secret, and a rotated one, are shown once, on the answer to the POST itself
(`webhook_secret.html`): never in a URL, a cookie or a log. Other forms that worked redirect (303) with `?done=`."""

import math
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from gateway.account_pages import account_page, ensure_managed_account
from gateway.i18n import N_, gettext
from gateway.member_pages import page_number
from gateway.messages import problem_message
from gateway.portal import clip, form_status
from gateway.upstream import Upstream
from gateway.web import current_account
from servicekit.http import ProblemError

PAGE_SIZE = 20  # deliveries per page
MAX_URL = 2000  # the notifier's limit
MAX_DESCRIPTION = 200
OVERLAP_CHOICES = (0, 1, 24, 72)  # hours the old secret still signs after a rotation
EVENT_LABELS = {
    "enrolment.confirmed": N_("Inscription à une Webvisio confirmée"),
    "enrolment.cancelled": N_("Inscription à une Webvisio annulée"),
    "participation_link.issued": N_("Lien de participation envoyé"),
    "invoice.issued": N_("Facture émise"),
    "tokens.credited": N_("Jetons crédités"),
    "ping": N_("Événement de test"),
}
DELIVERY_STATUSES = {  # the notifier's delivery log
    "pending": N_("En attente"),
    "sent": N_("Envoyé"),
    "failed": N_("Échec"),
}
DONE = {
    "saved": N_("Webhook enregistré."),
    "enabled": N_("Webhook réactivé : les événements lui sont de nouveau envoyés."),
    "disabled": N_("Webhook désactivé : plus rien ne lui est envoyé."),
    "deleted": N_("Webhook supprimé."),
    "tested": N_("Événement de test envoyé : il apparaît dans les envois ci-dessous."),
}


def event_label(event_type: str) -> str:
    return gettext(EVENT_LABELS[event_type]) if event_type in EVENT_LABELS else event_type


def delivery_status(status: str) -> str:
    return gettext(DELIVERY_STATUSES[status]) if status in DELIVERY_STATUSES else status


def _problem(answer: Any) -> dict[str, Any]:
    problem: dict[str, Any] = answer.json() if answer.status_code < 500 else {"code": "upstream_error"}
    return problem


def _errors(problem: dict[str, Any]) -> dict[str, str]:
    """The notifier's refusal next to the field it is about (`url`, `events`, `description`), else above the form."""
    field = str(problem.get("field") or problem.get("code") or "")
    for name in ("url", "events", "description"):
        if field == name or field.startswith(name.rstrip("s")):
            return {name: problem_message(problem)}
    return {"_form": problem_message(problem)}


async def _read_form(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The endpoint form as typed ({url, description, events}) and what the gateway refuses alone."""
    form = await request.form()
    url = clip(str(form.get("url") or "")).strip()
    description = clip(str(form.get("description") or "")).strip()
    events = [clip(str(event)) for event in form.getall("events", [])][:20]
    typed = {"url": url, "description": description, "events": events}
    errors: dict[str, str] = {}
    if not url:
        errors["url"] = gettext(N_("Indiquez l'adresse HTTPS qui recevra les événements."))
    elif not url.lower().startswith("https://"):
        errors["url"] = gettext(N_("L'adresse doit commencer par https:// : les envois sont toujours chiffrés."))
    elif len(url) > MAX_URL:
        errors["url"] = gettext(N_("Cette adresse est trop longue."))
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = gettext(N_("La description compte au plus 200 caractères."))
    if not events:
        errors["events"] = gettext(N_("Choisissez au moins un événement."))
    return typed, errors


class WebhookPages(Controller):
    path = "/account/webhooks"
    include_in_schema = False

    @get("/")
    async def webhooks(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream, notifier: Upstream
    ) -> Template:
        done = request.query_params.get("done")
        notice = gettext(DONE[done]) if done in DONE else None
        return await self._list(request, person, accounts, notifier, done_notice=notice)

    @post("/")
    async def add(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream, notifier: Upstream
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        typed, errors = await _read_form(request)
        if errors:
            return await self._list(request, person, accounts, notifier, 400, form=typed, errors=errors)
        body = {
            "url": typed["url"],
            "events": typed["events"],
            "description": typed["description"] or None,
            "created_by_email": person["email"],
            "language": person.get("language") or "fr",
        }
        answer = await notifier.call("POST", f"/internal/accounts/{account_id}/webhooks", body, actor=person["user_id"])
        if answer.status_code != 201:
            errors = _errors(_problem(answer))
            status = form_status(answer.status_code)
            return await self._list(request, person, accounts, notifier, status, form=typed, errors=errors)
        return await self._secret(request, person, accounts, answer.json(), "created")

    @get("/{webhook_id:uuid}")
    async def webhook(
        self,
        webhook_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
        page: str = "1",
    ) -> Template:
        done = request.query_params.get("done")
        notice = gettext(DONE[done]) if done in DONE else None
        number = page_number(page)
        return await self._detail(request, person, accounts, notifier, webhook_id, number, done_notice=notice)

    @post("/{webhook_id:uuid}")
    async def edit(
        self,
        webhook_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        typed, errors = await _read_form(request)
        if not errors:
            changes = {"url": typed["url"], "events": typed["events"], "description": typed["description"] or None}
            path = f"/internal/accounts/{account_id}/webhooks/{webhook_id}"
            answer = await notifier.call("PATCH", path, changes, actor=person["user_id"])
            if answer.status_code == 200:
                return _done(webhook_id, "saved")
            if answer.status_code == 404:
                raise NotFoundException
            errors, status = _errors(_problem(answer)), form_status(answer.status_code)
        else:
            status = 400
        return await self._detail(request, person, accounts, notifier, webhook_id, 1, status, form=typed, errors=errors)

    @post("/{webhook_id:uuid}/status")
    async def change_status(
        self,
        webhook_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
    ) -> Response[Any]:
        """Re-enable an endpoint (after repeated failures, or after it was disabled), or disable it."""
        account_id = ensure_managed_account(request, person)
        status = str((await request.form()).get("status") or "")
        if status not in ("active", "disabled"):
            status = "active"
        path = f"/internal/accounts/{account_id}/webhooks/{webhook_id}"
        answer = await notifier.call("PATCH", path, {"status": status}, actor=person["user_id"])
        done = "enabled" if status == "active" else "disabled"
        return await self._after(request, person, accounts, notifier, webhook_id, answer, 200, done)

    @post("/{webhook_id:uuid}/test")
    async def send_test(
        self,
        webhook_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = f"/internal/accounts/{account_id}/webhooks/{webhook_id}/test"
        answer = await notifier.call("POST", path, actor=person["user_id"])
        return await self._after(request, person, accounts, notifier, webhook_id, answer, 202, "tested")

    @post("/{webhook_id:uuid}/rotation")
    async def rotate_secret(
        self,
        webhook_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
    ) -> Response[Any]:
        """A new secret, shown once on this answer; the old one still signs for the hours chosen."""
        account_id = ensure_managed_account(request, person)
        chosen = str((await request.form()).get("overlap_hours") or "")
        overlap = int(chosen) if chosen in {str(hours) for hours in OVERLAP_CHOICES} else 24
        path = f"/internal/accounts/{account_id}/webhooks/{webhook_id}/rotate-secret"
        answer = await notifier.call("POST", path, {"overlap_hours": overlap}, actor=person["user_id"])
        if answer.status_code == 200:
            return await self._secret(request, person, accounts, answer.json(), "rotated")
        return await self._after(request, person, accounts, notifier, webhook_id, answer, 200, "")

    @post("/{webhook_id:uuid}/removal")
    async def remove(
        self,
        webhook_id: uuid.UUID,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = f"/internal/accounts/{account_id}/webhooks/{webhook_id}"
        answer = await notifier.call("DELETE", path, actor=person["user_id"])
        if answer.status_code == 204:
            return Redirect("/account/webhooks?done=deleted", status_code=303)
        return await self._after(request, person, accounts, notifier, webhook_id, answer, 204, "")

    # -- shared ---------------------------------------------------------------------------------------------

    async def _after(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
        webhook_id: uuid.UUID,
        answer: Any,
        success: int,
        done: str,
    ) -> Response[Any]:
        """After an action on one endpoint: its page with what happened (303), not found, or the refusal on it."""
        if answer.status_code == success:
            return _done(webhook_id, done)
        if answer.status_code == 404:
            raise NotFoundException
        error = problem_message(_problem(answer))
        status = form_status(answer.status_code)
        return await self._detail(request, person, accounts, notifier, webhook_id, 1, status, error=error)

    async def _list(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        """The list and the form to add one; `context`: a notice, or the form as typed with its errors."""
        context = {"form": {"url": "", "description": "", "events": []}, "errors": {}, **context}
        account_id = current_account(request, person)
        if account_id is None:
            return await account_page("webhooks.html", request, person, accounts, status_code, state="none", **context)
        if person["memberships"].get(str(account_id)) != "manager":
            return await account_page(
                "webhooks.html", request, person, accounts, status_code, state="member", **context
            )
        try:
            answer = await notifier.call("GET", f"/internal/accounts/{account_id}/webhooks", actor=person["user_id"])
            types = await notifier.call("GET", "/internal/webhook-event-types")
        except ProblemError:
            answer = types = None
        if answer is None or types is None or answer.status_code != 200 or types.status_code != 200:
            error = problem_message({"code": "upstream_unavailable"})
            return await account_page("webhooks.html", request, person, accounts, 503, state="error", error=error)
        return await account_page(
            "webhooks.html",
            request,
            person,
            accounts,
            status_code,
            state="list",
            endpoints=answer.json()["endpoints"],
            event_types=types.json()["event_types"],
            event_label=event_label,
            **context,
        )

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        notifier: Upstream,
        webhook_id: uuid.UUID,
        number: int,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        """One endpoint's page with its deliveries (page `number`); `context`: a notice, a refusal, the edit form
        as typed with its errors."""
        account_id = current_account(request, person)
        if account_id is None:
            raise NotFoundException
        if person["memberships"].get(str(account_id)) != "manager":
            return await account_page("webhook.html", request, person, accounts, 403, state="member")
        base = f"/internal/accounts/{account_id}/webhooks/{webhook_id}"
        offset = (number - 1) * PAGE_SIZE
        try:
            answer = await notifier.call("GET", base, actor=person["user_id"])
            if answer.status_code == 404:
                raise NotFoundException
            deliveries = await notifier.call(
                "GET", f"{base}/deliveries?limit={PAGE_SIZE}&offset={offset}", actor=person["user_id"]
            )
            types = await notifier.call("GET", "/internal/webhook-event-types")
        except ProblemError:
            answer = deliveries = types = None
        if any(reply is None or reply.status_code != 200 for reply in (answer, deliveries, types)):
            error = problem_message({"code": "upstream_unavailable"})
            return await account_page("webhook.html", request, person, accounts, 503, state="error", error=error)
        assert answer is not None and deliveries is not None and types is not None
        endpoint = answer.json()
        listing = deliveries.json()
        form = {"url": endpoint["url"], "description": endpoint.get("description") or "", "events": endpoint["events"]}
        context = {"form": form, "errors": {}, **context}
        return await account_page(
            "webhook.html",
            request,
            person,
            accounts,
            status_code,
            state="endpoint",
            endpoint=endpoint,
            deliveries=listing["deliveries"],
            page_number=number,
            pages=max(1, math.ceil(listing["total"] / PAGE_SIZE)),
            event_types=types.json()["event_types"],
            event_label=event_label,
            delivery_status=delivery_status,
            overlap_choices=OVERLAP_CHOICES,
            **context,
        )

    async def _secret(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        endpoint: dict[str, Any],
        kind: str,
    ) -> Template:
        """The secret, shown this once (the answer to the POST; never in a URL, a cookie or a log)."""
        return await account_page(
            "webhook_secret.html", request, person, accounts, endpoint=endpoint, kind=kind, event_label=event_label
        )


def _done(webhook_id: uuid.UUID, what: str) -> Response[Any]:
    return Redirect(f"/account/webhooks/{webhook_id}?done={what}", status_code=303)
