"""The portal's languages: French (the default, and the language the templates are written in) and English.

Texts are marked in templates with `_("…")` and in Python with `gettext`/`N_`; `make messages` extracts them
with pybabel into `locale/messages.pot` and updates the catalogues `locale/<lang>/LC_MESSAGES/messages.po`.
The French catalogue is the source text itself (an empty translation shows the message id); the English one
must translate every message (tests/test_portal_i18n.py checks it and that the catalogues are up to date).
Catalogues are read from the .po files when the gateway starts: no compiled file to keep in step.

The language of a request is decided once (gateway.web) and kept in a context variable, which the template
functions and the formatters below read.
"""

import gettext as stdlib_gettext
import io
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import babel.dates
import babel.numbers
import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
LOCALE_DIR = Path(__file__).parent / "locale"

current_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)
timezone: ZoneInfo = ZoneInfo("Europe/Paris")  # set from GATEWAY_TIMEZONE by gateway.main


def _load(language: str) -> stdlib_gettext.NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return stdlib_gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return stdlib_gettext.GNUTranslations(compiled)


TRANSLATIONS = {language: _load(language) for language in LANGUAGES}


def language_or_default(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT_LANGUAGE


def gettext(message: str) -> str:
    return TRANSLATIONS[current_language.get()].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return TRANSLATIONS[current_language.get()].ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a text for extraction where it is defined; it is translated where it is shown (`gettext`)."""
    return message


def format_date(value: date | datetime | str, form: str = "long") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(timezone)
    return babel.dates.format_date(value, form, locale=current_language.get())


def format_datetime(value: datetime | str, form: str = "medium") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return babel.dates.format_datetime(value, form, tzinfo=timezone, locale=current_language.get())


def format_money(amount: Decimal | int | float | str, currency: str = "EUR") -> str:
    """An amount in `currency` units (not cents), e.g. 72 -> "72,00 €" in French, "€72.00" in English."""
    return babel.numbers.format_currency(Decimal(str(amount)), currency, locale=current_language.get())


def format_number(value: int | Decimal) -> str:
    return babel.numbers.format_decimal(value, locale=current_language.get())


def install(environment: jinja2.Environment) -> None:
    """`_()`/`ngettext()` and the locale's formatters in every template."""
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.filters.update(date=format_date, datetime=format_datetime, money=format_money, number=format_number)
    environment.globals["current_language"] = current_language.get
