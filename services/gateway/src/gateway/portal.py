"""Server-rendered pages anyone can open: the landing page, help, sign-up, login and logout, the language switch,
and what mailed links open (email verification, forgotten password, invitations, email changes).

Every page takes the `visitor` (gateway.web: the logged-in person or None, and the request's language) and is
rendered with `page()`; every form carries a CSRF token (Litestar's middleware refuses a POST without it). A
refused form comes back with the values typed (never a password) and each problem next to its field
(gateway.messages). A GET never consumes a mailed token: mail scanners follow links; the person confirms with
a POST.
"""

import math
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway import i18n
from gateway.messages import form_errors, problem_message
from gateway.sessions import Sessions
from gateway.source import client_address
from gateway.upstream import Upstream
from gateway.web import end_web_session, open_web_session, remember_language, safe_next

TEMPLATES = Path(__file__).parent / "templates"
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
MAX_FIELD = 1024  # a form field longer than any column is cut here; the service refuses what is still too long


def page(template: str, visitor: dict[str, Any] | None, status_code: int = 200, **context: Any) -> Template:
    return Template(template, context={"visitor": visitor, **context}, status_code=status_code)


def cookie_secure(request: Request[Any, Any, Any]) -> bool:
    return bool(request.app.state.get("cookie_secure"))


def clip(value: str) -> str:
    return value[:MAX_FIELD]


class TokenForm(BaseModel):
    token: str = ""


class EmailForm(BaseModel):
    email: str = ""


class ResetForm(BaseModel):
    token: str = ""
    new_password: str = ""


class SignUpForm(BaseModel):
    institution_kind: str = "school"
    institution_name: str = ""
    institution_identifier: str = ""
    city: str = ""
    contact_name: str = ""
    email: str = ""
    password: str = ""


SIGN_UP_FIELDS = tuple(SignUpForm.model_fields)


class LoginForm(BaseModel):
    email: str = ""
    password: str = ""
    next: str = ""


class LanguageForm(BaseModel):
    language: str = "fr"
    next: str = "/"


class Portal(Controller):
    include_in_schema = False

    @get("/")
    async def home(self, visitor: dict[str, Any] | None) -> Template:
        return page("home.html", visitor)

    @get("/help")
    async def help(self, visitor: dict[str, Any] | None) -> Template:
        return page("help.html", visitor)

    @post("/language")
    async def choose_language(
        self,
        data: Annotated[LanguageForm, FORM],
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        accounts: Upstream,
    ) -> Response[Any]:
        """The language of the portal and, for a logged-in person, of their emails too (kept by accounts)."""
        language = i18n.language_or_default(data.language)
        if visitor is not None:
            await accounts.call("PATCH", f"/internal/users/{visitor['user_id']}", {"language": language})
        response: Response[Any] = Redirect(safe_next(data.next, "/"), status_code=303)
        remember_language(response, language, cookie_secure(request))
        return response

    # -- sign-up and the verification of its email ----------------------------------------------------------

    @get("/signup")
    async def sign_up_page(self, visitor: dict[str, Any] | None) -> Template:
        return page("signup.html", visitor, form=SignUpForm(), errors={})

    @post("/signup")
    async def sign_up(
        self,
        data: Annotated[SignUpForm, FORM],
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        accounts: Upstream,
    ) -> Template:
        kind = data.institution_kind if data.institution_kind in ("school", "company", "other") else "school"
        body = {
            "institution_kind": kind,
            "institution_name": clip(data.institution_name),
            "institution_identifier": clip(data.institution_identifier).strip() or None,
            "city": clip(data.city).strip() or None,
            "contact_name": clip(data.contact_name),
            "email": clip(data.email).strip(),
            "password": clip(data.password),
            "language": i18n.current_language.get(),
            "source": client_address(request),
        }
        response = await accounts.call("POST", "/internal/accounts/", body)
        if response.status_code == 201:
            return page("signup.html", visitor, state="sent", email=body["email"])
        problem = response.json()
        errors = form_errors(problem, SIGN_UP_FIELDS)
        if problem.get("code") == "institution_exists":
            errors = {"institution_identifier": problem_message(problem)}
        form = data.model_copy(update={"password": "", "institution_kind": kind})
        return page("signup.html", visitor, status_code=form_status(response.status_code), form=form, errors=errors)

    @get("/verify-email")
    async def verify_page(self, visitor: dict[str, Any] | None, token: str = "") -> Template:
        return page("verify_email.html", visitor, token=token, state="confirm")

    @post("/verify-email")
    async def verify(
        self, data: Annotated[TokenForm, FORM], visitor: dict[str, Any] | None, accounts: Upstream
    ) -> Template:
        response = await accounts.call("POST", "/internal/accounts/verification", {"token": data.token[:200]})
        state = "verified" if response.status_code == 200 else "invalid"
        return page("verify_email.html", visitor, 200 if state == "verified" else 400, token="", state=state)

    @get("/verification/resend")
    async def resend_page(self, visitor: dict[str, Any] | None) -> Template:
        return page("resend_verification.html", visitor, state="ask")

    @post("/verification/resend")
    async def resend(
        self,
        data: Annotated[EmailForm, FORM],
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        accounts: Upstream,
    ) -> Template:
        path = "/internal/accounts/verification/resend"
        return await mail_request_form("resend_verification.html", path, data, request, visitor, accounts)

    # -- login, logout ------------------------------------------------------------------------------------

    @get("/login")
    async def login_page(self, visitor: dict[str, Any] | None, next: str = "") -> Response[Any]:
        if visitor is not None:
            return Redirect(safe_next(next), status_code=303)
        return page("login.html", visitor, email="", next=safe_next(next), error=None)

    @post("/login")
    async def log_in(
        self,
        data: Annotated[LoginForm, FORM],
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        accounts: Upstream,
        sessions: Sessions,
    ) -> Response[Any]:
        email = clip(data.email).strip()[:320]
        body = {"email": email, "password": clip(data.password), "source": client_address(request)}
        answer = await accounts.call("POST", "/internal/sessions", body)
        target = safe_next(data.next)
        if answer.status_code != 201:
            problem = answer.json()
            error = problem_message(problem)
            if retry_after := problem.get("retry_after"):
                minutes = max(1, math.ceil(int(retry_after) / 60))
                error = i18n.ngettext(
                    "Trop de tentatives : réessayez dans %(num)d minute.",
                    "Trop de tentatives : réessayez dans %(num)d minutes.",
                    minutes,
                ) % {"num": minutes}
            refused = page(
                "login.html", visitor, form_status(answer.status_code), email=email, next=target, error=error
            )
            if retry_after:
                refused.headers["Retry-After"] = str(retry_after)
            return refused
        opened = answer.json()
        remaining = datetime.fromisoformat(opened["expires_at"]) - datetime.now(UTC)
        max_age = int(min(remaining, sessions.lifetime).total_seconds())
        response: Response[Any] = Redirect(target, status_code=303)
        open_web_session(response, sessions.issue(uuid.UUID(opened["session_id"])), max_age, cookie_secure(request))
        remember_language(response, opened["identity"]["language"], cookie_secure(request))
        return response

    @post("/logout")
    async def log_out(self, visitor: dict[str, Any] | None, accounts: Upstream) -> Response[Any]:
        if visitor is not None:
            await accounts.call("DELETE", f"/internal/sessions/{visitor['session_id']}")
        response: Response[Any] = Redirect("/login?logged_out=1", status_code=303)
        end_web_session(response)
        return response

    @post("/logout-everywhere")
    async def log_out_everywhere(self, visitor: dict[str, Any] | None, accounts: Upstream) -> Response[Any]:
        if visitor is not None:
            await accounts.call("POST", f"/internal/users/{visitor['user_id']}/logout-everywhere")
        response: Response[Any] = Redirect("/login?logged_out=all", status_code=303)
        end_web_session(response)
        return response

    # -- forgotten password, invitations, email changes: what mailed links open -----------------------------

    @get("/forgot-password")
    async def forgot_page(self, visitor: dict[str, Any] | None) -> Template:
        return page("forgot_password.html", visitor, state="ask")

    @post("/forgot-password")
    async def forgot(
        self,
        data: Annotated[EmailForm, FORM],
        request: Request[Any, Any, Any],
        visitor: dict[str, Any] | None,
        accounts: Upstream,
    ) -> Template:
        path = "/internal/password-resets/"
        return await mail_request_form("forgot_password.html", path, data, request, visitor, accounts)

    @get("/reset-password")
    async def reset_page(self, visitor: dict[str, Any] | None, token: str = "") -> Template:
        return page("reset_password.html", visitor, token=token, state="form")

    @post("/reset-password")
    async def reset(
        self, data: Annotated[ResetForm, FORM], visitor: dict[str, Any] | None, accounts: Upstream
    ) -> Template:
        path = "/internal/password-resets/confirmation"
        return await password_form("reset_password.html", path, data, visitor, accounts)

    @get("/accept-invitation")
    async def invitation_page(self, visitor: dict[str, Any] | None, token: str = "") -> Template:
        return page("accept_invitation.html", visitor, token=token, state="form")

    @post("/accept-invitation")
    async def accept_invitation(
        self, data: Annotated[ResetForm, FORM], visitor: dict[str, Any] | None, accounts: Upstream
    ) -> Template:
        path = "/internal/invitations/acceptance"
        return await password_form("accept_invitation.html", path, data, visitor, accounts)

    @get("/join")
    async def join_page(self, visitor: dict[str, Any] | None, token: str = "") -> Template:
        # A join request mailed to someone who has an identity: the GET only asks, the POST accepts.
        return page("join.html", visitor, token=token, state="confirm")

    @post("/join")
    async def join(
        self, data: Annotated[TokenForm, FORM], visitor: dict[str, Any] | None, accounts: Upstream
    ) -> Template:
        response = await accounts.call("POST", "/internal/join-requests/acceptance", {"token": data.token[:200]})
        joined = response.status_code == 200
        return page("join.html", visitor, 200 if joined else 400, state="joined" if joined else "invalid")

    @get("/confirm-email")
    async def confirm_email_page(self, visitor: dict[str, Any] | None, token: str = "") -> Template:
        return page("confirm_email.html", visitor, token=token, state="confirm")

    @post("/confirm-email")
    async def confirm_email(
        self, data: Annotated[TokenForm, FORM], visitor: dict[str, Any] | None, accounts: Upstream
    ) -> Template:
        path = "/internal/email-changes/confirmation"
        return await email_link_form("confirm_email.html", path, data, visitor, accounts)

    @get("/revert-email")
    async def revert_email_page(self, visitor: dict[str, Any] | None, token: str = "") -> Template:
        # Mailed to the old address after a change ("this was not me"); only the POST acts.
        return page("revert_email.html", visitor, token=token, state="confirm")

    @post("/revert-email")
    async def revert_email(
        self, data: Annotated[TokenForm, FORM], visitor: dict[str, Any] | None, accounts: Upstream
    ) -> Template:
        return await email_link_form("revert_email.html", "/internal/email-changes/reversal", data, visitor, accounts)


def form_status(upstream_status: int) -> int:
    """The status of a form page shown again: the service's refusal, a 502 when it failed."""
    return upstream_status if 400 <= upstream_status < 500 else 502


async def mail_request_form(
    template: str,
    path: str,
    data: EmailForm,
    request: Request[Any, Any, Any],
    visitor: dict[str, Any] | None,
    accounts: Upstream,
) -> Template:
    """Ask accounts to mail a link to an address: the same "sent" page whether the address exists or not (only
    the per-source limit shows)."""
    body = {"email": clip(data.email).strip()[:320], "source": client_address(request)}
    response = await accounts.call("POST", path, body)
    if response.status_code == 429:
        return page(template, visitor, 429, state="ask", error=problem_message(response.json()))
    return page(template, visitor, state="sent")


async def email_link_form(
    template: str, path: str, data: TokenForm, visitor: dict[str, Any] | None, accounts: Upstream
) -> Template:
    """Post an email link's token; the page says which address the account now uses, or why not."""
    response = await accounts.call("POST", path, {"token": data.token[:200]})
    if response.status_code == 200:
        return page(template, visitor, state="done", email=response.json()["email"])
    state = "taken" if response.json().get("code") == "email_taken" else "invalid"
    return page(template, visitor, 400, state=state)


async def password_form(
    template: str, path: str, data: ResetForm, visitor: dict[str, Any] | None, accounts: Upstream
) -> Template:
    """Post a mailed link's token and the chosen password; the page again with the reason when refused."""
    if not 10 <= len(data.token) <= 200:
        return page(template, visitor, 400, state="invalid")
    response = await accounts.call("POST", path, {"token": data.token, "new_password": clip(data.new_password)})
    if response.status_code == 200:
        return page(template, visitor, state="done")
    problem = response.json()
    state = "invalid" if problem.get("code") == "invalid_token" else "form"
    errors = {"new_password": problem_message(problem)} if state == "form" else {}
    return page(template, visitor, 400, token=data.token, state=state, errors=errors)
