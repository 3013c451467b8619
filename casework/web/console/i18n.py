"""Languages of the console: gettext catalogs (locale/<lang>/LC_MESSAGES/messages.po) read with Babel
and compiled in memory when this module loads, so there is no .mo file to build or to fall out of date.
Dates, times, numbers and durations are formatted by Babel in the person's language and the
calendar's zone."""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "zh_CN")  # the first is the default
DOMAIN = "messages"


def _compile(lang: str) -> Translations:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


CATALOGS = {lang: _compile(lang) for lang in LANGUAGES}


@functools.lru_cache(maxsize=16)
def _decimal_format(lang: str) -> tuple[Locale, numbers.NumberPattern]:
    locale = Locale.parse(lang)
    return locale, numbers.parse_pattern(locale.decimal_formats[None])


def decimal(value: float | int, lang: str) -> str:
    """numbers.format_decimal(value, locale=lang), the same text: a dashboard formats its figures by
    the thousand, and format_decimal parses the locale and its pattern each time (half its cost);
    the values recur (percentages to one decimal), so each is formatted once."""
    # Remembered by type and sign too: 1 and 1.0, 0.0 and -0.0 are equal keys but babel writes "-0".
    return _decimal(value, lang, value < 0 or (isinstance(value, float) and math.copysign(1.0, value) < 0))


@functools.lru_cache(maxsize=16_384, typed=True)  # our figures, not a request's text: ~5 MiB at most
def _decimal(value: float | int, lang: str, negative: bool) -> str:
    locale, pattern = _decimal_format(lang)
    return pattern.apply(value, locale)


def negotiate(accept_language: str | None) -> str:
    """The first language of an Accept-Language header (by q-value) the console speaks; default English."""
    ranked = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return LANGUAGES[0]


@dataclass(frozen=True)
class Speaker:
    """One request's language and zone: the gettext functions and formatters its templates use."""

    lang: str
    zone: ZoneInfo

    @property
    def translations(self) -> Translations:
        return CATALOGS[self.lang]

    def gettext(self, message: str, **values: object) -> str:
        text = self.translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self.translations.ngettext(singular, plural, n)
        return text % {"num": n, **values}

    @property
    def html_lang(self) -> str:
        return self.lang.replace("_", "-")

    def when(self, at: datetime | str | None) -> str:
        """A date and time in the calendar's zone, with the zone's name, as people there read it."""
        if at is None or at == "":
            return "—"
        if isinstance(at, str):
            at = datetime.fromisoformat(at.replace("Z", "+00:00"))
        return dates.format_datetime(at, "yyyy-MM-dd HH:mm", tzinfo=self.zone, locale=self.lang)

    def day_of(self, day: date) -> str:
        """A calendar day (already a day of the calendar's zone)."""
        return dates.format_date(day, "medium", locale=self.lang)

    def duration(self, span: timedelta | None) -> str:
        """'2 h 05 min' style, exact to the minute (Babel's own rounds to one unit)."""
        if span is None:
            return "—"
        minutes = int(abs(span).total_seconds() // 60)
        days, rest = divmod(minutes, 24 * 60)
        hours, mins = divmod(rest, 60)
        parts = []
        if days:
            parts.append(self.gettext("%(n)s d", n=days))
        if days or hours:
            parts.append(self.gettext("%(n)s h", n=hours))
        parts.append(self.gettext("%(n)s min", n=f"{mins:02d}" if (days or hours) else mins))
        return " ".join(parts)

    def remaining(self, due: datetime | str | None, now: datetime) -> str:
        if due is None or due == "":
            return "—"
        if isinstance(due, str):
            due = datetime.fromisoformat(due.replace("Z", "+00:00"))
        left = due - now
        if left >= timedelta(0):
            return self.gettext("%(span)s left", span=self.duration(left))
        return self.gettext("%(span)s overdue", span=self.duration(left))

    def number(self, value: float | int | None, digits: int = 1) -> str:
        if value is None:
            return "—"
        return decimal(round(value, digits), self.lang)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "—"
        return decimal(round(value, 1), self.lang) + " %"

    def zone_name(self) -> str:
        return str(self.zone)
