"""Reading an SLA policy file (TOML or YAML) into the validated model; errors name the bad entry."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from casework.calendars import SOURCES, CalendarSourceError, china_days, ics_days
from domain.sla import SlaPolicy

DEFAULT_POLICY = Path(__file__).resolve().parent / "policies" / "default.toml"


class PolicyError(Exception):
    pass


class _PlainNumbersLoader(yaml.SafeLoader):
    """YAML with the numbers YAML 1.2 (and TOML) know: YAML 1.1 reads `1:30` as 90 (base 60) and
    `010` as 8 (octal), so a policy would load and mean something else. Such a value stays a
    string here, and a string where hours are due is refused by the policy model."""


_PlainNumbersLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_PlainNumbersLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_PlainNumbersLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"), list("-+0123456789."))


def load_policy(path: str | Path | None = None) -> SlaPolicy:
    path = Path(path or DEFAULT_POLICY)
    try:
        text = path.read_text()
    except OSError as err:
        raise PolicyError(f"SLA policy {path}: {err.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_PlainNumbersLoader) if path.suffix in (".yaml", ".yml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise PolicyError(f"SLA policy {path} does not parse: {err}") from None
    for name, cal in (raw.get("calendars") or {}).items():
        if isinstance(cal, dict):
            _fill_calendar(path, name, cal)
    try:
        return SlaPolicy.model_validate(raw)
    except ValidationError as err:
        raise PolicyError(f"SLA policy {path}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}"
            + (f" (got {e['input']!r})" if isinstance(e.get("input"), (str, int, float, bool)) else "")
            for e in err.errors())) from None


# Options of a calendar entry that say where its dates come from; read here, when the policy loads,
# and replaced by the dates themselves (see casework/calendars.py for the ICS rules).
CALENDAR_OPTIONS = ("holidays_source", "source_years", "holidays_ics", "workdays_ics")


def _fill_calendar(path: Path, name: str, cal: dict) -> None:
    """Replace a calendar entry's source options by the holidays, make-up days and closures they give."""
    where = f"SLA policy {path}: calendars.{name}"
    options = {key: cal.pop(key) for key in CALENDAR_OPTIONS if key in cal}
    if not options:
        return
    years = options.get("source_years")
    if years is not None and not {"holidays_source", "holidays_ics", "workdays_ics"} & options.keys():
        raise PolicyError(f"{where}.source_years: no holidays_source, holidays_ics or workdays_ics to read")
    if years is not None:
        if not (isinstance(years, list) and len(years) == 2 and all(type(y) is int for y in years)
                and years[0] <= years[1]):
            raise PolicyError(f"{where}.source_years: give [first, last] years, got {years!r}")
        years = (years[0], years[1])
    try:
        zone = ZoneInfo(str(cal.get("timezone", "UTC")))
    except (ValueError, KeyError, OSError):
        zone = ZoneInfo("UTC")  # the calendar's own validation names the bad zone
    found: dict[str, list] = {"holidays": [], "workdays": [], "closures": []}
    sources: list[str] = []
    coverages: list[tuple[date, date] | None] = []  # None: a source publishing none of the years
    statutory: tuple[date, date] | None = None
    source = options.get("holidays_source")
    if source is not None:
        if source not in SOURCES:
            raise PolicyError(f"{where}.holidays_source: unknown source {source!r} (known: {', '.join(SOURCES)})")
        try:
            china = china_days(years)
        except CalendarSourceError as err:
            raise PolicyError(f"{where}.holidays_source: {err}") from None
        found["holidays"] += china.days.holidays
        found["workdays"] += china.days.workdays
        coverages.append(china.published)
        statutory = china.statutory
        sources.append(china.source)
    for key, as_workdays in (("holidays_ics", False), ("workdays_ics", True)):
        if options.get(key) is None:
            continue
        ics_path = (path.parent / str(options[key])).resolve()
        try:
            days = ics_days(ics_path.read_text(encoding="utf-8"), zone, years, workdays=as_workdays)
        except OSError as err:
            raise PolicyError(f"{where}.{key} {ics_path}: {err.strerror}") from None
        except (CalendarSourceError, UnicodeDecodeError) as err:
            raise PolicyError(f"{where}.{key} {ics_path}: {err}") from None
        found["holidays"] += days.holidays
        found["workdays"] += days.workdays
        found["closures"] += days.closures
        if years is not None:
            coverages.append((date(years[0], 1, 1), date(years[1], 12, 31)))
        sources.append(f"{options[key]} ({key}" + (f", {years[0]}-{years[1]})" if years else ")"))
    for key, values in found.items():
        if values:
            given = cal.get(key, [])
            cal[key] = [*(given if isinstance(given, list) else [given]), *values]
    if sources:
        cal["source"] = "; ".join([*filter(None, [cal.get("source")]), *sources])
    if coverages:
        known = [c for c in coverages if c is not None]
        both = (max(c[0] for c in known), min(c[1] for c in known)) if len(known) == len(coverages) else None
        if both is not None and both[0] <= both[1]:
            cal["coverage"] = both  # else a source publishes none of the dates: covers() says so
    if statutory is not None:
        cal["statutory"] = statutory


def calendar_coverage(policy: SlaPolicy, years: range) -> list[tuple[str, int, str]]:
    """(calendar, year, how its holidays are known: "published", "statutory" or "weekly hours") for
    every calendar that takes its dates from a source; a year is only as well known as its worst day."""
    order = ("published", "statutory", "weekly hours")
    return [(name, year, max((cal.coverage_of(date(year, 1, 1)), cal.coverage_of(date(year, 12, 31))),
                             key=order.index))
            for name, cal in policy.calendars.items() if cal.source for year in years]


def coverage_warnings(policy: SlaPolicy, today: date) -> list[str]:
    """What the engine says at start when this year or the next is not covered by a published
    schedule: business time is then counted without make-up working days (or without any holidays)."""
    out = []
    for name, year, known in calendar_coverage(policy, range(today.year, today.year + 2)):
        if known == "statutory":
            out.append(f"calendar {name!r}: {year} has only the statutory public holidays (no published "
                       "schedule: make-up working days and bridged days are missing); update the holiday "
                       "source (a newer release of its package) when the schedule is published")
        elif known == "weekly hours":
            out.append(f"calendar {name!r}: no holidays are known for {year} (only the weekly hours "
                       "count); widen source_years or update the holiday source")
    return out
