"""The organisers' catalogue pages (docs/portal.md, "Back-office: catalogue"): themes ("Thèmes",
gateway.back_office_themes), sessions as a month calendar and as a list with filters ("Séances": create, edit,
publish, reschedule, cancel; gateway.back_office_sessions), series of sessions ("Séries": the rule, the template, the
occurrences, publish all, cancel all; gateway.back_office_series) and permanent rooms ("Salles permanentes"), with
the public page of a permanent room's perpetual link (`/rooms/{link_token}`; gateway.back_office_rooms). This module
holds what those pages share: reading the catalogue, the page with what its templates share, the confirmation step.

Organisers only, like every back-office page (gateway.back_office_pages.organiser: 404 to anyone else signed in, the
login page for the anonymous). The calls are those of the JSON API (gateway.back_office_catalogue_api): the
catalogue keeps its rules. A form is checked in the gateway for what it can say alone (a date, a number, a field
left empty); what needs the catalogue (a time zone, a time skipped by the clocks, a start already past, the capacity
below the enrolments) comes back as its problem `code`, shown in the reader's language next to the field at fault,
the form keeping what was typed (gateway.back_office_catalogue_forms). Rescheduling and cancelling go through a page
of their own whose form asks for an explicit confirmation (a checkbox), so that they need no script. A form that
worked redirects (303) with `?done=…`. When the catalogue does not answer, the page says so rather than failing."""

import zoneinfo
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import babel.dates
from litestar import Response
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway import i18n
from gateway.back_office_catalogue_api import BACK_OFFICE
from gateway.back_office_catalogue_forms import WEEKDAYS, TermsForm, day_of
from gateway.i18n import N_, gettext
from gateway.portal import page
from gateway.upstream import Upstream
from servicekit.http import ProblemError

STATUSES = ("draft", "published", "cancelled", "finished")
STATUS_LABELS = {
    "draft": N_("Brouillon"),
    "published": N_("Publiée"),
    "cancelled": N_("Annulée"),
    "finished": N_("Terminée"),
}
# The zones a French training provider's sessions use most, first in the list; every other zone follows.
COMMON_ZONES = (
    "Europe/Paris",
    "Europe/Brussels",
    "Europe/Luxembourg",
    "Europe/Zurich",
    "Europe/London",
    "America/Guadeloupe",
    "America/Martinique",
    "America/Cayenne",
    "America/Miquelon",
    "Indian/Reunion",
    "Indian/Mayotte",
    "Pacific/Noumea",
    "Pacific/Tahiti",
    "America/Toronto",
    "Africa/Casablanca",
    "Africa/Dakar",
    "UTC",
)
REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
ALL_ZONES = tuple(sorted(zone for zone in zoneinfo.available_timezones() if zone.split("/")[0] in REGIONS))
EVERY = {
    "daily": (N_("Chaque jour"), N_("Tous les %(num)d jours")),
    "weekly": (N_("Chaque semaine"), N_("Toutes les %(num)d semaines")),
    "monthly": (N_("Chaque mois"), N_("Tous les %(num)d mois")),
}
ORDINALS = {"1": N_("premier"), "2": N_("deuxième"), "3": N_("troisième"), "4": N_("quatrième"), "-1": N_("dernier")}


# -- reading what the catalogue answers --------------------------------------------------------------------------


async def read(catalogue: Upstream, path: str, actor: str | None, **query: Any) -> Any | None:
    """The catalogue's JSON answer to GET `path`, None when it refused or did not answer (the page says so)."""
    wanted = {name: value for name, value in query.items() if value is not None and value != ""}
    try:
        answer = await catalogue.call("GET", f"{path}?{urlencode(wanted)}" if wanted else path, actor=actor)
    except ProblemError:
        return None
    return answer.json() if answer.status_code == 200 else None


async def one(catalogue: Upstream, path: str, actor: str | None, missing: tuple[int, ...] = (404,)) -> dict[str, Any]:
    """The theme, session, series or room at `path`; 404 when the catalogue answers one of `missing` (there is
    none), 503 when it does not answer."""
    answer = await catalogue.call("GET", path, actor=actor)
    if answer.status_code in missing:
        raise NotFoundException
    if answer.status_code != 200:
        raise ProblemError(503, "upstream_unavailable", "Service temporarily unavailable", "catalogue")
    found: dict[str, Any] = answer.json()
    return found


def items_of(listed: Any) -> list[dict[str, Any]] | None:
    if listed is None:
        return None
    return list(listed["items"] if isinstance(listed, dict) else listed)


def done(path: str, what: str) -> Response[Any]:
    separator = "&" if "?" in path else "?"
    return Redirect(f"{path}{separator}done={what}", status_code=303)


# -- what the templates show: wall clocks, statuses, rules -------------------------------------------------------


def wall_clock(local: str, form: str = "full") -> str:
    """A session's wall clock (`YYYY-MM-DDTHH:MM` in its zone) in the reader's language: "samedi 13 mars 2027 à
    14:00" (`full`), "13/03/2027 14:00" (`short`), "14:00" (`time`)."""
    try:
        moment = datetime.fromisoformat(local)
    except (TypeError, ValueError):
        return str(local)
    language = i18n.current_language.get()
    if form == "time":
        return babel.dates.format_time(moment, "HH:mm", locale=language)
    if form == "short":
        return babel.dates.format_datetime(moment, "short", locale=language)
    day = babel.dates.format_date(moment, "full", locale=language)
    return gettext(N_("%(day)s à %(time)s")) % {
        "day": day,
        "time": babel.dates.format_time(moment, "HH:mm", locale=language),
    }


def status_label(status: str) -> str:
    return gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status


def rule_text(rule: dict[str, Any]) -> str:
    """A series' rule in words: "Chaque semaine le mardi, jeudi — 10 séances"."""
    language = i18n.current_language.get()
    names = babel.dates.get_day_names("wide", locale=language)
    days = ", ".join(names[WEEKDAYS.index(day)] for day in rule.get("weekdays") or () if day in WEEKDAYS)
    interval = rule.get("interval") or 1
    frequency = rule.get("frequency") if rule.get("frequency") in EVERY else "monthly"
    once, every = EVERY[frequency]
    words = gettext(once) if interval == 1 else gettext(every) % {"num": interval}
    if frequency == "weekly":
        words += " " + gettext(N_("le %(days)s")) % {"days": days}
    position = rule.get("monthly_position")
    if frequency == "monthly" and position is not None:
        ordinal = gettext(ORDINALS.get(str(position), ORDINALS["1"]))
        words += " " + gettext(N_("le %(ordinal)s %(day)s")) % {"ordinal": ordinal, "day": days}
    if rule.get("count"):
        words += " — " + i18n.ngettext("%(num)d séance", "%(num)d séances", rule["count"]) % {"num": rule["count"]}
    elif rule.get("until"):
        last = day_of(str(rule["until"]))
        words += " — " + gettext(N_("jusqu'au %(day)s")) % {
            "day": babel.dates.format_date(last, "long", locale=language) if last else rule["until"]
        }
    return words


# -- the pages ----------------------------------------------------------------------------------------------------


def catalogue_page(template: str, visitor: dict[str, Any] | None, status_code: int = 200, **context: Any) -> Template:
    """A page of the catalogue back-office, with what its templates share: the labels of statuses, wall clocks,
    zones."""
    return page(
        template,
        visitor,
        status_code,
        status_label=status_label,
        statuses=STATUSES,
        wall_clock=wall_clock,
        rule_text=rule_text,
        common_zones=COMMON_ZONES,
        all_zones=ALL_ZONES,
        weekdays=WEEKDAYS,
        day_names=babel.dates.get_day_names("wide", locale=i18n.current_language.get()),
        **context,
    )


async def terms_form_page(
    template: str,
    catalogue: Upstream,
    organiser: dict[str, Any],
    form: TermsForm,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """The form of a session or of a series: what was typed (never the entry code), the active themes to choose."""
    themes = items_of(await read(catalogue, f"{BACK_OFFICE}/themes", organiser["user_id"], status="active"))
    return catalogue_page(
        template, organiser, status_code, form=form.kept(), themes=themes, errors=errors or {}, **context
    )


def confirm_page(
    organiser: dict[str, Any],
    action: str,
    subject: dict[str, Any],
    form: BaseModel,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    series: bool = False,
) -> Template:
    """The confirmation step of a reschedule or a cancellation (of a session, or of a whole `series`)."""
    return catalogue_page(
        "back_office_catalogue_confirm.html",
        organiser,
        status_code,
        action=action,
        subject=subject,
        series=series,
        form=form,
        errors=errors or {},
    )
