"""The catalogue back-office's forms (gateway.back_office_catalogue): what an organiser types for a theme, a session,
a series, a reschedule, a cancellation, a permanent room and the name they join a room under, each form checking
what it can say alone (a day, a time, a number, a field left empty) and giving the body the catalogue takes; and the
catalogue's refusals (its problem `code`) in the reader's language, placed next to the form's field they are about,
a time skipped by the clocks naming the jump."""

import re
import uuid
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import babel.dates
from pydantic import BaseModel

from gateway import i18n
from gateway.back_office_catalogue_api import (
    AGENDA_LENGTH,
    DESCRIPTION_LENGTH,
    ENTRY_CODE_LENGTH,
    MAX_CAPACITY,
    MAX_TOKENS,
    NOTE_LENGTH,
)
from gateway.i18n import N_, gettext
from gateway.messages import problem_message
from gateway.portal import clip

DEFAULT_ZONE = "Europe/Paris"

# The longest text each field may hold (the catalogue's bounds).
LENGTHS = {
    "description": DESCRIPTION_LENGTH,
    "prerequisites": NOTE_LENGTH,
    "waiting_message": NOTE_LENGTH,
    "agenda": AGENDA_LENGTH,
    "room_description": NOTE_LENGTH,
}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
POSITIONS = ("1", "2", "3", "4", "-1")
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


# -- refusals -----------------------------------------------------------------------------------------------------


def said(code: str) -> str:
    """A refusal of REFUSALS in the reader's language."""
    return gettext(REFUSALS[code])


def problem_of(answer: Any) -> dict[str, Any]:
    if answer.status_code >= 500 or not answer.headers.get("content-type", "").endswith("json"):
        return {"code": "upstream_error", "status": 502}
    problem = answer.json()
    return problem if isinstance(problem, dict) else {"code": "upstream_error", "status": 502}


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
    answer: Any, fields: tuple[str, ...] = (), typed_start: tuple[str, str, str] | None = None
) -> dict[str, str]:
    """The catalogue's refusal, next to the form's field it is about (else, or with no `fields`, above the form)."""
    problem = problem_of(answer)
    code = problem.get("code")
    named = problem.get("field") if isinstance(problem.get("field"), str) else ""
    named = named.rsplit(".", 1)[-1]
    field = FIELD_OF_CODE.get(code) if isinstance(code, str) else None
    field = field or FORM_FIELD_OF.get(named, named)
    return {field if field in fields else "_form": refusal_text(problem, typed_start)}


# -- checks shared by the forms ----------------------------------------------------------------------------------


def check_length(name: str, value: str, limit: int, errors: dict[str, str]) -> None:
    if len(value.strip()) > limit:
        errors[name] = gettext(N_("%(num)s caractères au plus.")) % {"num": i18n.format_number(limit)}


def checked_title(value: str, errors: dict[str, str]) -> str:
    title = clip(value).strip()
    if not title or len(title) > 200:
        errors["title"] = gettext(N_("Le titre est obligatoire (200 caractères au plus)."))
    return title


def checked_entry_code(value: str, errors: dict[str, str]) -> str:
    """The entry code typed ("" for none); one of a wrong length puts its problem into `errors`."""
    code = clip(value).strip()
    if code and not 4 <= len(code) <= ENTRY_CODE_LENGTH:
        errors["entry_code"] = gettext(N_("Un code d'accès compte de 4 à 64 caractères."))
    return code


def check_provider(provider: str, errors: dict[str, str]) -> None:
    if provider not in ("", "bbb", "jitsi"):
        errors["provider"] = gettext(N_("Choisissez l'outil de visioconférence."))


def checked_theme_id(value: str, errors: dict[str, str]) -> str | None:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        errors["theme_id"] = gettext(N_("Choisissez un thème de la liste."))
        return None


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
        title = checked_title(self.title, errors)
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
        title = checked_title(self.title, errors)
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
        entry_code = checked_entry_code(self.entry_code, errors) if self.access == "code" else ""
        check_provider(self.provider, errors)
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
        if entry_code:
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


# -- permanent rooms ----------------------------------------------------------------------------------------------


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
        check_provider(self.provider, errors)
        entry_code = checked_entry_code(self.entry_code, errors)
        body = {
            "name": name,
            "description": self.description.strip(),
            "provider": self.provider or None,
            "entry_code": entry_code or None,
        }
        return body, errors


ROOM_FIELDS = tuple(RoomForm.model_fields)


# -- joining a room as its moderator ------------------------------------------------------------------------------


class JoinForm(BaseModel):
    """The name an organiser joins a room under, as its moderator (the animator of a published session, or an
    organiser in a permanent room): the others in the room see it."""

    name: str = ""

    @classmethod
    def of(cls, organiser: dict[str, Any]) -> "JoinForm":
        """The organiser's own name when their identity has one, else nothing."""
        return cls(name=clip(organiser.get("name") or "").strip()[:200])

    def checked(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        name = clip(self.name).strip()
        if not name or len(name) > 200 or not name.isprintable():
            errors["name"] = gettext(N_("Indiquez votre nom (200 caractères au plus) : les participants le verront."))
        return {"name": name}, errors

    def kept(self) -> "JoinForm":
        return self.model_copy(update={"name": clip(self.name).strip()[:200]})
