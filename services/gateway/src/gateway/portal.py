"""Server-rendered pages: for now the landing page and the email verification page."""

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template
from pydantic import BaseModel

from gateway.upstream import Upstream

TEMPLATES = Path(__file__).parent / "templates"


class VerifyForm(BaseModel):
    token: str = ""


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
