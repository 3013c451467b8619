"""The analysts' and supervisors' commands: reports, at-risk cases, projections.

The reading commands open the reporting tables read-only (casework/local_data.py): run from a
directory without them, they say where they looked, and create nothing.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import timedelta
from pathlib import Path

import click

from casework.cli_support import Usage, emit, print_json
from casework.config import reporting_env
from casework.local_data import case_store_for_reading, reporting_view
from projections import reports
from projections.runner import ReportProjection, open_view, rebuild


def add_commands(cli: click.Group) -> None:
    for command in (report, report_html, at_risk, projections):
        cli.add_command(command)


@click.command()
@click.argument("name", type=click.Choice(sorted(reports.REPORTS)))
@click.option("--by", type=click.Choice(sorted(reports.GROUPS)), help="grouping, where the report has one")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="same as --format json")
@click.pass_obj
def report(obj, name: str, by: str | None, fmt: str, as_json: bool) -> None:
    """A report from the reporting tables (table, CSV or JSON)."""
    fn = reports.REPORTS[name]
    if by and "by" not in fn.__code__.co_varnames:
        raise Usage(f"report {name} has no grouping (--by is for: "
                    f"{', '.join(n for n, f in sorted(reports.REPORTS.items()) if 'by' in f.__code__.co_varnames)})")
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
@click.option("--json", "as_json", is_flag=True, help="machine-readable JSON on stdout")
@click.pass_obj
def at_risk(obj, within_hours: float, as_json: bool) -> None:
    """Cases near or past an SLA deadline, most urgent first."""
    rows = reports.at_risk(reporting_view(obj.settings()), timedelta(hours=within_hours))
    emit(rows, "json" if as_json else "table", empty="(no case at risk)")


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
