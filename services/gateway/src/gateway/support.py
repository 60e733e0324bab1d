"""How to reach support, as the footer and the help pages show it: a phone number and opening hours, both from
configuration (`GATEWAY_SUPPORT_PHONE`, `GATEWAY_SUPPORT_DAYS`, `GATEWAY_SUPPORT_HOURS`), shown in the
reader's language."""

from dataclasses import dataclass
from datetime import time

import babel.dates

from gateway import i18n

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Support:
    phone: str  # as shown, e.g. "01 84 80 12 34"
    first_day: int  # 0 = Monday
    last_day: int
    periods: tuple[tuple[time, time], ...]

    @classmethod
    def parse(cls, phone: str, days: str, hours: str) -> "Support":
        """`days`: "mon-fri" (or one day, "sat"); `hours`: "08:30-12:00,13:30-17:00". ValueError otherwise."""
        first, _, last = days.strip().lower().partition("-")
        periods = []
        for period in hours.split(","):
            start, _, end = period.strip().partition("-")
            opens, closes = time.fromisoformat(start), time.fromisoformat(end)
            if closes <= opens:
                raise ValueError(f"support hours: {period!r} closes before it opens")
            periods.append((opens, closes))
        if not periods:
            raise ValueError("support hours: none given")
        return cls(phone.strip(), DAYS.index(first), DAYS.index(last or first), tuple(periods))

    @property
    def phone_link(self) -> str:
        """The number for a `tel:` link: digits and a leading +, a French national number made international."""
        digits = "".join(c for c in self.phone if c.isdigit() or c == "+")
        return "+33" + digits[1:] if digits.startswith("0") else digits

    def hours(self) -> str:
        """E.g. "du lundi au vendredi, 08:30-12:00 et 13:30-17:00" (en dashes) in the current language."""
        language = i18n.current_language.get()
        names = babel.dates.get_day_names("wide", locale=language)
        times = [
            f"{babel.dates.format_time(opens, 'short', locale=language)}\u2013"
            f"{babel.dates.format_time(closes, 'short', locale=language)}"
            for opens, closes in self.periods
        ]
        days = (
            names[self.first_day]
            if self.first_day == self.last_day
            else i18n.gettext("du %(first)s au %(last)s")
            % {"first": names[self.first_day], "last": names[self.last_day]}
        )
        conjunction = i18n.gettext("et")  # not inside the f-string: pybabel does not extract from one
        return f"{days}, {f' {conjunction} '.join(times)}"
