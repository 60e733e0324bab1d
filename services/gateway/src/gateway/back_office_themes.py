"""The organisers' themes ("Thèmes", docs/portal.md, "Back-office: catalogue"): the list, active or archived, the form
of a new theme or of one to change, archive and restore (gateway.back_office_catalogue)."""

import uuid
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.response import Template

from gateway.back_office_catalogue import catalogue_page, done, items_of, one, read
from gateway.back_office_catalogue_api import BACK_OFFICE
from gateway.back_office_catalogue_forms import THEME_FIELDS, ThemeForm, refusal_errors
from gateway.back_office_pages import organiser
from gateway.portal import FORM, form_status
from gateway.upstream import Upstream


class BackOfficeThemePages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    @get("/themes")
    async def themes(self, organiser: dict[str, Any], catalogue: Upstream, status: str = "") -> Template:
        status = status if status in ("active", "archived") else ""
        listed = items_of(await read(catalogue, f"{BACK_OFFICE}/themes", organiser["user_id"], status=status))
        return catalogue_page("back_office_themes.html", organiser, themes=listed, status=status)

    @get("/themes/new")
    async def new_theme(self, organiser: dict[str, Any]) -> Template:
        return self._theme_form(organiser, None, ThemeForm())

    @post("/themes")
    async def create_theme(
        self, data: Annotated[ThemeForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        body, errors = data.checked()
        if errors:
            return self._theme_form(organiser, None, data, errors, 400)
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/themes", body, actor=organiser["user_id"])
        if answer.status_code in (200, 201):
            return done("/back-office/themes", "created")
        return self._theme_form(
            organiser, None, data, refusal_errors(answer, THEME_FIELDS), form_status(answer.status_code)
        )

    @get("/themes/{theme_id:uuid}")
    async def theme(self, theme_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        theme = await self._theme(catalogue, organiser, theme_id)
        return self._theme_form(organiser, theme, ThemeForm.of(theme))

    @post("/themes/{theme_id:uuid}")
    async def change_theme(
        self, theme_id: uuid.UUID, data: Annotated[ThemeForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        theme = await self._theme(catalogue, organiser, theme_id)
        body, errors = data.checked()
        if errors:
            return self._theme_form(organiser, theme, data, errors, 400)
        answer = await catalogue.call("PUT", f"{BACK_OFFICE}/themes/{theme_id}", body, actor=organiser["user_id"])
        if answer.status_code == 200:
            return done("/back-office/themes", "updated")
        return self._theme_form(
            organiser, theme, data, refusal_errors(answer, THEME_FIELDS), form_status(answer.status_code)
        )

    @post("/themes/{theme_id:uuid}/archive")
    async def archive_theme(self, theme_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._theme_status(catalogue, organiser, theme_id, "archive")

    @post("/themes/{theme_id:uuid}/restore")
    async def restore_theme(self, theme_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Response[Any]:
        return await self._theme_status(catalogue, organiser, theme_id, "restore")

    async def _theme_status(
        self, catalogue: Upstream, organiser: dict[str, Any], theme_id: uuid.UUID, change: str
    ) -> Response[Any]:
        answer = await catalogue.call(
            "POST", f"{BACK_OFFICE}/themes/{theme_id}/{change}", {}, actor=organiser["user_id"]
        )
        if answer.status_code in (200, 204):
            return done("/back-office/themes", "archived" if change == "archive" else "restored")
        theme = await self._theme(catalogue, organiser, theme_id)
        errors = refusal_errors(answer)
        return self._theme_form(organiser, theme, ThemeForm.of(theme), errors, form_status(answer.status_code))

    async def _theme(self, catalogue: Upstream, organiser: dict[str, Any], theme_id: uuid.UUID) -> dict[str, Any]:
        return await one(catalogue, f"{BACK_OFFICE}/themes/{theme_id}", organiser["user_id"])

    def _theme_form(
        self,
        organiser: dict[str, Any],
        theme: dict[str, Any] | None,
        form: ThemeForm,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        return catalogue_page(
            "back_office_theme_form.html", organiser, status_code, theme=theme, form=form, errors=errors or {}
        )
