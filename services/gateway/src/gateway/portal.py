"""Server-rendered pages: the landing page, email verification, forgotten password. Forms carry a CSRF token."""

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template
from pydantic import BaseModel

from gateway.api import client_address
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
        response = await accounts.call(
            "POST",
            "/internal/password-resets/confirmation",
            {"token": data.token[:200], "new_password": data.new_password[:1024]},
        )
        if response.status_code == 200:
            return Template("reset_password.html", context={"state": "done"})
        problem = response.json()
        state = "invalid" if problem.get("code") == "invalid_token" else "form"
        context = {"token": data.token, "state": state, "error": problem.get("detail", problem.get("title"))}
        return Template("reset_password.html", context=context, status_code=400)
