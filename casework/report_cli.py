"""The analysts' and supervisors' commands: reports, at-risk cases, projections.

The reading commands open the reporting tables read-only (casework/local_data.py): run from a
directory without them, they say where they looked, and create nothing. Asked `--as-of INSTANT`
(business time) or `--known-at INSTANT` (what the store held then), a report is answered from the
events that count instead (projections/asof.py, docs/history.md).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from casework.cli_support import INSTANT, Usage, emit, print_json
from casework.config import reporting_env
from casework.local_data import case_store_for_reading, reporting_view
from projections import reports
from projections.asof import run_report, view_as_of
from projections.runner import ReportProjection, open_view, rebuild, set_aside_startup_heap


def add_commands(cli: click.Group) -> None:
    for command in (report, report_html, at_risk, projections):
        cli.add_command(command)


def as_of_option(f):
    f = click.option(
        "--known-at", "known_at", type=INSTANT,
        help="count only the events the store held at this instant (an imported event from when it was "
             "imported): with --as-of the same instant, or alone, what the live report said then")(f)
    return click.option(
        "--as-of", "as_of", type=INSTANT,
        help="the report as of this instant in business time (ISO 8601 with its zone, as in "
             "2026-03-15T18:00:00+08:00): the events that had happened by then, imported history by its "
             "log's instants; rebuilt aside, as slow as a rebuild")(f)


def _as_of(obj, name: str, at: datetime | None, known_at: datetime | None, by: str | None,
           within: timedelta = timedelta(hours=4)) -> list[dict]:
    """The report rebuilt from the events that count as of `at`, known at `known_at`
    (projections/asof.py; `at` defaults to `known_at`). It reads the event store, not the reporting
    tables: opened only where the engine made it (exit 4 elsewhere)."""
    now = datetime.now(UTC)
    for option, instant in (("--as-of", at), ("--known-at", known_at)):
        if instant is not None and instant > now:
            raise Usage(f"{option} {instant.isoformat()} is in the future: nothing is known of it yet (leave "
                        f"{option} out for the report as it reads now)")
    at = at if at is not None else known_at
    store = case_store_for_reading(obj.settings())
    with view_as_of(store, at, known_at=known_at) as view:
        return run_report(view, name, at, by, within)


@click.command()
@click.argument("name", type=click.Choice(sorted(reports.REPORTS)))
@click.option("--by", type=click.Choice(sorted(reports.GROUPS)), help="grouping, where the report has one")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="same as --format json")
@as_of_option
@click.pass_obj
def report(obj, name: str, by: str | None, fmt: str, as_json: bool, as_of: datetime | None,
           known_at: datetime | None) -> None:
    """A report from the reporting tables (table, CSV or JSON), or as of an instant: --as-of reads
    business time (what had happened by then, imported history included), --known-at the store's
    time (what the store held then)."""
    fn = reports.REPORTS[name]
    if by and "by" not in fn.__code__.co_varnames:
        raise Usage(f"report {name} has no grouping (--by is for: "
                    f"{', '.join(n for n, f in sorted(reports.REPORTS.items()) if 'by' in f.__code__.co_varnames)})")
    if as_of is not None or known_at is not None:
        rows = _as_of(obj, name, as_of, known_at, by)
    else:
        view = reporting_view(obj.settings())
        rows = fn(view, by) if by else fn(view)
    emit(rows, "json" if as_json else fmt)


@click.command("report-html", hidden=True, add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_obj
def report_html(obj) -> None:
    """Gone: the manager's dashboard of the web console is the one home of that report (docs/console.md)."""
    s = obj.settings()
    raise Usage(f"casework report-html is gone: the HTML report is now the web console's manager dashboard, "
                f"served by casework run at http://{s.http_host}:{s.http_port}/console/dashboard (date range, team "
                "and channel, trends, every figure linked to its cases; docs/console.md). Figures for a file: "
                "casework report NAME --format csv (or --json)")


@click.command("at-risk")
@click.option("--within-hours", type=click.FloatRange(min=0), default=4.0, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="only this many, the most urgent first, and how many there are in all (default: every one)")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="with --limit: skip this many first (the next page)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable JSON on stdout")
@as_of_option
@click.pass_obj
def at_risk(obj, within_hours: float, limit: int | None, offset: int, as_json: bool, as_of: datetime | None,
            known_at: datetime | None) -> None:
    """Cases near or past an SLA deadline, most urgent first (now, or at an instant: --as-of,
    --known-at)."""
    within = timedelta(hours=within_hours)
    if as_of is not None or known_at is not None:
        rows = _as_of(obj, "at_risk", as_of, known_at, None, within)
        page = reports.AtRisk(rows[offset:offset + limit], len(rows)) if limit else None
    elif limit:
        page = reports.at_risk_page(reporting_view(obj.settings()), within, limit=limit, offset=offset)
    else:
        rows = reports.at_risk(reporting_view(obj.settings()), within)
    if limit is None:
        emit(rows, "json" if as_json else "table", empty="(no case at risk)")
    elif as_json:
        print_json({"total": page.total, "offset": offset, "rows": page.rows})
    else:
        emit(page.rows, "table", empty="(no case at risk here)")
        shown = f"{offset + 1}-{offset + len(page.rows)}" if page.rows else "none"
        click.echo(f"{shown} of {page.total} at risk", err=True)


@click.command()
@click.argument("action", type=click.Choice(["status", "catch-up", "rebuild", "run"]))
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable JSON on stdout")
@click.pass_obj
def projections(obj, action: str, batch_size: int, as_json: bool) -> None:
    """The reporting projection: status, catch-up, rebuild, run."""
    settings = obj.settings()
    # Every action reads the event store, which only the engine creates; status only reads.
    store = case_store_for_reading(settings)
    if action == "status":
        view = reporting_view(settings)
    else:
        view = open_view(reporting_env(settings))
    projection = ReportProjection(store, view, batch_size)
    if action != "status":
        set_aside_startup_heap()
    if action == "catch-up":
        applied = projection.catch_up()
        if not as_json:
            print(f"applied {applied} events")
    elif action == "rebuild":
        rebuilt = rebuild(store, reporting_env(settings))
        if not as_json:
            print(f"rebuilt from {rebuilt} events")
    elif action == "run":
        projection.run(threading.Event())
    lag = dataclasses.asdict(projection.lag())
    print(json.dumps(lag) if as_json else
          f"position {lag['position']} of {lag['head']}: {lag['events_behind']} events, "
          f"{lag['seconds_behind']:.1f} s behind")
