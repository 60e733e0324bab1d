"""The portal's catalogues are complete and up to date, and the locale's formats are the reader's."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gateway import i18n

GATEWAY = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted_ids() -> set[str]:
    """What `make messages` extracts (babel.cfg), read the same way pybabel does."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(str(GATEWAY), method_map, keywords=keywords):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalogue(language: str) -> dict[str, object]:
    with (GATEWAY / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return {(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in read_po(po, locale=language) if m.id}


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_the_catalogues_hold_every_text_of_the_portal_and_nothing_else(language: str) -> None:
    in_sources = extracted_ids()
    in_catalogue = set(catalogue(language))
    assert not in_sources - in_catalogue, "texts missing from the catalogue: run `make messages`"
    assert not in_catalogue - in_sources, "texts no longer used: run `make messages`"


def test_every_english_text_is_translated_with_the_same_placeholders() -> None:
    for message_id, message in catalogue("en").items():
        strings = message.string if isinstance(message.string, tuple) else (message.string,)  # type: ignore[attr-defined]
        assert all(strings), f"not translated: {message_id!r}"
        assert "fuzzy" not in message.flags, f"fuzzy: {message_id!r}"  # type: ignore[attr-defined]
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == set(PLACEHOLDER.findall(message_id)), message_id


def test_amounts_dates_and_times_follow_the_language_in_paris_time() -> None:
    moment = datetime(2026, 3, 5, 13, 30, tzinfo=UTC)  # 14:30 in Paris (winter time)
    token = i18n.current_language.set("fr")
    try:
        assert i18n.format_money(72).replace("\u202f", " ").replace("\xa0", " ") == "72,00 €"
        assert i18n.format_date(moment) == "5 mars 2026"
        assert "14:30" in i18n.format_datetime(moment)
        i18n.current_language.set("en")
        assert i18n.format_money(72) == "€72.00"
        assert i18n.format_date(moment) == "March 5, 2026"
        assert "2:30" in i18n.format_datetime(moment)
        assert i18n.gettext("Mon compte") == "My account"
    finally:
        i18n.current_language.reset(token)
