"""The analysts' and supervisors' commands: reports, the HTML report, at-risk cases, projections."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
from datetime import timedelta
from pathlib import Path

from casework.config import Settings, reporting_env
from casework.stores import open_case_store
from projections import html, reports
from projections.runner import ReportProjection, open_view, rebuild


def add_commands(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="a report from the reporting tables (table, CSV or JSON)")
    rep.add_argument("name", choices=sorted(reports.REPORTS))
    rep.add_argument("--by", choices=sorted(reports.GROUPS), help="grouping, where the report has one")
    rep.add_argument("--format", choices=["table", "csv", "json"], default="table")
    rep.add_argument("--json", action="store_true", help="same as --format json")
    page = sub.add_parser("report-html", help="write the self-contained HTML report with charts")
    page.add_argument("--out", required=True)
    risk = sub.add_parser("at-risk", help="cases near or past an SLA deadline, most urgent first")
    risk.add_argument("--within-hours", type=float, default=4.0)
    risk.add_argument("--json", action="store_true")
    proj = sub.add_parser("projections", help="the reporting projection: status, catch-up, rebuild, run")
    proj.add_argument("action", choices=["status", "catch-up", "rebuild", "run"])
    proj.add_argument("--batch-size", type=int, default=500)
    proj.add_argument("--json", action="store_true")


VERBS = {"report", "report-html", "at-risk", "projections"}


def run(args: argparse.Namespace, settings: Settings) -> int:
    env = reporting_env(settings)
    view = open_view(env)
    if args.verb == "report":
        fn = reports.REPORTS[args.name]
        rows = fn(view, args.by) if args.by and "by" in fn.__code__.co_varnames else fn(view)
        emit(rows, "json" if args.json else args.format)
    elif args.verb == "report-html":
        Path(args.out).write_text(html.render(view))
        print(f"wrote {args.out}")
    elif args.verb == "at-risk":
        emit(reports.at_risk(view, timedelta(hours=args.within_hours)), "json" if args.json else "table")
    else:
        store = open_case_store(settings)
        projection = ReportProjection(store, view, args.batch_size)
        if args.action == "catch-up":
            print(f"applied {projection.catch_up()} events")
        elif args.action == "rebuild":
            print(f"rebuilt from {rebuild(store, env)} events")
        elif args.action == "run":
            import threading

            projection.run(threading.Event())
        lag = dataclasses.asdict(projection.lag())
        print(json.dumps(lag) if args.json else
              f"position {lag['position']} of {lag['head']}: {lag['events_behind']} events, "
              f"{lag['seconds_behind']:.1f} s behind")
    return 0


def emit(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        print("(no rows)")
        return
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
        return
    cols = list(rows[0])
    cells = [[("" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
