"""The organisers' catalogue pages (docs/portal.md, "Back-office: catalogue"): themes ("Thèmes"), sessions as a month
calendar and as a list with filters ("Séances": create, edit, publish, reschedule, cancel), series of sessions
("Séries": the rule, the template, the occurrences, publish all, cancel all) and permanent rooms ("Salles
permanentes"); and the public page of a permanent room's perpetual link (`/rooms/{link_token}`).

Organisers only, like every back-office page (gateway.back_office_pages.organiser: 404 to anyone else signed in, the
login page for the anonymous). The calls are those of the JSON API (gateway.back_office_catalogue_api): the
catalogue keeps its rules. A form is checked here for what it can say alone (a date, a number, a field left
empty); what needs the catalogue (a time zone, a time skipped by the clocks, a start already past, the capacity
below the enrolments) comes back as its problem `code`, shown in the reader's language next to the field at fault,
the form keeping what was typed. Rescheduling and cancelling go through a page of their own whose form asks for an
explicit confirmation (a checkbox), so that they need no script. A form that worked redirects (303) with
`?done=…`. When the catalogue does not answer, the page says so rather than failing."""

import calendar
import re
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import babel.dates
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway import i18n
from gateway.back_office_catalogue_api import (
    AGENDA_LENGTH,
    BACK_OFFICE,
    DESCRIPTION_LENGTH,
    ENTRY_CODE_LENGTH,
    MAX_CAPACITY,
    MAX_TOKENS,
    NOTE_LENGTH,
)
from gateway.back_office_pages import organiser
from gateway.i18n import N_, gettext
from gateway.limits import RATE_LIMIT
from gateway.messages import problem_message
from gateway.portal import FORM, clip, form_status, page
from gateway.upstream import Upstream
from servicekit.http import ProblemError

PAGE_SIZE = 50
CALENDAR_AT_MOST = 1000  # sessions read for one month's grid (pages of 200)
DEFAULT_ZONE = "Europe/Paris"
# The longest text each field may hold (the catalogue's bounds).
LENGTHS = {
    "description": DESCRIPTION_LENGTH,
    "prerequisites": NOTE_LENGTH,
    "waiting_message": NOTE_LENGTH,
    "agenda": AGENDA_LENGTH,
    "room_description": NOTE_LENGTH,
}
STATUSES = ("draft", "published", "cancelled", "finished")
STATUS_LABELS = {
    "draft": N_("Brouillon"),
    "published": N_("Publiée"),
    "cancelled": N_("Annulée"),
    "finished": N_("Terminée"),
}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
POSITIONS = ("1", "2", "3", "4", "-1")
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
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
CLOCK = re.compile(r"([01]?[0-9]|2[0-3])[:h]([0-5][0-9])(?::[0-5][0-9])?")
FRENCH_DAY = re.compile(r"([0-3]?[0-9])/([01]?[0-9])/([0-9]{4})")

# The catalogue's refusals, in the reader's language (those not here: gateway.messages, or the catalogue's words).
REFUSALS = {
    "unknown_time_zone": N_("Ce fuseau horaire est inconnu : choisissez-en un dans la liste."),
    "start_in_past": N_("Ce début est déjà passé : choisissez une date et une heure à venir."),
    "ends_before_start": N_("La fin doit venir après le début."),
    "invalid_duration": N_("Une séance dure de 15 minutes à 8 heures."),
    "capacity_below_enrolments": N_(
        "Des établissements sont déjà inscrits : la capacité ne peut pas descendre sous leur nombre."
    ),
    "price_locked": N_("Des établissements sont inscrits : le prix ne peut plus changer."),
    "duration_locked": N_("Des établissements sont inscrits : la durée ne peut plus changer."),
    "not_draft": N_("Cette séance est déjà publiée : une séance publiée ne revient pas en brouillon."),
    "session_cancelled": N_("Cette séance est annulée : elle ne peut plus changer."),
    "session_finished": N_("Cette séance est terminée : elle ne peut plus changer."),
    "theme_archived": N_("Ce thème est archivé : restaurez-le d'abord, ou choisissez-en un autre."),
    "unknown_theme": N_("Choisissez un thème de la liste."),
    "entry_code_required": N_("Choisissez le code d'accès que les participants saisiront."),
    "entry_code_too_short": N_("Un code d'accès compte au moins 4 caractères."),
    "provider_not_configured": N_(
        "Cet outil de visioconférence n'est pas configuré sur ce serveur : choisissez-en un autre."
    ),
    "rooms_not_configured": N_("Les salles de visioconférence ne sont pas configurées sur ce serveur."),
    "room_not_open": N_("La salle n'est pas encore ouverte : réessayez un peu plus tard."),
    "conflict": N_("Quelqu'un a fait une modification en même temps : réessayez."),
    "not_found": N_("Introuvable : la page n'était plus à jour."),
    "series_invalid_frequency": N_("Choisissez une fréquence : chaque jour, chaque semaine ou chaque mois."),
    "series_invalid_interval": N_("Un intervalle de 1 à 99."),
    "series_invalid_weekdays": N_(
        "Cochez au moins un jour pour une série hebdomadaire ; un seul jour pour « le n-ième jour du mois »."
    ),
    "series_invalid_monthly_position": N_("Choisissez le premier, deuxième, troisième, quatrième ou dernier jour."),
    "series_count_or_until": N_("Une série se termine après un nombre de séances ou à une date : l'un des deux."),
    "series_invalid_count": N_("Un nombre de séances de 1 à 500."),
    "series_invalid_until": N_("Une date de fin, par exemple 2027-06-30."),
    "series_no_occurrence": N_("Aucune séance ne tombe entre le premier début et la fin choisie."),
    "series_too_many_occurrences": N_("Une série compte au plus 500 séances : choisissez une fin plus proche."),
}
# Where a refusal is shown: by its code first, then by the field the catalogue names, as the form names it.
FIELD_OF_CODE = {
    "unknown_time_zone": "timezone",
    "nonexistent_local_time": "local_start",
    "start_in_past": "local_start",
    "ends_before_start": "duration",
    "invalid_duration": "duration",
    "capacity_below_enrolments": "capacity",
    "price_locked": "price_tokens",
    "duration_locked": "duration",
    "theme_archived": "theme_id",
    "unknown_theme": "theme_id",
    "entry_code_required": "entry_code",
    "entry_code_too_short": "entry_code",
    "wrong_entry_code": "entry_code",
    "provider_not_configured": "provider",
    "series_invalid_frequency": "frequency",
    "series_invalid_interval": "interval",
    "series_invalid_weekdays": "weekdays",
    "series_invalid_monthly_position": "monthly_position",
    "series_count_or_until": "end",
    "series_invalid_count": "end",
    "series_invalid_until": "end",
    "series_no_occurrence": "end",
    "series_too_many_occurrences": "end",
}
FORM_FIELD_OF = {
    "local_end": "duration",
    "duration_minutes": "duration",
    "count": "end",
    "until": "end",
    "premium_price_tokens": "premium_price_tokens",
    "reason": "reason",
}


# -- reading what the catalogue answers --------------------------------------------------------------------------


async def read(catalogue: Upstream, path: str, actor: str | None, **query: Any) -> Any | None:
    """The catalogue's JSON answer to GET `path`, None when it refused or did not answer (the page says so)."""
    wanted = {name: value for name, value in query.items() if value is not None and value != ""}
    try:
        answer = await catalogue.call("GET", f"{path}?{urlencode(wanted)}" if wanted else path, actor=actor)
    except ProblemError:
        return None
    return answer.json() if answer.status_code == 200 else None


async def one(catalogue: Upstream, path: str, organiser: dict[str, Any]) -> dict[str, Any]:
    """The theme, session or series at `path`; 404 when there is none, 503 when the catalogue does not answer."""
    answer = await catalogue.call("GET", path, actor=organiser["user_id"])
    if answer.status_code == 404:
        raise NotFoundException
    if answer.status_code != 200:
        raise ProblemError(503, "upstream_unavailable", "Service temporarily unavailable", "catalogue")
    found: dict[str, Any] = answer.json()
    return found


def items_of(listed: Any) -> list[dict[str, Any]] | None:
    if listed is None:
        return None
    return list(listed["items"] if isinstance(listed, dict) else listed)


def problem_of(answer: Any) -> dict[str, Any]:
    if answer.status_code >= 500 or not answer.headers.get("content-type", "").endswith("json"):
        return {"code": "upstream_error", "status": 502}
    problem = answer.json()
    return problem if isinstance(problem, dict) else {"code": "upstream_error", "status": 502}


def offset_of(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 10 else 0


# -- what is typed: days, times, numbers ---------------------------------------------------------------------------


def day_of(value: str) -> date | None:
    """A day as typed: 2027-03-28 (a date field) or 28/03/2027."""
    value = value.strip()
    try:
        if found := FRENCH_DAY.fullmatch(value):
            return date(int(found[3]), int(found[2]), int(found[1]))
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def clock_of(value: str) -> time | None:
    """A time of day as typed: 14:00 (a time field, seconds ignored), 9:30 or 14h00."""
    found = CLOCK.fullmatch(value.strip())
    return time(int(found[1]), int(found[2])) if found else None


def whole(value: str, low: int, high: int) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 7 and low <= int(value) <= high else None


def clock_gap(local: datetime, zone_name: str) -> tuple[time, time] | None:
    """When the wall clock `local` does not exist in the zone (clocks put forward over it), the times the clocks
    jump from and to (02:00 and 03:00 in Paris on the last Sunday of March); None otherwise."""
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    # In a gap, fold=0 reads the time with the offset before the change, fold=1 with the one after (PEP 495).
    before, after = local.replace(tzinfo=zone, fold=0).utcoffset(), local.replace(tzinfo=zone, fold=1).utcoffset()
    if before is None or after is None or after <= before:
        return None
    earliest = local.replace(tzinfo=UTC) - after
    for minute in range(int((after - before).total_seconds() // 60) + 1):
        instant = earliest + timedelta(minutes=minute)
        if instant.astimezone(zone).utcoffset() == after:
            return (instant + before).time(), (instant + after).time()
    return None


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


# -- refusals -----------------------------------------------------------------------------------------------------


def said(code: str) -> str:
    """A refusal of REFUSALS in the reader's language."""
    return gettext(REFUSALS[code])


def refusal_text(problem: dict[str, Any], typed_start: tuple[str, str, str] | None = None) -> str:
    """A refusal of the catalogue's in the reader's language; a time skipped by the clocks names the jump."""
    code = problem.get("code")
    if code == "nonexistent_local_time" and typed_start is not None:
        day, clock, zone = typed_start
        gap = clock_gap(datetime.combine(day_of(day) or date.min, clock_of(clock) or time()), zone)
        if gap is not None and day_of(day):
            return gettext(
                N_(
                    "%(time)s n'existe pas le %(day)s dans le fuseau %(zone)s : ce jour-là, les horloges passent de "
                    "%(from)s à %(to)s (heure d'été). Choisissez une autre heure."
                )
            ) % {
                "time": clock_of(clock).strftime("%H:%M") if clock_of(clock) else clock,
                "day": babel.dates.format_date(day_of(day), "long", locale=i18n.current_language.get()),
                "zone": zone,
                "from": gap[0].strftime("%H:%M"),
                "to": gap[1].strftime("%H:%M"),
            }
    if code == "nonexistent_local_time":
        return gettext(N_("Cette heure n'existe pas ce jour-là dans ce fuseau (passage à l'heure d'été)."))
    if code in REFUSALS:
        return said(code)
    return problem_message(problem)


def refusal_errors(
    answer: Any, fields: tuple[str, ...], typed_start: tuple[str, str, str] | None = None
) -> dict[str, str]:
    """The catalogue's refusal, next to the form's field it is about (else above the form)."""
    problem = problem_of(answer)
    code = problem.get("code")
    named = problem.get("field") if isinstance(problem.get("field"), str) else ""
    named = named.rsplit(".", 1)[-1]
    field = FIELD_OF_CODE.get(code) if isinstance(code, str) else None
    field = field or FORM_FIELD_OF.get(named, named)
    return {field if field in fields else "_form": refusal_text(problem, typed_start)}


def check_length(name: str, value: str, limit: int, errors: dict[str, str]) -> None:
    if len(value.strip()) > limit:
        errors[name] = gettext(N_("%(num)s caractères au plus.")) % {"num": i18n.format_number(limit)}


def check_entry_code(code: str, errors: dict[str, str]) -> None:
    if not 4 <= len(code) <= ENTRY_CODE_LENGTH:
        errors["entry_code"] = gettext(N_("Un code d'accès compte de 4 à 64 caractères."))


def done(path: str, what: str) -> Response[Any]:
    separator = "&" if "?" in path else "?"
    return Redirect(f"{path}{separator}done={what}", status_code=303)


# -- themes -------------------------------------------------------------------------------------------------------


class ThemeForm(BaseModel):
    title: str = ""
    description: str = ""
    audience: str = ""
    prerequisites: str = ""
    image_url: str = ""
    tags: str = ""  # comma-separated

    @classmethod
    def of(cls, theme: dict[str, Any]) -> "ThemeForm":
        return cls(
            title=theme["title"],
            description=theme.get("description") or "",
            audience=theme.get("audience") or "",
            prerequisites=theme.get("prerequisites") or "",
            image_url=theme.get("image_url") or "",
            tags=", ".join(theme.get("tags") or ()),
        )

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The body the catalogue takes, and the problems of the fields (none: it may be sent)."""
        errors: dict[str, str] = {}
        title = clip(self.title).strip()
        if not title or len(title) > 200:
            errors["title"] = gettext(N_("Le titre est obligatoire (200 caractères au plus)."))
        if len(self.audience.strip()) > 200:
            errors["audience"] = gettext(N_("200 caractères au plus."))
        for name in ("description", "prerequisites"):
            check_length(name, getattr(self, name), LENGTHS[name], errors)
        image_url = clip(self.image_url).strip()
        if image_url and (not image_url.startswith("https://") or len(image_url) > 500 or " " in image_url):
            errors["image_url"] = gettext(
                N_("Une adresse commençant par https://, par exemple https://exemple.fr/image.png.")
            )
        tags = [tag.strip() for tag in clip(self.tags).split(",") if tag.strip()]
        if len(tags) > 10 or any(len(tag) > 40 for tag in tags):
            errors["tags"] = gettext(
                N_("Au plus 10 mots-clés séparés par des virgules, de 40 caractères au plus chacun.")
            )
        body = {
            "title": title,
            "description": self.description.strip(),
            "audience": clip(self.audience).strip(),
            "prerequisites": self.prerequisites.strip(),
            "image_url": image_url or None,
            "tags": tags,
        }
        return body, errors


THEME_FIELDS = tuple(ThemeForm.model_fields)


# -- sessions and series: the terms -------------------------------------------------------------------------------


class TermsForm(BaseModel):
    """A session's terms as typed, shared by a session's form and a series' template."""

    title: str = ""
    description: str = ""
    animator: str = ""
    local_date: str = ""  # the (first) start's day
    local_time: str = ""  # and its wall clock, in `timezone`
    timezone: str = DEFAULT_ZONE
    duration: str = "60"  # 60 | 90 | other
    duration_other: str = ""  # minutes, when `duration` is other
    capacity_mode: str = "unlimited"  # unlimited | limited
    capacity: str = ""
    price_tokens: str = "1"
    premium: str = ""  # a checkbox: "on" when ticked
    premium_price_tokens: str = ""
    access: str = "open"  # open | code
    entry_code: str = ""  # write-only: never shown again
    waiting_message: str = ""
    agenda: str = ""
    provider: str = ""  # bbb | jitsi | "" (the catalogue's default)

    @staticmethod
    def terms_of(values: dict[str, Any]) -> dict[str, str]:
        """The form's terms fields from a session or a series' template, as the catalogue shows them."""
        minutes = values.get("duration_minutes") or 60
        capacity, premium_price = values.get("capacity"), values.get("premium_price_tokens")
        return {
            "title": values.get("title") or "",
            "description": values.get("description") or "",
            "animator": values.get("animator") or "",
            "timezone": values.get("timezone") or DEFAULT_ZONE,
            "duration": str(minutes) if minutes in (60, 90) else "other",
            "duration_other": "" if minutes in (60, 90) else str(minutes),
            "capacity_mode": "unlimited" if capacity is None else "limited",
            "capacity": "" if capacity is None else str(capacity),
            "price_tokens": str(values.get("price_tokens", 1)),
            "premium": "on" if premium_price is not None else "",
            "premium_price_tokens": "" if premium_price is None else str(premium_price),
            "access": values.get("access") or "open",
            "waiting_message": values.get("waiting_message") or "",
            "agenda": values.get("agenda") or "",
            "provider": values.get("provider") or "",
        }

    @staticmethod
    def start_of(local_start: str) -> dict[str, str]:
        day, _, clock = (local_start or "").partition("T")
        return {"local_date": day, "local_time": clock[:5]}

    def typed_start(self) -> tuple[str, str, str]:
        return self.local_date, self.local_time, self.timezone

    def checked_start(self, errors: dict[str, str]) -> str | None:
        """The start as the catalogue takes it (`YYYY-MM-DDTHH:MM`); its problem goes into `errors`."""
        day, clock = day_of(self.local_date), clock_of(self.local_time)
        if day is None or clock is None:
            errors["local_start"] = gettext(N_("Une date et une heure, par exemple 2027-03-18 et 14:00."))
            return None
        return datetime.combine(day, clock).strftime("%Y-%m-%dT%H:%M")

    def checked_zone(self, errors: dict[str, str]) -> str:
        zone = clip(self.timezone).strip()
        if not zone or len(zone) > 64:
            errors["timezone"] = gettext(N_("Choisissez un fuseau horaire."))
        return zone

    def checked_duration(self, errors: dict[str, str]) -> int | None:
        minutes = whole(self.duration_other, 15, 480) if self.duration == "other" else whole(self.duration, 60, 90)
        if minutes is None or (self.duration != "other" and minutes not in (60, 90)):
            errors["duration"] = gettext(N_("Une durée en minutes, de 15 à 480."))
            return None
        return minutes

    def checked_terms(self, errors: dict[str, str]) -> dict[str, Any]:
        """The terms the catalogue takes (not the start); their problems go into `errors`."""
        title = clip(self.title).strip()
        if not title or len(title) > 200:
            errors["title"] = gettext(N_("Le titre est obligatoire (200 caractères au plus)."))
        animator = clip(self.animator).strip()
        if len(animator) > 200:
            errors["animator"] = gettext(N_("200 caractères au plus."))
        for name in ("description", "waiting_message", "agenda"):
            check_length(name, getattr(self, name), LENGTHS[name], errors)
        capacity = None
        if self.capacity_mode == "limited":
            capacity = whole(self.capacity, 1, MAX_CAPACITY)
            if capacity is None:
                errors["capacity"] = gettext(
                    N_("Un nombre d'établissements, de 1 à 100 000 ; ou choisissez « illimitée ».")
                )
        price = whole(self.price_tokens, 1, MAX_TOKENS)
        if price is None:
            errors["price_tokens"] = gettext(N_("Un nombre entier de jetons, de 1 à 1 000."))
        premium_price = None
        if self.premium == "on":
            premium_price = whole(self.premium_price_tokens, 1, MAX_TOKENS)
            if premium_price is None:
                errors["premium_price_tokens"] = gettext(N_("Le prix de la privatisation, de 1 à 1 000 jetons."))
        if self.access not in ("open", "code"):
            errors["access"] = gettext(N_("Choisissez l'accès."))
        entry_code = clip(self.entry_code).strip()
        if self.access == "code" and entry_code:
            check_entry_code(entry_code, errors)
        if self.provider not in ("", "bbb", "jitsi"):
            errors["provider"] = gettext(N_("Choisissez l'outil de visioconférence."))
        terms: dict[str, Any] = {
            "title": title,
            "description": self.description.strip(),
            "animator": animator,
            "timezone": self.checked_zone(errors),
            "duration_minutes": self.checked_duration(errors),
            "capacity": capacity,
            "price_tokens": price,
            "premium_price_tokens": premium_price,
            "access": self.access,
            "waiting_message": self.waiting_message.strip(),
            "agenda": self.agenda.strip(),
            "provider": self.provider or None,
        }
        if self.access == "code" and entry_code:
            terms["entry_code"] = entry_code
        return terms

    def kept(self) -> "TermsForm":
        """What was typed, to show again: never the entry code."""
        return self.model_copy(update={"entry_code": ""})


class SessionForm(TermsForm):
    theme_id: str = ""

    @classmethod
    def blank(cls, theme_id: str = "") -> "SessionForm":
        return cls(theme_id=theme_id)

    @classmethod
    def of(cls, session: dict[str, Any]) -> "SessionForm":
        return cls(theme_id=session["theme_id"], **cls.terms_of(session), **cls.start_of(session["local_start"]))

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        theme_id = checked_theme_id(self.theme_id, errors)
        local_start = self.checked_start(errors)
        terms = self.checked_terms(errors)
        return {"theme_id": theme_id, "local_start": local_start, **terms}, errors


SESSION_FIELDS = (*SessionForm.model_fields, "local_start")


def checked_theme_id(value: str, errors: dict[str, str]) -> str | None:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        errors["theme_id"] = gettext(N_("Choisissez un thème de la liste."))
        return None


class RescheduleForm(BaseModel):
    local_date: str = ""
    local_time: str = ""
    timezone: str = DEFAULT_ZONE
    duration: str = "60"
    duration_other: str = ""
    confirm: str = ""  # a checkbox: "on" when ticked

    @classmethod
    def of(cls, session: dict[str, Any]) -> "RescheduleForm":
        terms = TermsForm.terms_of(session)
        return cls(
            **TermsForm.start_of(session["local_start"]),
            timezone=terms["timezone"],
            duration=terms["duration"],
            duration_other=terms["duration_other"],
        )

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        as_terms = TermsForm(**self.model_dump(exclude={"confirm"}))
        body = {
            "local_start": as_terms.checked_start(errors),
            "timezone": as_terms.checked_zone(errors),
            "duration_minutes": as_terms.checked_duration(errors),
        }
        if self.confirm != "on":
            errors["confirm"] = gettext(N_("Cochez la case pour confirmer le report."))
        return body, errors


RESCHEDULE_FIELDS = (*RescheduleForm.model_fields, "local_start")


class CancelForm(BaseModel):
    reason: str = ""
    confirm: str = ""

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        reason = clip(self.reason).strip()
        if not reason:
            errors["reason"] = gettext(N_("Indiquez la raison : elle est donnée aux établissements inscrits."))
        elif len(reason) > 500:
            errors["reason"] = gettext(N_("500 caractères au plus."))
        if self.confirm != "on":
            errors["confirm"] = gettext(N_("Cochez la case pour confirmer l'annulation."))
        return {"reason": reason}, errors


CANCEL_FIELDS = tuple(CancelForm.model_fields)


class SeriesForm(TermsForm):
    """A series as typed: its theme (when created), its rule, its first start and its template."""

    theme_id: str = ""
    frequency: str = "weekly"  # daily | weekly | monthly
    interval: str = "1"
    weekday_MO: str = ""  # one checkbox per day ("on")
    weekday_TU: str = ""
    weekday_WE: str = ""
    weekday_TH: str = ""
    weekday_FR: str = ""
    weekday_SA: str = ""
    weekday_SU: str = ""
    monthly_position: str = ""  # "" (the first start's day of the month), 1-4, or -1 (the last)
    monthly_weekday: str = "MO"
    end: str = "count"  # count | until
    count: str = "10"
    until: str = ""

    @classmethod
    def of(cls, series: dict[str, Any]) -> "SeriesForm":
        rule = series.get("recurrence") or {}
        days = rule.get("weekdays") or []
        monthly = rule.get("monthly_position")
        terms = cls.terms_of(series.get("template") or {}) | {"timezone": series.get("timezone") or DEFAULT_ZONE}
        return cls(
            theme_id=series["theme_id"],
            **terms,
            **cls.start_of(series.get("local_start") or ""),
            frequency=rule.get("frequency") or "weekly",
            interval=str(rule.get("interval") or 1),
            **{f"weekday_{day}": "on" for day in days if day in WEEKDAYS and monthly is None},
            monthly_position="" if monthly is None else str(monthly),
            monthly_weekday=days[0] if monthly is not None and days else "MO",
            end="until" if rule.get("until") else "count",
            count=str(rule.get("count") or ""),
            until=rule.get("until") or "",
        )

    def weekdays(self) -> list[str]:
        return [day for day in WEEKDAYS if getattr(self, f"weekday_{day}") == "on"]

    def checked_rule(self, errors: dict[str, str]) -> dict[str, Any]:
        if self.frequency not in ("daily", "weekly", "monthly"):
            errors["frequency"] = said("series_invalid_frequency")
        interval = whole(self.interval, 1, 99)
        if interval is None:
            errors["interval"] = said("series_invalid_interval")
        rule: dict[str, Any] = {"frequency": self.frequency, "interval": interval, "weekdays": []}
        if self.frequency == "weekly":
            rule["weekdays"] = self.weekdays()
            if not rule["weekdays"]:
                errors["weekdays"] = gettext(N_("Cochez au moins un jour de la semaine."))
        if self.frequency == "monthly" and self.monthly_position:
            if self.monthly_position not in POSITIONS or self.monthly_weekday not in WEEKDAYS:
                errors["monthly_position"] = said("series_invalid_monthly_position")
            else:
                rule |= {"monthly_position": int(self.monthly_position), "weekdays": [self.monthly_weekday]}
        if self.end == "until":
            until = day_of(self.until)
            if until is None:
                errors["end"] = said("series_invalid_until")
            rule["until"] = until.isoformat() if until else None
        else:
            rule["count"] = whole(self.count, 1, 500)
            if rule["count"] is None:
                errors["end"] = said("series_invalid_count")
        return rule

    def checked(self, theme_id: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """The body of a new series, or of a change to the series of `theme_id` (a series keeps its theme)."""
        errors: dict[str, str] = {}
        body = {
            "theme_id": theme_id or checked_theme_id(self.theme_id, errors),
            "recurrence": self.checked_rule(errors),
            "local_start": self.checked_start(errors),  # in the template's zone
            "template": self.checked_terms(errors),
        }
        return body, errors


SERIES_FIELDS = (*SeriesForm.model_fields, "local_start", "weekdays", "end")


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


EVERY = {
    "daily": (N_("Chaque jour"), N_("Tous les %(num)d jours")),
    "weekly": (N_("Chaque semaine"), N_("Toutes les %(num)d semaines")),
    "monthly": (N_("Chaque mois"), N_("Tous les %(num)d mois")),
}
ORDINALS = {"1": N_("premier"), "2": N_("deuxième"), "3": N_("troisième"), "4": N_("quatrième"), "-1": N_("dernier")}


class RoomForm(BaseModel):
    name: str = ""
    description: str = ""
    provider: str = ""
    entry_code: str = ""

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        name = clip(self.name).strip()
        if not name or len(name) > 200:
            errors["name"] = gettext(N_("Le nom est obligatoire (200 caractères au plus)."))
        check_length("description", self.description, LENGTHS["room_description"], errors)
        if self.provider not in ("", "bbb", "jitsi"):
            errors["provider"] = gettext(N_("Choisissez l'outil de visioconférence."))
        entry_code = clip(self.entry_code).strip()
        if entry_code:
            check_entry_code(entry_code, errors)
        body = {
            "name": name,
            "description": self.description.strip(),
            "provider": self.provider or None,
            "entry_code": entry_code or None,
        }
        return body, errors


ROOM_FIELDS = tuple(RoomForm.model_fields)


# -- the calendar ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    in_month: bool
    sessions: list[dict[str, Any]]


@dataclass(frozen=True)
class Month:
    first: date
    weeks: list[list[Day]]
    weekday_names: list[str]

    @property
    def previous(self) -> str:
        return (self.first - timedelta(days=1)).strftime("%Y-%m")

    @property
    def next(self) -> str:
        return (self.first + timedelta(days=31)).strftime("%Y-%m")

    @property
    def title(self) -> str:
        return babel.dates.format_date(self.first, "LLLL y", locale=i18n.current_language.get())


def month_of(value: str) -> date:
    """The first day of the month asked (`YYYY-MM`), this month in the portal's zone otherwise."""
    try:
        asked = datetime.strptime(value.strip(), "%Y-%m").date()
        if 2000 <= asked.year <= 2100:
            return asked
    except ValueError:
        pass
    return datetime.now(UTC).astimezone(i18n.timezone).date().replace(day=1)


def month_grid(first: date, sessions: list[dict[str, Any]]) -> Month:
    """Weeks from Monday to Sunday covering the month; each day with its sessions by their own wall clock."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for session in sorted(sessions, key=lambda s: (s["local_start"], s["title"])):
        by_day.setdefault(date.fromisoformat(session["local_start"][:10]), []).append(session)
    weeks = [
        [Day(day, day.month == first.month, by_day.get(day, [])) for day in week]
        for week in calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    ]
    names = babel.dates.get_day_names("wide", locale=i18n.current_language.get())
    return Month(first, weeks, [names[index] for index in range(7)])


# -- the pages ----------------------------------------------------------------------------------------------------


def catalogue_page(template: str, visitor: dict[str, Any] | None, status_code: int = 200, **context: Any) -> Template:
    """A page of this module, with what its templates share: the labels of statuses, wall clocks, zones."""
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


class BackOfficeCataloguePages(Controller):
    path = "/back-office"
    include_in_schema = False
    dependencies = {"organiser": Provide(organiser)}

    # -- Thèmes ---------------------------------------------------------------------------------------------------

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
        errors = {"_form": refusal_text(problem_of(answer))}
        return self._theme_form(organiser, theme, ThemeForm.of(theme), errors, form_status(answer.status_code))

    async def _theme(self, catalogue: Upstream, organiser: dict[str, Any], theme_id: uuid.UUID) -> dict[str, Any]:
        return await one(catalogue, f"{BACK_OFFICE}/themes/{theme_id}", organiser)

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

    # -- Séances: the list, the calendar ---------------------------------------------------------------------------

    @get("/sessions")
    async def sessions(
        self,
        organiser: dict[str, Any],
        catalogue: Upstream,
        status: str = "",
        theme_id: str = "",
        q: str = "",
        starts_from: Annotated[str, Parameter(query="from")] = "",
        starts_to: Annotated[str, Parameter(query="to")] = "",
        offset: str = "0",
    ) -> Template:
        search = SessionSearch.of(status, theme_id, q, starts_from, starts_to, offset_of(offset))
        actor = organiser["user_id"]
        found = await read(catalogue, f"{BACK_OFFICE}/sessions", actor, **search.query(), limit=PAGE_SIZE)
        themes = items_of(await read(catalogue, f"{BACK_OFFICE}/themes", actor)) or []
        total = found["total"] if found else 0
        return catalogue_page(
            "back_office_catalogue_sessions.html",
            organiser,
            400 if search.errors else 200,
            found=found,
            themes=themes,
            search=search,
            previous_link=search.link(max(0, search.offset - PAGE_SIZE)) if search.offset > 0 else None,
            next_link=search.link(search.offset + PAGE_SIZE) if search.offset + PAGE_SIZE < total else None,
        )

    @get("/sessions/calendar")
    async def month_calendar(self, organiser: dict[str, Any], catalogue: Upstream, month: str = "") -> Template:
        first = month_of(month)
        last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        sessions: list[dict[str, Any]] | None = []
        # a day either side: the catalogue bounds days in UTC or its zone, the grid shows each session's wall clock
        query = {"from": (first - timedelta(days=1)).isoformat(), "to": (last + timedelta(days=1)).isoformat()}
        while sessions is not None and len(sessions) < CALENDAR_AT_MOST:
            found = await read(
                catalogue, f"{BACK_OFFICE}/sessions", organiser["user_id"], **query, limit=200, offset=len(sessions)
            )
            if found is None:
                sessions = None
                break
            sessions += found["items"]
            if not found["items"] or len(sessions) >= found["total"]:
                break
        in_month = [s for s in sessions or () if s["local_start"][:7] == first.strftime("%Y-%m")]
        return catalogue_page(
            "back_office_catalogue_calendar.html",
            organiser,
            month=month_grid(first, in_month),
            count=len(in_month),
            unavailable=sessions is None,
            today=datetime.now(UTC).astimezone(i18n.timezone).date(),
        )

    # -- Séances: one session ---------------------------------------------------------------------------------------

    @get("/sessions/new")
    async def new_session(self, organiser: dict[str, Any], catalogue: Upstream, theme_id: str = "") -> Template:
        return await self._session_form(catalogue, organiser, None, SessionForm.blank(theme_id[:36]))

    @post("/sessions")
    async def create_session(
        self, data: Annotated[SessionForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        body, errors = data.checked()
        if errors:
            return await self._session_form(catalogue, organiser, None, data, errors, 400)
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/sessions", body, actor=organiser["user_id"])
        if answer.status_code in (200, 201):
            return done(f"/back-office/sessions/{answer.json()['id']}", "created")
        errors = refusal_errors(answer, SESSION_FIELDS, data.typed_start())
        return await self._session_form(catalogue, organiser, None, data, errors, form_status(answer.status_code))

    @get("/sessions/{session_id:uuid}")
    async def session(self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        return await self._session_page(catalogue, organiser, session_id)

    @get("/sessions/{session_id:uuid}/edit")
    async def edit_session(self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return await self._session_form(catalogue, organiser, session, SessionForm.of(session))

    @post("/sessions/{session_id:uuid}")
    async def change_session(
        self,
        session_id: uuid.UUID,
        data: Annotated[SessionForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        session = await self._session(catalogue, organiser, session_id)
        body, errors = data.checked()
        if errors:
            return await self._session_form(catalogue, organiser, session, data, errors, 400)
        path = f"{BACK_OFFICE}/sessions/{session_id}"
        answer = await catalogue.call("PUT", path, body, actor=organiser["user_id"])
        if answer.status_code == 200:
            return done(f"/back-office/sessions/{session_id}", "updated")
        errors = refusal_errors(answer, SESSION_FIELDS, data.typed_start())
        return await self._session_form(catalogue, organiser, session, data, errors, form_status(answer.status_code))

    @post("/sessions/{session_id:uuid}/publish")
    async def publish_session(
        self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        path = f"{BACK_OFFICE}/sessions/{session_id}/publish"
        answer = await catalogue.call("POST", path, {}, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/sessions/{session_id}", "published")
        errors = {"_form": refusal_text(problem_of(answer))}
        return await self._session_page(catalogue, organiser, session_id, errors, form_status(answer.status_code))

    @get("/sessions/{session_id:uuid}/reschedule")
    async def reschedule_page(self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return self._confirm_page(organiser, "reschedule", session, RescheduleForm.of(session))

    @post("/sessions/{session_id:uuid}/reschedule")
    async def reschedule(
        self,
        session_id: uuid.UUID,
        data: Annotated[RescheduleForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        session = await self._session(catalogue, organiser, session_id)
        body, errors = data.checked()
        if errors:
            return self._confirm_page(organiser, "reschedule", session, data, errors, 400)
        path = f"{BACK_OFFICE}/sessions/{session_id}/reschedule"
        answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/sessions/{session_id}", "rescheduled")
        typed = (data.local_date, data.local_time, data.timezone)
        errors = refusal_errors(answer, RESCHEDULE_FIELDS, typed)
        return self._confirm_page(organiser, "reschedule", session, data, errors, form_status(answer.status_code))

    @get("/sessions/{session_id:uuid}/cancel")
    async def cancel_page(self, session_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return self._confirm_page(organiser, "cancel", session, CancelForm())

    @post("/sessions/{session_id:uuid}/cancel")
    async def cancel(
        self, session_id: uuid.UUID, data: Annotated[CancelForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        session = await self._session(catalogue, organiser, session_id)
        body, errors = data.checked()
        if errors:
            return self._confirm_page(organiser, "cancel", session, data, errors, 400)
        path = f"{BACK_OFFICE}/sessions/{session_id}/cancel"
        answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/sessions/{session_id}", "cancelled")
        errors = refusal_errors(answer, CANCEL_FIELDS)
        return self._confirm_page(organiser, "cancel", session, data, errors, form_status(answer.status_code))

    async def _session(self, catalogue: Upstream, organiser: dict[str, Any], session_id: uuid.UUID) -> dict[str, Any]:
        return await one(catalogue, f"{BACK_OFFICE}/sessions/{session_id}", organiser)

    async def _session_page(
        self,
        catalogue: Upstream,
        organiser: dict[str, Any],
        session_id: uuid.UUID,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        session = await self._session(catalogue, organiser, session_id)
        return catalogue_page(
            "back_office_catalogue_session.html", organiser, status_code, session=session, errors=errors or {}
        )

    async def _session_form(
        self,
        catalogue: Upstream,
        organiser: dict[str, Any],
        session: dict[str, Any] | None,
        form: SessionForm,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        themes = items_of(await read(catalogue, f"{BACK_OFFICE}/themes", organiser["user_id"], status="active"))
        return catalogue_page(
            "back_office_catalogue_session_form.html",
            organiser,
            status_code,
            session=session,
            form=form.kept(),
            themes=themes,
            errors=errors or {},
        )

    def _confirm_page(
        self,
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

    # -- Séries ---------------------------------------------------------------------------------------------------

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
        errors = {"_form": refusal_text(problem_of(answer))}
        return await self._series_page(catalogue, organiser, series_id, errors, form_status(answer.status_code))

    @get("/series/{series_id:uuid}/cancel")
    async def cancel_series_page(
        self, series_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream
    ) -> Template:
        series = await self._series(catalogue, organiser, series_id)
        return self._confirm_page(organiser, "cancel", series, CancelForm(), series=True)

    @post("/series/{series_id:uuid}/cancel")
    async def cancel_series(
        self, series_id: uuid.UUID, data: Annotated[CancelForm, FORM], organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        series = await self._series(catalogue, organiser, series_id)
        body, errors = data.checked()
        if errors:
            return self._confirm_page(organiser, "cancel", series, data, errors, 400, series=True)
        path = f"{BACK_OFFICE}/series/{series_id}/cancel"
        answer = await catalogue.call("POST", path, body, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done(f"/back-office/series/{series_id}", "cancelled")
        errors = refusal_errors(answer, CANCEL_FIELDS)
        status_code = form_status(answer.status_code)
        return self._confirm_page(organiser, "cancel", series, data, errors, status_code, series=True)

    async def _series(self, catalogue: Upstream, organiser: dict[str, Any], series_id: uuid.UUID) -> dict[str, Any]:
        return await one(catalogue, f"{BACK_OFFICE}/series/{series_id}", organiser)

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
        themes = items_of(await read(catalogue, f"{BACK_OFFICE}/themes", organiser["user_id"], status="active"))
        return catalogue_page(
            "back_office_catalogue_series_form.html",
            organiser,
            status_code,
            series=series,
            form=form.kept(),
            themes=themes,
            errors=errors or {},
            positions=POSITIONS,
            ordinals=ORDINALS,
        )

    # -- Salles permanentes -------------------------------------------------------------------------------------------

    @get("/rooms")
    async def rooms(self, request: Request[Any, Any, Any], organiser: dict[str, Any], catalogue: Upstream) -> Template:
        return await self._rooms_page(request, catalogue, organiser)

    @post("/rooms")
    async def open_room(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[RoomForm, FORM],
        organiser: dict[str, Any],
        catalogue: Upstream,
    ) -> Response[Any]:
        body, errors = data.checked()
        if errors:
            return await self._rooms_page(request, catalogue, organiser, data, errors, 400)
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/rooms", body, actor=organiser["user_id"])
        if answer.status_code in (200, 201):
            return Redirect(f"/back-office/rooms?done=opened#room-{answer.json()['id']}", status_code=303)
        errors = refusal_errors(answer, ROOM_FIELDS)
        return await self._rooms_page(request, catalogue, organiser, data, errors, form_status(answer.status_code))

    @post("/rooms/{room_id:uuid}/close")
    async def close_room(
        self, request: Request[Any, Any, Any], room_id: uuid.UUID, organiser: dict[str, Any], catalogue: Upstream
    ) -> Response[Any]:
        answer = await catalogue.call("POST", f"{BACK_OFFICE}/rooms/{room_id}/close", {}, actor=organiser["user_id"])
        if answer.status_code in (200, 204):
            return done("/back-office/rooms", "closed")
        errors = {"_form": refusal_text(problem_of(answer))}
        return await self._rooms_page(
            request, catalogue, organiser, RoomForm(), errors, form_status(answer.status_code)
        )

    async def _rooms_page(
        self,
        request: Request[Any, Any, Any],
        catalogue: Upstream,
        organiser: dict[str, Any],
        form: RoomForm | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        rooms = items_of(await read(catalogue, f"{BACK_OFFICE}/rooms", organiser["user_id"]))
        return catalogue_page(
            "back_office_catalogue_rooms.html",
            organiser,
            status_code,
            rooms=rooms,
            site=str(request.base_url).rstrip("/"),
            form=(form or RoomForm()).model_copy(update={"entry_code": ""}),
            errors=errors or {},
        )


@dataclass(frozen=True)
class SessionSearch:
    """The sessions list's filters, as typed (kept in the form) and as the catalogue is asked."""

    status: str
    theme_id: str
    q: str
    starts_from: str
    starts_to: str
    offset: int
    errors: dict[str, str]

    @classmethod
    def of(cls, status: str, theme_id: str, q: str, starts_from: str, starts_to: str, offset: int) -> "SessionSearch":
        errors = {}
        for name, value in (("from", starts_from), ("to", starts_to)):
            if value.strip() and day_of(value) is None:
                errors[name] = gettext(N_("Une date, par exemple 2027-03-18."))
        try:
            theme = str(uuid.UUID(theme_id)) if theme_id else ""
        except ValueError:
            theme = ""
        return cls(
            status if status in STATUSES else "",
            theme,
            "".join(char for char in clip(q) if char.isprintable()).strip()[:100],
            starts_from.strip()[:10],
            starts_to.strip()[:10],
            offset,
            errors,
        )

    def query(self) -> dict[str, Any]:
        starts_from, starts_to = day_of(self.starts_from), day_of(self.starts_to)
        return {
            "status": self.status,
            "theme_id": self.theme_id,
            "q": self.q,
            "from": starts_from.isoformat() if starts_from else None,
            "to": starts_to.isoformat() if starts_to else None,
            "offset": self.offset,
        }

    def link(self, offset: int) -> str:
        kept = {"status": self.status, "theme_id": self.theme_id, "q": self.q, "from": self.starts_from}
        kept["to"] = self.starts_to
        return "?" + urlencode({name: value for name, value in kept.items() if value} | {"offset": offset})


# -- the public page of a permanent room ---------------------------------------------------------------------------


class JoinRoomForm(BaseModel):
    name: str = ""
    entry_code: str = ""


class RoomPages(Controller):
    """`/rooms/{link_token}`: a permanent room's perpetual link. Anyone holding the link sees the room's name, its
    description and how to join by phone, types their name (and the entry code when the room has one), and is sent
    to a fresh URL of the conferencing provider. The link is the secret: joining is rate-limited per address like
    every form that guesses a secret (`login`), and a wrong code or an unknown link says no more than that."""

    path = "/rooms"
    include_in_schema = False

    @get("/{link_token:str}")
    async def room(self, link_token: str, visitor: dict[str, Any] | None, catalogue: Upstream) -> Template:
        room = await self._room(catalogue, link_token)
        return page("catalogue_room.html", visitor, room=room, link_token=link_token, form=JoinRoomForm(), errors={})

    @post("/{link_token:str}", opt=RATE_LIMIT("login"))
    async def join(
        self,
        link_token: str,
        data: Annotated[JoinRoomForm, FORM],
        visitor: dict[str, Any] | None,
        catalogue: Upstream,
    ) -> Response[Any]:
        room = await self._room(catalogue, link_token)
        name = clip(data.name).strip()
        errors = {}
        if not name or len(name) > 200:
            errors["name"] = gettext(N_("Indiquez votre nom : les autres participants le verront."))
        if room.get("entry_code") and not data.entry_code.strip():
            errors["entry_code"] = gettext(N_("Saisissez le code d'accès de la salle."))
        if not errors:
            body = {"name": name, "entry_code": clip(data.entry_code).strip() or None}
            answer = await catalogue.call("POST", f"/internal/rooms/{link_token}/join", body)
            if answer.status_code == 200:
                return Redirect(answer.json()["url"], status_code=303)
            problem = problem_of(answer)
            if problem.get("code") == "wrong_entry_code":
                errors["entry_code"] = gettext(N_("Ce code d'accès n'est pas le bon."))
            else:
                errors["_form"] = refusal_text(problem)
            status_code = form_status(answer.status_code)
        else:
            status_code = 400
        typed = JoinRoomForm(name=name[:200])
        return page(
            "catalogue_room.html", visitor, status_code, room=room, link_token=link_token, form=typed, errors=errors
        )

    async def _room(self, catalogue: Upstream, link_token: str) -> dict[str, Any]:
        if not LINK_TOKEN.fullmatch(link_token):
            raise NotFoundException
        answer = await catalogue.call("GET", f"/internal/rooms/{link_token}")
        if answer.status_code in (404, 410):
            raise NotFoundException
        if answer.status_code != 200:
            raise ProblemError(503, "upstream_unavailable", "Service temporarily unavailable", "catalogue")
        room: dict[str, Any] = answer.json()
        return room
