"""`python -m casework.importer import LOG --mapping MAPPING` / `... export PATH`: the thin command
line over casework/importer (the `casework import` / `casework export` commands call the same
functions). Settings (store, policy, Temporal) come from casework/config.py as everywhere."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from pathlib import Path

from casework.config import ConfigError, load_settings
from casework.importer.export import export_log
from casework.importer.logs import log_format
from casework.importer.mapping import MappingError, load_mapping
from casework.importer.run import Summary, import_log, start_live
from casework.policy import PolicyError, load_policy
from casework.stores import StoreRefused, open_case_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m casework.importer")
    parser.add_argument("--config", help="casework settings file (TOML)")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import an event log (CSV or XES) as cases")
    imp.add_argument("log")
    imp.add_argument("--mapping", required=True, help="a mapping file, or a shipped one: bpic2013, casework")
    imp.add_argument("--refusals", help="write every refused command to this CSV file")
    imp.add_argument("--no-live", action="store_true", help="do not start workflows for open cases")
    imp.add_argument("--no-progress", action="store_true")
    exp = sub.add_parser("export", help="export case histories as XES or CSV")
    exp.add_argument("path", help="the log to write: .xes or .csv")
    exp.add_argument("--case", action="append", help="only this case id (repeatable)")
    exp.add_argument("--personal", action="store_true", help="include personal texts (withheld by default)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.command == "import":  # a wrong mapping or log is said before any store is opened
            mapping = load_mapping(args.mapping)
            log_format(args.log)
            if not Path(args.log).is_file():
                raise MappingError(f"event log {args.log}: no such file")
        store = open_case_store(settings)
        if args.command == "export":
            n = export_log(store, args.path, args.case, personal=args.personal)
            print(f"exported {n} events to {args.path}")
            return 0
        policy = load_policy(settings.sla_policy or None)
        summary = import_log(args.log, mapping, store, policy, progress=not args.no_progress)
    except (MappingError, PolicyError, ConfigError, StoreRefused, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.report())
    if args.refusals:
        _write_refusals(args.refusals, summary)
    if summary.open_case_ids and not args.no_live:
        started = asyncio.run(_live(settings, store, summary))
        print(f"open cases continuing live: {started} workflow(s) started")
    return 1 if summary.not_imported else 0


async def _live(settings, store, summary: Summary) -> int:
    from casework.client import connect

    embedded = not settings.temporal_address
    address = settings.temporal_address or f"localhost:{settings.embedded_port}"
    try:
        client = await connect(address, settings.temporal_namespace, settings=settings, embedded=embedded)
    except RuntimeError as err:
        print(f"error: Temporal at {address} is not reachable ({err}); the import is stored: run it again "
              "once Temporal is up to start the open cases' workflows", file=sys.stderr)
        return 0
    return await start_live(client, store, summary.open_case_ids, settings.task_queue)


def _write_refusals(path: str, summary: Summary) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["case", "where", "activity", "command", "code", "message"])
        for r in summary.refused:
            out.writerow([r.case, r.where, r.activity, r.command, r.code, r.message])
        for p in summary.not_imported:
            out.writerow([p.case, p.where, "", "", "not_imported", p.message])


if __name__ == "__main__":
    raise SystemExit(main())
