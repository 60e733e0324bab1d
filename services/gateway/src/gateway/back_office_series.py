"""The organisers' series of sessions ("Séries", docs/portal.md, "Back-office: catalogue"): the list, a series' page
(its rule in words, its template, its occurrences), its form, publish all its drafts, and the confirmation step of
cancelling it (gateway.back_office_catalogue)."""

import uuid
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.response import Template

from gateway.back_office_catalogue import (
    ORDINALS,
    catalogue_page,
    confirm_page,
    done,
    items_of,
    one,
    read,
    terms_form_page,
)
from gateway.back_office_catalogue_api import BACK_OFFICE
from gateway.back_office_catalogue_forms import (
    CANCEL_FIELDS,
    POSITIONS,
    SERIES_FIELDS,
    CancelForm,
    SeriesForm,
    refusal_errors,
)
from gateway.back_office_pages import organiser
from gateway.portal import FORM, form_status
from gateway.upstream import Upstream


class BackOfficeSeriesPages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    @get("/series")
    async def every_series(self, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        listed = items_of(await read(catalogue, f"{BACK_OFFICE}/series", organiser["user_id"]))
        return catalogue_page("back_office_catalogue_series_list.html", organiser, series_list=listed)

    @get("/series/new")
    async def new_series(self, organiser: dict[str, Any], catalogue: Upstream, theme_id: str = "") -> Template:
        return await self._series_form(catalogue, organiser, None, SeriesForm(theme_id=theme_id[:36]))

    @post("/series")
    async def create_series(
        self, data: Annotated[SeriesForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        body, errors = data.checked()
        if errors:
            return await self._series_form(catalogue, organiser, None, data, errors, 400)
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/series", body, actor=organiser["user_id"])
        if answer.status_code in (200, 201):
            return done(f"/back-office/series/{answer.json()['id']}", "created")
        errors = refusal_errors(answer, SERIES_FIELDS, data.typed_start())
        return await self._series_form(catalogue, organiser, None, data, errors, form_status(answer.status_code))

    @get("/series/{series_id:uuid}")
    async def series(self, series_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        return await self._series_page(catalogue, organiser, series_id)

    @get("/series/{series_id:uuid}/edit")
    async def edit_series(self, series_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        series = await self._series(catalogue, organiser, series_id)
        return await self._series_form(catalogue, organiser, series, SeriesForm.of(series))

    @post("/series/{series_id:uuid}")
    async def change_series(
        self, series_id: uuid.UUID, data: Annotated[SeriesForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        series = await self._series(catalogue, organiser, series_id)
        body, errors = data.checked(theme_id=series["theme_id"])
        if errors:
            return await self._series_form(catalogue, organiser, series, data, errors, 400)
        answer = await catalogue.call("PUT", f"{BACK_OFFICE}/series/{series_id}", body, actor=organiser["user_id"])
        if answer.status_code == 200:
            return done(f"/back-office/series/{series_id}", "updated")
        errors = refusal_errors(answer, SERIES_FIELDS, data.typed_start())
        return await self._series_form(catalogue, organiser, series, data, errors, form_status(answer.status_code))

    @post("/series/{series_id:uuid}/publish")
    async def publish_series(
        self, series_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        answer = await catalogue.call(
            "POST", f"{BACK_OFFICE}/series/{series_id}/publish", {}, actor=organiser["user_id"]
        )
        if answer.status_code in (200, 204):
            return done(f"/back-office/series/{series_id}", "published")
        errors = refusal_errors(answer)
        return await self._series_page(catalogue, organiser, series_id, errors, form_status(answer.status_code))

    @get("/series/{series_id:uuid}/cancel")
    async def cancel_series_page(
        self, series_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream
    ) -> Template:
        series = await self._series(catalogue, organiser, series_id)
        return confirm_page(organiser, "cancel", series, CancelForm(), series=True)

    @post("/series/{series_id:uuid}/cancel")
    async def cancel_series(
        self, series_id: uuid.UUID, data: Annotated[CancelForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        series = await self._series(catalogue, organiser, series_id)
        body, errors = data.checked()
        if errors:
            return confirm_page(organiser, "cancel", series, data, errors, 400, series=True)
        path = f"{BACK_OFFICE}/series/{series_id}/cancel"
        answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/series/{series_id}", "cancelled")
        errors = refusal_errors(answer, CANCEL_FIELDS)
        status_code = form_status(answer.status_code)
        return confirm_page(organiser, "cancel", series, data, errors, status_code, series=True)

    async def _series(self, catalogue: Upstream, organiser: dict[str, Any], series_id: uuid.UUID) -> dict[str, Any]:
        return await one(catalogue, f"{BACK_OFFICE}/series/{series_id}", organiser["user_id"])

    async def _series_page(
        self,
        catalogue: Upstream,
        organiser: dict[str, Any],
        series_id: uuid.UUID,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        series = await self._series(catalogue, organiser, series_id)
        occurrences = sorted(series.get("occurrences") or (), key=lambda s: s["starts_at"])
        return catalogue_page(
            "back_office_catalogue_series.html",
            organiser,
            status_code,
            series=series,
            occurrences=occurrences,
            drafts=sum(1 for s in occurrences if s["status"] == "draft"),
            upcoming=sum(1 for s in occurrences if s["status"] in ("draft", "published")),
            errors=errors or {},
        )

    async def _series_form(
        self,
        catalogue: Upstream,
        organiser: dict[str, Any],
        series: dict[str, Any] | None,
        form: SeriesForm,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        template = "back_office_catalogue_series_form.html"
        return await terms_form_page(
            template,
            catalogue,
            organiser,
            form,
            errors,
            status_code,
            series=series,
            positions=POSITIONS,
            ordinals=ORDINALS,
        )
