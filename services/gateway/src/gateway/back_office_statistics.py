"""The organisers' statistics ("Statistiques", docs/portal.md, "Back-office: statistics"): over the sessions
starting between two days (of one theme if chosen), per session and per theme, the enrolments, cancellations,
attendance rate, people and average rating (enrollment's `GET /internal/statistics`); bar charts drawn here as
inline SVG (no script, each with its title and description, the same numbers in the tables), and the CSV export
(`/back-office/statistics.csv`, gateway.participation.statistics_csv).

Organisers only, like every back-office page (404 to anyone else signed in, the login page for the anonymous)."""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Response, get
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Template

from gateway.back_office_catalogue import items_of, read
from gateway.back_office_catalogue_api import BACK_OFFICE
from gateway.back_office_catalogue_forms import day_of
from gateway.back_office_pages import organiser
from gateway.i18n import N_, gettext
from gateway.participation import csv_download, read_statistics, statistics_span
from gateway.portal import page
from gateway.upstream import Upstream
from servicekit.http import ProblemError

SESSIONS_CHARTED = 30  # the sessions' chart shows the first ones; the table lists them all
CHART_WIDTH, LABEL_WIDTH, PLOT_WIDTH, ROW_HEIGHT, BAR_HEIGHT = 720, 260, 380, 30, 20
LABEL_CHARACTERS = 32


@dataclass(frozen=True)
class Bar:
    label: str  # as drawn (shortened)
    name: str  # in full, read on hover and by screen readers
    value: str  # as written after the bar
    y: float
    width: float


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, one per row, in the SVG's own units (its viewBox); the page scales it."""

    key: str
    title: str
    description: str
    bars: list[Bar]
    width: int = CHART_WIDTH
    label_width: int = LABEL_WIDTH
    row_height: int = ROW_HEIGHT
    bar_height: int = BAR_HEIGHT

    @property
    def height(self) -> int:
        return max(len(self.bars), 1) * self.row_height + 10


def bar_chart(
    key: str, title: str, description: str, rows: list[tuple[str, float | None, str]], top: float
) -> BarChart:
    """`rows`: (name, value or None, value as written); `top`: the value of a full bar (else the largest)."""
    top = max([top, *(value or 0 for _, value, _ in rows)]) or 1
    bars = []
    for index, (name, value, written) in enumerate(rows):
        short = name if len(name) <= LABEL_CHARACTERS else name[: LABEL_CHARACTERS - 1] + "…"
        width = round((value or 0) / top * PLOT_WIDTH, 2)
        bars.append(Bar(short, name, written, index * ROW_HEIGHT + 5, width))
    return BarChart(key, title, description, bars)


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)} %"


ENROLMENTS_DESC = N_(
    "Établissements inscrits (inscriptions confirmées) par thème ; les nombres sont dans le tableau des thèmes."
)
THEME_RATE_DESC = N_(
    "Part des établissements inscrits qui ont rejoint la session, par thème, de 0 à 100 % ; les taux sont dans "
    "le tableau des thèmes."
)
SESSION_RATE_DESC = N_(
    "Part des établissements inscrits qui ont rejoint chaque séance, de 0 à 100 % ; les taux sont dans le tableau "
    "des séances."
)


def charts(figures: dict[str, Any]) -> list[BarChart]:
    """Enrolments and attendance rate per theme, attendance rate per session (the first ones)."""
    themes = figures.get("themes", [])
    sessions = figures.get("sessions", [])[:SESSIONS_CHARTED]
    untitled = gettext(N_("(sans thème)"))
    enrolled = [(t["theme_title"] or untitled, t["enrolments"], str(t["enrolments"])) for t in themes]
    theme_rates = [(t["theme_title"] or untitled, t["attendance_rate"], percent(t["attendance_rate"])) for t in themes]
    session_rates = [(s["title"], s["attendance_rate"], percent(s["attendance_rate"])) for s in sessions]
    return [
        bar_chart("theme-enrolments", gettext(N_("Inscriptions par thème")), gettext(ENROLMENTS_DESC), enrolled, 0),
        bar_chart(
            "theme-attendance", gettext(N_("Taux de présence par thème")), gettext(THEME_RATE_DESC), theme_rates, 1
        ),
        bar_chart(
            "session-attendance",
            gettext(N_("Taux de présence par séance")),
            gettext(SESSION_RATE_DESC),
            session_rates,
            1,
        ),
    ]


@dataclass(frozen=True)
class StatisticsFilters:
    """The days and theme asked, as typed (kept in the form) and as enrollment is asked."""

    starts_from: str
    starts_to: str
    theme_id: uuid.UUID | None
    errors: dict[str, str]

    @classmethod
    def of(cls, starts_from: str, starts_to: str, theme_id: str) -> "StatisticsFilters":
        errors = {}
        for name, value in (("from", starts_from), ("to", starts_to)):
            if value.strip() and day_of(value) is None:
                errors[name] = gettext(N_("Une date, par exemple 2027-03-18."))
        try:
            theme = uuid.UUID(theme_id) if theme_id else None
        except ValueError:
            theme = None
        return cls(starts_from.strip()[:10], starts_to.strip()[:10], theme, errors)

    def span(self) -> tuple[date, date]:
        """[from, to + 1 day): the page's "to" is the last day shown, included."""
        last = day_of(self.starts_to)
        return statistics_span(day_of(self.starts_from), last + timedelta(days=1) if last else None)

    def export_link(self) -> str:
        """The CSV of the same sessions (the same days, both included, and theme)."""
        lower, upper = self.span()
        query = {"from": lower.isoformat(), "to": (upper - timedelta(days=1)).isoformat()}
        if self.theme_id:
            query["theme_id"] = str(self.theme_id)
        return "/back-office/statistics.csv?" + urlencode(query)


From = Annotated[str, Parameter(query="from")]
To = Annotated[str, Parameter(query="to")]


class BackOfficeStatisticsPages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    @get("/statistics")
    async def statistics(
        self,
        organiser: dict[str, Any],
        enrollment: Upstream,
        catalogue: Upstream,
        starts_from: From = "",
        starts_to: To = "",
        theme_id: str = "",
    ) -> Template:
        filters = StatisticsFilters.of(starts_from, starts_to, theme_id)
        lower, upper = filters.span()
        actor = organiser["user_id"]
        figures = None
        try:
            answer = await read_statistics(enrollment, actor, lower, upper, filters.theme_id)
            figures = answer.json() if answer.status_code == 200 else None
        except ProblemError:
            pass
        themes = items_of(await read(catalogue, f"{BACK_OFFICE}/themes", actor)) or []
        return page(
            "back_office_statistics.html",
            organiser,
            400 if filters.errors else 200,
            filters=filters,
            lower=lower,
            last=upper - timedelta(days=1),
            themes=themes,
            figures=figures,
            charts=charts(figures) if figures else [],
        )

    @get("/statistics.csv")
    async def export(
        self,
        organiser: dict[str, Any],
        enrollment: Upstream,
        starts_from: From = "",
        starts_to: To = "",
        theme_id: str = "",
    ) -> Response[Any]:
        """The statistics per session as CSV (days that are no date are ignored)."""
        filters = StatisticsFilters.of(starts_from, starts_to, theme_id)
        lower, upper = filters.span()
        answer = await read_statistics(enrollment, organiser["user_id"], lower, upper, filters.theme_id)
        return csv_download(answer, lower, upper)
