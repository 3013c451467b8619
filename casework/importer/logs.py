"""Reading an event log (CSV, or XES, the process-mining standard) into traces: one case's rows, in
time order. A row that cannot be read is a Problem naming its place; its trace is then not imported
(a case is imported whole or not at all), and nothing else is lost."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from defusedxml.ElementTree import iterparse  # XML from outside: no entity expansion, no external fetches

from casework.importer.mapping import Mapping, MappingError


@dataclass(frozen=True)
class Row:
    case: str
    activity: str
    at: datetime
    resource: str
    attributes: dict[str, str]
    where: str  # "line 12" / "trace 3, event 4": for messages
    timestamp: str  # as written
    # What the row is (row_key: case, activity, UTC instant, and its occurrence): its commands' ids
    # derive from it, so the same row in a later or re-ordered export is recognised as imported already.
    key: str = ""


@dataclass(frozen=True)
class Problem:
    case: str
    where: str
    message: str


@dataclass
class Trace:
    case: str
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def log_format(path: str | Path) -> str:
    suffix = "".join(Path(path).suffixes[-2:]).lower()
    if suffix.endswith(".xes"):
        return "xes"
    if suffix.endswith(".csv"):
        return "csv"
    raise MappingError(f"{path}: give a .csv or .xes event log")


def read_traces(path: str | Path, mapping: Mapping) -> list[Trace]:
    """Every trace of the log, in the order cases first appear; rows of a trace sorted by time
    (stable: rows with the same instant keep their order in the log)."""
    traces: dict[str, Trace] = {}
    raw = _csv_rows(path, mapping) if log_format(path) == "csv" else _xes_rows(path)
    for where, values, malformed in raw:
        case = (values.get(mapping.columns.case) or "").strip()
        trace = traces.setdefault(case, Trace(case))
        row = Problem(case, where, malformed) if malformed else _row(where, values, mapping)
        if isinstance(row, Problem):
            trace.problems.append(row)
        else:
            trace.rows.append(row)
    for trace in traces.values():
        trace.rows.sort(key=lambda r: r.at)
        # Rows with the same identity (a duplicate in the log, or the same activity twice in one
        # instant) are told apart by their occurrence, counted in the order of their content, not
        # their place in the file: a re-export in another order is the same rows. Against a stored
        # case the planner keeps each stored row's occurrence (plan.Planner._keep_stored_keys).
        same: dict[str, list[int]] = {}
        for i, row in enumerate(trace.rows):
            same.setdefault(row_key(row), []).append(i)
        for identity, places in same.items():
            places.sort(key=lambda i: _content(trace.rows[i]))
            for n, i in enumerate(places, 1):
                trace.rows[i] = replace(trace.rows[i], key=identity if n == 1 else f"{identity}~{n}")
    return list(traces.values())


def row_key(row: Row) -> str:
    """A digest of what the row is: its case, activity and instant (in UTC: the same instant written
    with another offset is the same row). Never its line, and not its resource or attributes: those
    are what a later export may correct, and a row whose content now plans otherwise is reported
    as changed, not taken for another row (docs/import.md, "Importing again")."""
    content = [row.case, row.activity, row.at.astimezone(UTC).isoformat()]
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()[:20]


def _content(row: Row) -> str:
    return json.dumps([row.resource, sorted(row.attributes.items())], separators=(",", ":"))


def _row(where: str, values: dict[str, str], mapping: Mapping) -> Row | Problem:
    cols = mapping.columns
    case, activity = (values.get(cols.case) or "").strip(), (values.get(cols.activity) or "").strip()
    stamp = (values.get(cols.timestamp) or "").strip()
    if not case:
        return Problem(case, where, f"no case id (column '{cols.case}')")
    if not activity:
        return Problem(case, where, f"no activity (column '{cols.activity}')")
    at = parse_instant(stamp, mapping)
    if isinstance(at, str):
        return Problem(case, where, at)
    return Row(case=case, activity=activity, at=at, resource=(values.get(cols.resource) or "").strip(),
               attributes={name: (values.get(col) or "").strip() for name, col in cols.attributes.items()},
               where=where, timestamp=stamp)


def parse_instant(text: str, mapping: Mapping) -> datetime | str:
    """The instant, or what is wrong with it."""
    spec = mapping.timestamp
    if not text:
        return f"no timestamp (column '{mapping.columns.timestamp}')"
    try:
        at = datetime.strptime(text, spec.format) if spec.format else datetime.fromisoformat(text)
    except ValueError:
        return f"timestamp '{text}' does not read as {spec.format or 'ISO 8601'}"
    if at.tzinfo is None:
        if not spec.timezone:
            return (f"timestamp '{text}' has no time zone; give the log's zone in the mapping "
                    "([timestamp] timezone = \"Europe/Brussels\", say)")
        at = at.replace(tzinfo=ZoneInfo(spec.timezone))
        # A wall time the zone's clocks show twice (a fold) or skip (a gap) is no one instant: the
        # two readings (fold 0 and 1) differ. Which one was meant is a guess: refused.
        if at.utcoffset() != at.replace(fold=1).utcoffset():
            skipped = at.astimezone(UTC).astimezone(at.tzinfo).replace(tzinfo=None) != at.replace(tzinfo=None)
            return (f"timestamp '{text}' {'does not exist' if skipped else 'happens twice'} in {spec.timezone} "
                    f"(the clocks {'skip' if skipped else 'repeat'} that hour): write it with its offset")
    # A log is history: nothing has happened after now (a typo, 2036 for 2026, would be handed to
    # the engine as a case opened in years to come). The as-of commands refuse the future likewise.
    now = datetime.now(UTC)
    if at > now:
        return (f"timestamp '{text}' is in the future (now is {now.isoformat(timespec='seconds')}): "
                "a log records what happened")
    return at


def _csv_rows(path: str | Path, mapping: Mapping) -> Iterator[tuple[str, dict[str, str], str]]:
    """(where, the row's values by column, what is malformed about it or "")."""
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as err:
        raise MappingError(f"event log {path}: {err.strerror}") from None
    with f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames or []
        except (UnicodeDecodeError, csv.Error) as err:
            raise MappingError(f"event log {path}: not a CSV text file ({err})") from None
        cols = mapping.columns
        missing = [c for c in (cols.case, cols.activity, cols.timestamp, *cols.attributes.values())
                   if c not in header]
        if missing:
            raise MappingError(f"event log {path}: no column {', '.join(repr(m) for m in missing)} "
                               f"(the header has: {', '.join(header)})")
        try:
            for values in reader:
                yield f"line {reader.line_num}", values, _misfit(values, len(header))
        except (UnicodeDecodeError, csv.Error) as err:
            raise MappingError(f"event log {path}, line {reader.line_num}: {err}") from None


def _misfit(values: dict, width: int) -> str:
    """What is wrong with a row whose cells do not fit the header, or "". DictReader files extra cells
    under None and fills missing ones with None: such a row has shifted or lost cells, and none of its
    values can be trusted."""
    if None in values:
        return f"malformed row: more cells than the header's {width}"
    if None in values.values():
        return f"malformed row: fewer cells than the header's {width}"
    return ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xes_rows(path: str | Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """Events with their trace's attributes as `case:<key>` (the usual flattening of XES)."""
    traces = events = 0
    trace_attrs: dict[str, str] = {}
    depth: list[str] = []
    try:
        for kind, el in iterparse(str(path), events=("start", "end")):
            tag = _local(el.tag)
            if kind == "start":
                depth.append(tag)
                if tag == "trace":
                    traces, events, trace_attrs = traces + 1, 0, {}
                continue
            depth.pop()
            parent = depth[-1] if depth else ""
            if tag == "event" and parent == "trace":
                events += 1
                values = {f"case:{k}": v for k, v in trace_attrs.items()}
                for child in el:
                    if "key" in child.attrib and "value" in child.attrib:
                        values[child.attrib["key"]] = child.attrib["value"]
                yield f"trace {traces}, event {events}", values, ""
                el.clear()
            elif parent == "trace" and "key" in el.attrib and "value" in el.attrib:
                trace_attrs[el.attrib["key"]] = el.attrib["value"]
            elif tag == "trace":
                el.clear()
    except OSError as err:
        raise MappingError(f"event log {path}: {err.strerror}") from None
    except Exception as err:  # ParseError, and defusedxml's refusals of entities and DTDs
        raise MappingError(f"event log {path} is not well-formed XES (entities and DTDs are refused): {err}") from None
