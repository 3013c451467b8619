"""The manager's dashboard by day: `dashboard_days`, kept by the projection in the transaction of
the batch that changes a case, so it is exactly once and a rebuild makes it too (docs/reporting.md).

One row per (zone, local day the case opened, team, channel): how many of its cases pass each of
the dashboard's tests (FIGURES, the Python twins of casework/web/console/figures.py's SQL tests),
the exact sum of their satisfaction scores, and their durations in hours, sorted, so a range of
years reads a few thousand rows instead of every case and its percentiles stay exact (ranked over
the very values the `cases` rows hold; on PostgreSQL, whose REAL is 4 bytes, rounded as it stores).

The days are of one zone, the one the projection was opened with (`CASEWORK_DASHBOARD_ZONE` in its
environment, casework.config.reporting_env: the console's zone). `dashboard_zone` names the zone
the rows are complete for; the console reads them only in that zone and counts the cases itself
in any other. A projection opened with another zone re-derives the rows from `cases` in its next
batch's transaction (keep); opened without one, it drops them, since it would not keep them.
"""

from __future__ import annotations

import bisect
import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from projections.schema import CLOCK_NAMES

# The dashboard's tests, in the order of their columns (figures.FIGURES has the same names in SQL).
FIGURES = ("opened", "sla_held", "sla_met", "breached", "responded", "resolved", "closed", "fcr", "reopened",
           "surveyed", "below_target", "open")
COUNTS = tuple(f"n_{name}" for name in FIGURES)
COLUMNS = ("zone", "local_day", "team", "channel", *COUNTS, "score_sum", "score_odd", "first_response_h",
           "resolution_h")
ZONE_KEY = "CASEWORK_DASHBOARD_ZONE"  # in the reporting environment: the zone the projection keeps days in

# A score is summed exactly as an integer count of 2**-60: exact for every double from 2**-8 up
# (and 0). Any other (a positive below 1/256, say) is counted in score_odd, and the console then
# sums the cases itself for any range holding one.
SCALE = 1 << 60
_TARGET: list[float] = []


def _target() -> float:
    if not _TARGET:  # projections.reports reads the view, which imports this module
        from projections.reports import SATISFACTION_TARGET
        _TARGET.append(SATISFACTION_TARGET)
    return _TARGET[0]


def float4(x: float) -> float:
    """x as PostgreSQL's REAL keeps it (the nearest 4-byte float)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _same(x: float) -> float:
    return x


def pack(values: list[float]) -> str:
    """Sorted hours as text (little-endian doubles in hex): one column type on both backends."""
    return struct.pack(f"<{len(values)}d", *values).hex() if values else ""


def unpack(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    raw = bytes.fromhex(text)
    return struct.unpack(f"<{len(raw) // 8}d", raw)


def scaled(score: float) -> int | None:
    """The score as an exact count of 2**-60, or None when it is not one."""
    if score == 0 or 2.0 ** -8 <= abs(score) < 2.0 ** 900:
        return int(score * SCALE)
    return None


# ---------------------------------------------------------------- what one case adds to its day


class Part(NamedTuple):
    """One case's share of its day's row (a tuple: made and compared for every case of every batch)."""

    key: tuple[str, str, str]  # (local day, team ('' for none), channel)
    flags: tuple[int, ...]  # 1 for each test of FIGURES it passes
    score: float | None
    first_response_h: float | None
    resolution_h: float | None


_DAYS: dict[tuple[datetime, ZoneInfo], str] = {}  # a case's day, read before and after each of its batches


def part(opened_at: datetime, team: str | None, channel: str, sla: bool, breached: bool,
         first_s: float | None, resolution_s: float | None, closed: bool, fcr: bool, reopened: bool,
         score: float | None, zone: ZoneInfo) -> Part:
    """The share of a case from the values its `cases` row holds (figures.FIGURES' tests, in Python)."""
    surveyed = score is not None
    flags = (1, int(sla), int(sla and not breached), int(sla and breached), int(first_s is not None),
             int(resolution_s is not None), int(closed), int(closed and fcr), int(closed and reopened),
             int(surveyed), int(surveyed and score < _target()), int(not closed))  # type: ignore[operator]
    day = _DAYS.get((opened_at, zone))
    if day is None:
        if len(_DAYS) > 50_000:
            _DAYS.clear()
        day = _DAYS[(opened_at, zone)] = opened_at.astimezone(zone).date().isoformat()
    return Part((day, team or "", channel), flags, score,
                None if first_s is None else first_s / 3600.0,  # one IEEE division, as the SQL's / 3600.0
                None if resolution_s is None else resolution_s / 3600.0)


def part_of_memory(m: Any, zone: ZoneInfo, real=_same) -> Part:
    """From the projection's memory of a case (projections/memory.py), as handlers.case_row writes
    its row; `real`: how the backend stores a REAL."""
    first = None if m.first_response_at is None else real((m.first_response_at - m.opened_at).total_seconds())
    end = m.solved_at if m.closed_at is None else (m.solved_at or m.closed_at)
    resolution = None if end is None else real((end - m.opened_at).total_seconds())
    breached = m.breached
    return part(m.opened_at, m.team, m.channel, m.policy_version is not None,
                any(name in breached for name in CLOCK_NAMES), first, resolution, m.closed_at is not None,
                m.closure_reason == "resolved" and m.reopen_count == 0 and m.clarification_rounds == 0,
                m.reopen_count > 0, None if m.satisfaction is None else real(m.satisfaction), zone)


ROW_COLUMNS = ("opened_at", "team", "channel", "sla_policy_version", *(f"{n}_breached" for n in CLOCK_NAMES),
               "first_response_seconds", "resolution_seconds", "closed_at", "first_contact_resolution",
               "reopen_count", "satisfaction_score")


def part_of_row(r: tuple, zone: ZoneInfo) -> Part:
    """From a `cases` row's ROW_COLUMNS, as read back."""
    k = len(CLOCK_NAMES)
    opened = datetime.fromisoformat(r[0])  # rows.iso's text ("Z": Python 3.11 reads it)
    return part(opened, r[1], r[2], r[3] is not None, any(r[4:4 + k]), r[4 + k], r[5 + k], r[6 + k] is not None,
                r[7 + k] != 0, r[8 + k] > 0, r[9 + k], zone)


# ---------------------------------------------------------------- a day's row


@dataclass
class Cell:
    counts: list[int] = field(default_factory=lambda: [0] * len(FIGURES))
    score: int = 0  # exact sum, in 2**-60
    odd: int = 0  # scores not summed exactly
    # The durations, sorted: a list, or the row's packed text until a change needs the list.
    first: list[float] | str = field(default_factory=list)
    resolution: list[float] | str = field(default_factory=list)

    def add(self, p: Part, sign: int) -> None:
        self.counts = [n + sign * flag for n, flag in zip(self.counts, p.flags)]
        if p.score is not None:
            exact = scaled(p.score)
            if exact is None:
                self.odd += sign
            else:
                self.score += sign * exact
        for name, v in (("first", p.first_response_h), ("resolution", p.resolution_h)):
            if v is None:
                continue
            values = getattr(self, name)
            if isinstance(values, str):
                values = list(unpack(values))
                setattr(self, name, values)
            if sign > 0:
                bisect.insort(values, v)
                continue
            i = bisect.bisect_left(values, v)
            if i == len(values) or values[i] != v:
                raise ValueError(f"dashboard_days {p.key}: no duration {v!r} to take out: the rows do not "
                                 f"match the cases (rebuild the reporting tables: casework rebuild)")
            del values[i]

    def row(self, zone: str, key: tuple[str, str, str]) -> tuple:
        return (zone, *key, *self.counts, str(self.score), self.odd,
                *(v if isinstance(v, str) else pack(v) for v in (self.first, self.resolution)))

    @classmethod
    def of_row(cls, r: Any) -> Cell:
        n = len(FIGURES)
        return cls(list(r[4:4 + n]), int(r[4 + n]), r[5 + n], r[6 + n], r[7 + n])


# ---------------------------------------------------------------- keeping the rows (projections/view.py)


def zone_of(view: Any) -> ZoneInfo | None:
    name = getattr(view, "dashboard_zone", None)
    return ZoneInfo(name) if name else None


def kept_zone(view: Any, c: Any) -> tuple[str, int] | None:
    """The zone the days are kept in and the log position they are complete up to (None: not kept)."""
    c.execute(f"SELECT zone, position FROM {view.table('dashboard_zone')}")
    row = c.fetchone()
    return (row["zone"], row["position"]) if row else None


CHUNK = 2000  # cases read, and rows written, per statement while deriving


def derive(view: Any, c: Any, zone: str | None, position: int = 0) -> None:
    """Every row afresh from `cases` as it stands, in `zone` (None: none kept), in the caller's
    write transaction. In chunks, by case id: PostgreSQL ends a transaction left idle for long
    (eventsourcing's idle_in_transaction_session_timeout), and a million cases take a while here."""
    c.execute(f"DELETE FROM {view.table('dashboard_days')}")
    c.execute(f"DELETE FROM {view.table('dashboard_zone')}")
    if zone is None:
        return
    tz = ZoneInfo(zone)
    cells: dict[tuple, Cell] = defaultdict(Cell)
    after = ""
    while True:
        c.execute(view.sql(f"SELECT case_id, {', '.join(ROW_COLUMNS)} FROM {view.table('cases')} WHERE case_id > ? "
                           f"ORDER BY case_id LIMIT {CHUNK}"), [after])
        rows = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in c.fetchall()]
        if not rows:
            break
        for r in rows:
            p = part_of_row(r[1:], tz)
            cells[p.key].add(p, 1)
        after = rows[-1][0]
    out = [cell.row(zone, key) for key, cell in sorted(cells.items())]
    for i in range(0, len(out), CHUNK):
        view.write_rows(c, "dashboard_days", COLUMNS, out[i:i + CHUNK])
    view.write_rows(c, "dashboard_zone", ("zone", "position"), [(zone, position)])


def bring_up_to(view: Any, c: Any, zone: str | None, position: int) -> None:
    """The days as kept in `zone` (None: none kept) up to `position`: derived afresh from `cases`
    where they are another zone's, kept where this projection keeps none, or lag the position
    (batches applied by a writer that did not keep them, or a bulk load)."""
    if kept_zone(view, c) != ((zone, position) if zone else None):
        derive(view, c, zone, position)


def keep(view: Any, zone: str | None) -> None:
    """derive() in a write transaction of its own: for tables filled without the projection (the
    benchmark's synthetic rows, tests), complete up to the furthest tracking position there is."""
    with view._writing() as c:
        c.execute(f"SELECT COALESCE(MAX(notification_id), 0) AS p FROM {view.tracking_table()}")
        derive(view, c, zone, c.fetchone()["p"])


class Days:
    """A batch's changes to the rows: the share of each case before the batch and after it."""

    def __init__(self, view: Any, c: Any, memories: dict[str, Any], after: int):
        """`after`: the log position the batch was read after (the tables' tracking position)."""
        self.view, self.tz = view, zone_of(view)
        self.zone = self.tz.key if self.tz else None
        bring_up_to(view, c, self.zone, after)
        self.real = float4 if getattr(view, "single_precision_reals", False) else _same
        self.before = ({cid: part_of_memory(m, self.tz, self.real) for cid, m in memories.items()}
                       if self.tz else {})

    def write(self, c: Any, memories: dict[str, Any], touched: Iterable[str], position: int) -> None:
        """The batch's moves, and the days complete up to `position` (the batch's last event)."""
        if self.tz is None:
            return
        c.execute(self.view.sql(f"UPDATE {self.view.table('dashboard_zone')} SET position = ?"), [position])
        moves: list[tuple[Part, int]] = []
        for cid in touched:
            now, was = part_of_memory(memories[cid], self.tz, self.real), self.before.get(cid)
            if now != was:
                if was is not None:
                    moves.append((was, -1))
                moves.append((now, 1))
        if not moves:
            return
        view, table = self.view, self.view.table("dashboard_days")
        wanted = {p.key for p, _ in moves}
        days = sorted({key[0] for key in wanted})
        cells: dict[tuple, Cell] = {}
        for i in range(0, len(days), 500):  # the days' rows; those of the batch's cells read
            chunk = days[i:i + 500]
            c.execute(view.sql(f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE zone = ? AND local_day IN "
                               f"({', '.join('?' for _ in chunk)})"), [self.zone, *chunk])
            for r in c.fetchall():
                r = tuple(r.values()) if isinstance(r, dict) else tuple(r)
                if (r[1], r[2], r[3]) in wanted:
                    cells[(r[1], r[2], r[3])] = Cell.of_row(r)
        changed = set()
        for p, sign in moves:
            cells.setdefault(p.key, Cell()).add(p, sign)
            changed.add(p.key)
        gone = sorted(k for k in changed if cells[k].counts[0] == 0)  # no case opened that day: no row
        for key in gone:
            c.execute(view.sql(f"DELETE FROM {table} WHERE zone = ? AND local_day = ? AND team = ? AND channel = ?"),
                      [self.zone, *key])
        keys = ("zone", "local_day", "team", "channel")
        updates = ", ".join(f"{k} = excluded.{k}" for k in COLUMNS if k not in keys)
        view.write_rows(c, "dashboard_days", COLUMNS,
                        [cells[k].row(self.zone, k) for k in sorted(changed) if cells[k].counts[0]],  # type: ignore[arg-type]
                        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}")
