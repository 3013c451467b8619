"""Figures of the BPIC 2013 log computed straight from the CSV with plain code: what the imported
read models must show. Independent of the importer: csv, collections and datetime only, with the
BPIC mapping's meaning written out by hand (docs/import.md, "The BPIC 2013 mapping")."""

from __future__ import annotations

import csv
import tomllib
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bpic2013-closed-problems.csv"
POLICY = Path(__file__).resolve().parents[2] / "casework" / "policies" / "default.toml"
PRIORITY = {"Major": "urgent", "High": "high", "Medium": "normal", "Low": "low"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The shipped policy's office day (casework/policies/default.toml, calendars.business); its holiday
# source covers 2025 on, so the log's years 2006-2012 have the weekly hours only.
OFFICE = [(time(9), time(12)), (time(13), time(18))]


def traces(path: Path = DATA) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[row["Case ID"]].append(row)
    for rows in out.values():
        rows.sort(key=at)
    return dict(out)


def at(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["Complete Timestamp"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def completed(row: dict[str, str]) -> bool:
    return row["Activity"].startswith("Completed")


def reopens(rows: list[dict[str, str]]) -> int:
    """Returns to work: a completion followed by more work did not hold. Within one case's rows
    (`cases`) each is a reopen; over a whole trace, reopens and follow-up cases together."""
    return sum(1 for a, b in zip(rows, rows[1:]) if completed(a) and not completed(b))


def reopen_window() -> timedelta:
    """The shipped policy's reopen window, read from its file (docs/sla.md, "Reopen after close")."""
    return timedelta(hours=tomllib.loads(POLICY.read_text())["reopen_window_hours"])


def cases(rows: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """A trace's rows split into the cases they make (docs/import.md, the BPIC mapping): work that
    resumes after a completion reopens the case when it comes within the reopen window of a
    Completed-Closed row (the case closed resolved: the customer may reopen it); otherwise, later,
    or after a Completed-Cancelled row (a cancelled case never reopens), it is a follow-up case,
    opened by that row."""
    out, window = [[rows[0]]], reopen_window()
    for a, b in zip(rows, rows[1:]):
        if completed(a) and not completed(b) and (
                a["Activity"] == "Completed-Cancelled" or at(b) - at(a) > window):
            out.append([])
        out[-1].append(b)
    return out


def clarification_rounds(rows: list[dict[str, str]]) -> int:
    rounds, waiting = 0, False
    for row in rows:
        if row["Activity"] == "Accepted-Wait":
            rounds, waiting = rounds + (not waiting), True
        elif row["Activity"] == "Accepted-In Progress" or completed(row):
            waiting = False
    return rounds


def first_response_at(rows: list[dict[str, str]]) -> datetime:
    """The first row in which the desk answered: work in progress, a question, or a completion."""
    return next(at(r) for r in rows if r["Activity"] in ("Accepted-In Progress", "Accepted-Wait") or completed(r))


def resolution_spans(rows: list[dict[str, str]]) -> list[tuple[datetime, datetime]]:
    """When the resolution clock ran: from the opening, paused while waiting on the customer, stopped
    at a completion, running again when work resumed after it; until the last completion run began."""
    spans, since, mode = [], at(rows[0]), "running"
    for row in rows:
        t, act = at(row), row["Activity"]
        if mode == "solved" and not completed(row):
            since, mode = t, "running"  # the solution was rejected
        if completed(row):
            if mode == "running":
                spans.append((since, t))
            mode = "solved"
        elif act == "Accepted-Wait" and mode == "running":
            spans.append((since, t))
            mode = "paused"
        elif act == "Accepted-In Progress" and mode == "paused":
            since, mode = t, "running"
    return spans


def business_seconds(start: datetime, end: datetime, round_the_clock: bool) -> float:
    if round_the_clock:
        return (end - start).total_seconds()
    total, day = 0.0, start.astimezone(SHANGHAI).date() - timedelta(days=1)
    while day <= end.astimezone(SHANGHAI).date():
        if day.weekday() < 5:
            for a, b in OFFICE:
                lo = max(start, datetime.combine(day, a, SHANGHAI))
                hi = min(end, datetime.combine(day, b, SHANGHAI))
                total += max(0.0, (hi - lo).total_seconds())
        day += timedelta(days=1)
    return total


def case_figures(rows: list[dict[str, str]], first: dict[str, str] | None = None) -> dict:
    """One case's figures from its rows (`cases`); `first`: the trace's first row, whose impact sets
    the priority (a follow-up case keeps its original's priority)."""
    priority = PRIORITY[(first or rows[0])["impact"]]
    urgent = priority == "urgent"
    return {"priority": priority, "reopen_count": reopens(rows),
            "clarification_rounds": clarification_rounds(rows),
            "first_response_business_seconds": business_seconds(at(rows[0]), first_response_at(rows), urgent),
            "resolution_business_seconds": sum(business_seconds(a, b, urgent) for a, b in resolution_spans(rows)),
            "opened_at": at(rows[0]), "closed_at": at(rows[-1]),
            "closure": "cancelled" if rows[-1]["Activity"] == "Completed-Cancelled" else "resolved"}




# --- SLA breaches under given targets (the what-if's check, tests/history/test_simulate_bpic.py) ---
# docs/sla.md: a running clock breaches at the instant its business time used reaches the target,
# once per cycle. So a span breaches when its business time reaches the target: an answer after
# office hours, the target used up at the close of the day, is late (only an answer at that very
# instant is in time, which a log with second timestamps does not hit). The resolution clock is one
# cycle however often it pauses and resumes; next_response runs one cycle per customer message
# after the first response.

def next_response_spans(rows: list[dict[str, str]]) -> list[tuple[datetime, datetime]]:
    """The next-response cycles, as the BPIC mapping plans them (docs/import.md): a wait ends with the
    customer's reply at the first row that takes the case to another stage (work in progress or a
    completion; assignments and queueing leave it waiting). The reply goes back to the stage the wait
    began in: from intake (a question before any work) the desk's response comes at the same instant;
    from work in progress the cycle runs until the desk's next question or completion."""
    spans, waiting, worked, since = [], False, False, None
    for row in rows:
        t, act = at(row), row["Activity"]
        takes_stage = act in ("Accepted-In Progress", "Accepted-Wait") or completed(row)
        if since is not None and (act == "Accepted-Wait" or completed(row)):
            spans.append((since, t))
            since = None
        if waiting and takes_stage and act != "Accepted-Wait":
            waiting = False
            if worked and act == "Accepted-In Progress":
                since = t  # back to work in progress: the desk owes the next answer
            # back to intake (its respond follows at once), or a completion: met at this instant
        if act == "Accepted-Wait":
            waiting = True
        worked = worked or act == "Accepted-In Progress" or completed(row)  # past intake for good
    return spans


def breaches(rows: list[dict[str, str]], targets: dict[str, dict[str, float]],
             first: dict[str, str] | None = None) -> int:
    """The clock breaches of one case (`cases`); `targets`: hours per clock for each priority."""
    figures = case_figures(rows, first)
    hours, urgent = targets[figures["priority"]], figures["priority"] == "urgent"
    late = [figures["first_response_business_seconds"] >= hours["first_response"] * 3600,
            figures["resolution_business_seconds"] >= hours["resolution"] * 3600]
    late += [business_seconds(a, b, urgent) >= hours["next_response"] * 3600 for a, b in next_response_spans(rows)]
    return sum(late)
