"""What an institution receives, and mail that does not arrive (the notifier's preferences, unsubscribe links and
bouncing addresses: docs/notifier.md).

- `/unsubscribe/{token}`: the page a reminder's unsubscribe link opens, no login needed (the signed token is the
  authorisation). The GET only says what will stop (a mail scanner follows links); the POST unsubscribes. The POST
  is also RFC 8058's one-click: a mailbox provider posts `List-Unsubscribe=One-Click` with no cookie and no CSRF
  token, so this one form is exempt from CSRF; it only ever turns reminders off, for the link's institution.
  Rate-limited per address like every form that tries a secret (`login`). An unknown link is a 404 page.
- `POST /hooks/mail/bounces`: the mail provider's bounce reports, with `Authorization: Bearer
  <GATEWAY_BOUNCE_WEBHOOK_TOKEN>` (unset: 404). A JSON report `{"recipient", "type": "hard"|"soft", "reason"}`
  or an RFC 3464 delivery status notification (`multipart/report; report-type=delivery-status`): each recipient
  whose Action is failed with a 5.x.x Status is a hard bounce. Hard bounces are marked in the notifier; soft ones
  are acknowledged (202) and ignored, the delivery loop retries those itself.
- "Mon compte" > Notifications: whether the institution gets reminders (its managers change it; members see it),
  and the dashboard's list of the account's bouncing addresses, with "try this address again"
  (`POST /account/bounces/retry`)."""

import email
import email.policy
import hmac
import json
import re
from email.message import Message
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.base import Email
from gateway.account_pages import account_page, ensure_managed_account
from gateway.limits import RATE_LIMIT
from gateway.portal import FORM, page
from gateway.upstream import Upstream
from gateway.web import current_account
from servicekit.http import ProblemError
from servicekit.inputs import check_json_body, text

UNSUBSCRIBE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,100}\.[A-Za-z0-9_-]{1,100}")
MAX_REPORT_BYTES = 256 * 1024
MAX_DSN_RECIPIENTS = 50
# Not a form of ours: the unguessable signed token is the authorisation (module docstring)
ONE_CLICK = RATE_LIMIT("login") | {"exclude_from_csrf": True}
Model = TypeVar("Model", bound=BaseModel)


# -- the unsubscribe link -----------------------------------------------------------------------------------------


class UnsubscribePages(Controller):
    path = "/unsubscribe"
    include_in_schema = False

    @get("/{token:str}")
    async def confirm_page(self, token: str, visitor: dict[str, Any] | None, notifier: Upstream) -> Template:
        if not UNSUBSCRIBE_TOKEN.fullmatch(token):
            return page("unsubscribe.html", visitor, 404, state="unknown")
        answer = await notifier.call("GET", f"/internal/unsubscribe/{token}")
        if answer.status_code != 200:
            return _refused(visitor, answer.status_code)
        return page("unsubscribe.html", visitor, state="confirm", token=token)

    @post("/{token:str}", opt=ONE_CLICK, status_code=200)
    async def unsubscribe(self, token: str, visitor: dict[str, Any] | None, notifier: Upstream) -> Template:
        """Whatever the body (the provider's `List-Unsubscribe=One-Click`, or the page's button)."""
        if not UNSUBSCRIBE_TOKEN.fullmatch(token):
            return page("unsubscribe.html", visitor, 404, state="unknown")
        answer = await notifier.call("POST", "/internal/unsubscribe", {"token": token})
        if answer.status_code != 200:
            return _refused(visitor, answer.status_code)
        return page("unsubscribe.html", visitor, state="done")


def _refused(visitor: dict[str, Any] | None, status_code: int) -> Template:
    if status_code == 404:
        return page("unsubscribe.html", visitor, 404, state="unknown")
    return page("unsubscribe.html", visitor, 502, state="unavailable")


# -- bounce reports -----------------------------------------------------------------------------------------------


class BounceReport(BaseModel):
    model_config = ConfigDict(extra="ignore")  # providers add their own fields

    recipient: Email
    type: Literal["hard", "soft"]
    reason: text(1000) = ""  # type: ignore[valid-type]


class BounceHook(Controller):
    path = "/hooks/mail"
    include_in_schema = False

    @post("/bounces", opt=ONE_CLICK, status_code=202, request_max_body_size=MAX_REPORT_BYTES)
    async def bounces(self, request: Request[Any, Any, Any], notifier: Upstream) -> dict[str, Any]:
        expected = request.app.state.get("bounce_webhook_token")
        check_bearer(request, expected, "A bounce report needs the provider's token.")
        body = await request.body()
        content_type = request.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/report"):
            hard = _failed_recipients(content_type, body)
        else:
            report = json_model(body, BounceReport)
            hard = [(report.recipient, report.reason or "hard bounce")] if report.type == "hard" else []
        for recipient, reason in hard:
            answer = await notifier.call("POST", "/internal/bounces", {"recipient": recipient, "reason": reason})
            if answer.status_code != 200:
                raise ProblemError(502, "upstream_error", "Service error", "The bounce could not be recorded.")
        return {"marked": [recipient.lower() for recipient, _ in hard]}


def check_bearer(request: Request[Any, Any, Any], expected: str | None, refusal_detail: str) -> None:
    """A provider's webhook: its `Authorization: Bearer` must be `expected` (compared in constant time); 401
    otherwise, and 404 when no token is configured (the route does not exist)."""
    if not expected:
        raise NotFoundException
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        refusal = ProblemError(401, "unauthorized", "Unauthorized", refusal_detail)
        refusal.headers = {"WWW-Authenticate": "Bearer"}
        raise refusal


def _invalid(detail: str) -> ProblemError:
    return ProblemError(400, "invalid_request", "Invalid request", detail)


def json_model(body: bytes, model: type[Model]) -> Model:
    """A webhook's JSON body as `model`, or a 400 problem naming the field at fault."""
    check_json_body(body)
    try:
        return model.model_validate(json.loads(body))
    except json.JSONDecodeError:
        raise ProblemError(400, "invalid_body", "Invalid body", "The body is not valid JSON.") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise _invalid(f"{field}: {error['msg']}") from None


def _failed_recipients(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The hard bounces of an RFC 3464 report: each recipient whose Action is failed with a permanent (5.x.x)
    Status, with the server's Diagnostic-Code or the Status as the reason."""
    if "\r" in content_type or "\n" in content_type:
        raise _invalid("Content-Type: one line")
    report = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("ascii", "replace") + body, policy=email.policy.compat32
    )
    status = next((part for part in report.walk() if part.get_content_type() == "message/delivery-status"), None)
    if status is None or not isinstance(status.get_payload(), list):
        raise _invalid("A multipart/report needs a message/delivery-status part.")
    groups: list[Message] = status.get_payload()[1:]  # the first group is about the message, then one per recipient
    hard = []
    for group in groups[:MAX_DSN_RECIPIENTS]:
        recipient = str(group.get("Final-Recipient", "")).partition(";")[2].strip()
        code = str(group.get("Status", "")).strip()
        if str(group.get("Action", "")).strip().lower() == "failed" and code.startswith("5.") and "@" in recipient:
            reason = " ".join(str(group.get("Diagnostic-Code") or f"status {code}").split())[:1000]
            hard.append((recipient[:320], reason))
    return hard


# -- "Mon compte": notifications ----------------------------------------------------------------------------------


class PreferencesForm(BaseModel):
    reminders: str = ""  # "on" when the box is ticked; absent otherwise


class RetryForm(BaseModel):
    address: Annotated[str, Field(max_length=320)] = ""


class NotificationPages(Controller):
    path = "/account"
    include_in_schema = False

    @get("/notifications")
    async def notifications(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream, notifier: Upstream
    ) -> Template:
        account_id = current_account(request, person)
        choice = None
        if account_id is not None:
            answer = await notifier.call("GET", f"/internal/accounts/{account_id}/preferences")
            choice = answer.json() if answer.status_code == 200 else None
        return await account_page(
            "account_notifications.html", request, person, accounts, choice=choice, unavailable=choice is None
        )

    @post("/notifications")
    async def choose(
        self,
        data: Annotated[PreferencesForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        notifier: Upstream,
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        body = {"reminders": data.reminders == "on"}
        path = f"/internal/accounts/{account_id}/preferences"
        answer = await notifier.call("PUT", path, body, actor=person["user_id"])
        if answer.status_code != 200:
            raise ProblemError(502, "upstream_error", "Service error", "The choice could not be saved.")
        return Redirect("/account/notifications?done=saved", status_code=303)

    @post("/bounces/retry")
    async def retry(
        self,
        data: Annotated[RetryForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        notifier: Upstream,
    ) -> Response[Any]:
        """The manager fixed the address (or wants it tried again): mail goes to it again."""
        account_id = ensure_managed_account(request, person)
        address = quote(data.address.strip().lower(), safe="")
        if not address:
            raise NotFoundException
        answer = await notifier.call("DELETE", f"/internal/accounts/{account_id}/bounces/{address}")
        if answer.status_code == 404:
            raise NotFoundException
        if answer.status_code != 204:
            raise ProblemError(502, "upstream_error", "Service error", "The address could not be cleared.")
        return Redirect("/account?done=address_retried", status_code=303)
