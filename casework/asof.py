"""`python -m casework.asof REPORT --as-of INSTANT`: a report as it read at an instant, from the
events stored up to then (projections/asof.py). The `casework report ... --as-of` option calls
`run` with the same arguments."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from projections import reports


def instant(text: str) -> datetime:
    """An ISO 8601 instant; one without a zone is read as UTC."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted([*reports.REPORTS, "at_risk"]))
    parser.add_argument("--as-of", dest="as_of", type=instant, required=True,
                        help="the instant (ISO 8601; UTC if no zone) the report is asked for")
    parser.add_argument("--by", choices=sorted(reports.GROUPS), help="grouping, where the report has one")
    parser.add_argument("--within-hours", type=float, default=4.0, help="at_risk only")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--json", action="store_true", help="same as --format json")


def run(args: argparse.Namespace, store) -> int:
    from datetime import timedelta

    from casework.report_cli import emit
    from projections.asof import run_report, view_as_of

    with view_as_of(store, args.as_of) as view:
        rows = run_report(view, args.name, args.as_of, args.by, timedelta(hours=args.within_hours))
    emit(rows, "json" if args.json else args.format)
    return 0


def main(argv: list[str] | None = None) -> int:
    from casework.config import ConfigError, load_settings
    from casework.stores import open_case_store

    parser = argparse.ArgumentParser(prog="python -m casework.asof", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="casework settings file (TOML)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        store = open_case_store(load_settings(args.config))
    except ConfigError as err:
        print(f"casework report: {err}", file=sys.stderr)
        return 2
    return run(args, store)


if __name__ == "__main__":
    sys.exit(main())
