"""Server-rendered pages: the landing page and what mailed links open (email verification, forgotten password,
invitations, email changes). Forms carry a CSRF token."""

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template
from pydantic import BaseModel

from gateway.source import client_address
from gateway.upstream import Upstream

TEMPLATES = Path(__file__).parent / "templates"


class VerifyForm(BaseModel):
    token: str = ""


class ForgotForm(BaseModel):
    email: str = ""


class ResetForm(BaseModel):
    token: str = ""
    new_password: str = ""


class Portal(Controller):
    include_in_schema = False

    @get("/")
    async def home(self) -> Template:
        return Template("home.html")

    @get("/verify-email")
    async def verify_page(self, token: str = "") -> Template:
        # A GET never consumes the token: mail scanners follow links; the person confirms with a POST.
        return Template("verify_email.html", context={"token": token, "state": "confirm"})

    @post("/verify-email")
    async def verify(
        self, data: Annotated[VerifyForm, Body(media_type=RequestEncodingType.URL_ENCODED)], accounts: Upstream
    ) -> Template:
        response = await accounts.call("POST", "/internal/accounts/verification", {"token": data.token})
        state = "verified" if response.status_code == 200 else "invalid"
        context: dict[str, Any] = {"token": "", "state": state}
        return Template("verify_email.html", context=context, status_code=200 if state == "verified" else 400)

    @get("/forgot-password")
    async def forgot_page(self) -> Template:
        return Template("forgot_password.html", context={"state": "ask"})

    @post("/forgot-password")
    async def forgot(
        self,
        data: Annotated[ForgotForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        request: Request[Any, Any, Any],
        accounts: Upstream,
    ) -> Template:
        await accounts.call(
            "POST", "/internal/password-resets/", {"email": data.email[:320], "source": client_address(request)}
        )
        return Template("forgot_password.html", context={"state": "sent"})

    @get("/reset-password")
    async def reset_page(self, token: str = "") -> Template:
        return Template("reset_password.html", context={"token": token, "state": "form"})

    @post("/reset-password")
    async def reset(
        self, data: Annotated[ResetForm, Body(media_type=RequestEncodingType.URL_ENCODED)], accounts: Upstream
    ) -> Template:
        return await password_form("reset_password.html", "/internal/password-resets/confirmation", data, accounts)

    @get("/accept-invitation")
    async def invitation_page(self, token: str = "") -> Template:
        return Template("accept_invitation.html", context={"token": token, "state": "form"})

    @post("/accept-invitation")
    async def accept_invitation(
        self, data: Annotated[ResetForm, Body(media_type=RequestEncodingType.URL_ENCODED)], accounts: Upstream
    ) -> Template:
        return await password_form("accept_invitation.html", "/internal/invitations/acceptance", data, accounts)

    @get("/join")
    async def join_page(self, token: str = "") -> Template:
        # A join request mailed to someone who has an identity: the GET only asks, the POST accepts.
        return Template("join.html", context={"token": token, "state": "confirm"})

    @post("/join")
    async def join(
        self, data: Annotated[VerifyForm, Body(media_type=RequestEncodingType.URL_ENCODED)], accounts: Upstream
    ) -> Template:
        response = await accounts.call("POST", "/internal/join-requests/acceptance", {"token": data.token[:200]})
        joined = response.status_code == 200
        return Template(
            "join.html", context={"state": "joined" if joined else "invalid"}, status_code=200 if joined else 400
        )

    @get("/confirm-email")
    async def confirm_email_page(self, token: str = "") -> Template:
        # As for /verify-email: the GET only shows the button, the POST consumes the token.
        return Template("confirm_email.html", context={"token": token, "state": "confirm"})

    @post("/confirm-email")
    async def confirm_email(
        self, data: Annotated[VerifyForm, Body(media_type=RequestEncodingType.URL_ENCODED)], accounts: Upstream
    ) -> Template:
        return await email_link_form("confirm_email.html", "/internal/email-changes/confirmation", data, accounts)

    @get("/revert-email")
    async def revert_email_page(self, token: str = "") -> Template:
        # Mailed to the old address after a change ("this was not me"); only the POST acts.
        return Template("revert_email.html", context={"token": token, "state": "confirm"})

    @post("/revert-email")
    async def revert_email(
        self, data: Annotated[VerifyForm, Body(media_type=RequestEncodingType.URL_ENCODED)], accounts: Upstream
    ) -> Template:
        return await email_link_form("revert_email.html", "/internal/email-changes/reversal", data, accounts)


async def email_link_form(template: str, path: str, data: VerifyForm, accounts: Upstream) -> Template:
    """Post an email link's token; the page says which address the account now uses, or why not."""
    response = await accounts.call("POST", path, {"token": data.token[:200]})
    if response.status_code == 200:
        return Template(template, context={"state": "done", "email": response.json()["email"]})
    state = "taken" if response.json().get("code") == "email_taken" else "invalid"
    return Template(template, context={"state": state}, status_code=400)


async def password_form(template: str, path: str, data: ResetForm, accounts: Upstream) -> Template:
    """Post a mailed link's token and the chosen password; the page again with the reason when refused."""
    if not 10 <= len(data.token) <= 200:
        return Template(template, context={"state": "invalid"}, status_code=400)
    response = await accounts.call("POST", path, {"token": data.token, "new_password": data.new_password[:1024]})
    if response.status_code == 200:
        return Template(template, context={"state": "done"})
    problem = response.json()
    state = "invalid" if problem.get("code") == "invalid_token" else "form"
    context = {"token": data.token, "state": state, "error": problem.get("detail", problem.get("title"))}
    return Template(template, context=context, status_code=400)
