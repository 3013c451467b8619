"""`casework import` and `casework export`: event logs in (CSV or XES, through a mapping) and case
histories out, over casework/importer (docs/import.md). `python -m casework.importer` is the same.
`casework simulate`: the stored history re-decided under a draft SLA policy (casework/simulate.py,
docs/history.md)."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import click
from temporalio.service import RPCError, RPCStatusCode

from casework.cli_support import INSTANT, CliError, Usage, print_json
from casework.importer.export import export_log
from casework.importer.logs import log_format, read_traces
from casework.importer.mapping import MappingError, load_mapping
from casework.importer.run import LiveStarts, Summary, import_log, start_live
from casework.local_data import case_store_for_reading
from casework.policy import PolicyError, load_policy
from casework.simulate import simulate, table
from casework.stores import open_case_store
from domain.ids import workflow_id_for


def add_commands(cli: click.Group) -> None:
    for command in (import_, export, simulate_command):
        cli.add_command(command)


@click.command("import")
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--mapping", required=True, help="a mapping file (TOML), or a shipped one: bpic2013, casework")
@click.option("--refusals", type=click.Path(dir_okay=False, path_type=Path),
              help="write every refused command and trace left out to this CSV file")
@click.option("--no-live", is_flag=True, help="do not start the open cases' workflows (run the import again to)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="the summary as JSON")
@click.pass_obj
def import_(obj, log: Path, mapping: str, refusals: Path | None, no_live: bool, no_progress: bool,
            as_json: bool) -> None:
    """Import an event log as cases: closed ones as history, open ones continuing live. Idempotent and
    resumable: run it again to finish an interrupted import; what was imported is not imported twice.
    Exits 1 when some traces were left out (named, with why)."""
    try:  # a wrong mapping or log is said before any store is opened
        chosen = load_mapping(mapping)
        log_format(log)
    except MappingError as err:
        raise Usage(str(err)) from None
    if not log.is_file():
        raise Usage(f"event log {log}: no such file")
    try:  # read whole before any store is opened: a log that cannot be read creates nothing
        traces = read_traces(log, chosen)
    except MappingError as err:
        raise Usage(str(err)) from None
    settings = obj.settings()
    store = open_case_store(settings)
    engine = None if no_live else _Engine(obj)
    try:
        summary = import_log(traces, chosen, store, load_policy(settings.sla_policy or None),
                             progress=not no_progress, live=engine.runs if engine else None)
    finally:
        if engine:
            engine.close()
    if refusals:
        _write_refusals(refusals, summary)
    started, live_error = LiveStarts(), None
    if summary.open_case_ids and not no_live:
        try:
            started = asyncio.run(_start_live(obj, store, summary))
        except CliError as err:  # the import is stored; the workflows start when it is run again
            live_error = err
    if as_json:
        print_json({"traces": summary.traces, "imported": summary.imported, "continued": summary.continued,
                    "already": summary.already, "follow_ups": summary.follow_ups, "closed": summary.closed,
                    "open": len(summary.open_case_ids), "commands": summary.commands,
                    "events": summary.events, "refused": [dataclasses.asdict(r) for r in summary.refused],
                    "changed": [dataclasses.asdict(c) for c in summary.changed],
                    "not_imported": [dataclasses.asdict(p) for p in summary.not_imported],
                    "live_started": started.started, "live_already": started.already})
    else:
        print(summary.report())
        if started.started or started.already:
            print(f"open cases continuing live: {started.started} workflow(s) started"
                  + (f", {started.already} started before" if started.already else ""))
    if engine and engine.assumed:
        print(f"the engine could not be asked whether {engine.assumed} open case(s) imported before run live "
              f"({engine.unasked}): taken as live, their new rows were refused (case_live); run the import "
              "again once the engine runs")
    if live_error is not None:
        raise type(live_error)(f"{live_error.message}. The import is stored: run it again once the engine runs, "
                               "to start the open cases' workflows")
    click.get_current_context().exit(1 if summary.not_imported else 0)


class _Engine:
    """Whether an open case imported before has a workflow (start_live started it): then the engine
    owns it, and a re-import does not write under it (docs/import.md, "Importing again"). Asked
    case by case while the import plans; an engine that cannot be asked is taken to run them all."""

    def __init__(self, obj) -> None:
        self.loop, self.client, self.unasked, self.assumed = asyncio.new_event_loop(), None, "", 0
        try:
            self.client = self.loop.run_until_complete(obj.client())
        except CliError as err:
            self.unasked = err.message

    def runs(self, case_id: str) -> bool:
        if self.client is not None:
            try:
                self.loop.run_until_complete(self.client.get_workflow_handle(workflow_id_for(case_id)).describe())
                return True
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND:
                    return False
                self.unasked = str(err)
        self.assumed += 1
        return True

    def close(self) -> None:
        self.loop.close()


async def _start_live(obj, store, summary: Summary) -> LiveStarts:
    cases = await obj.cases()  # refuses at once when no worker polls the queue
    return await start_live(cases.client, store, summary.open_case_ids, obj.queue())


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--case", "cases", multiple=True, help="only this case id (repeatable)")
@click.option("--personal", is_flag=True, help="include personal texts (withheld by default)")
@click.option("--json", "as_json", is_flag=True, help="say what was written, as JSON")
@click.pass_obj
def export(obj, path: Path, cases: tuple[str, ...], personal: bool, as_json: bool) -> None:
    """Export case histories for process-mining tools: XES (.xes) or CSV (.csv), one event per command."""
    if path.suffix.lower() not in (".xes", ".csv"):
        raise Usage(f"{path}: the file name must end in .xes or .csv")
    if not path.resolve().parent.is_dir():
        raise Usage(f"{path}: the directory {path.resolve().parent} does not exist")
    # A reading command: the store only where the engine made it (exit 4 elsewhere), nothing created.
    n = export_log(case_store_for_reading(obj.settings()), path, list(cases) or None, personal=personal)
    if as_json:
        print_json({"wrote": str(path), "events": n})
    else:
        print(f"exported {n} events to {path}")


@click.command("simulate")
@click.option("--policy", "draft_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the draft SLA policy file (TOML or YAML)")
@click.option("--against", "against_file", type=click.Path(dir_okay=False, path_type=Path),
              help="compare with this policy file instead of the terms each case pinned")
@click.option("--since", type=INSTANT, help="cases opened at or after this instant (ISO 8601 with its zone)")
@click.option("--until", type=INSTANT,
              help="cases opened before this instant, clocks evaluated up to it (ISO 8601 with its zone, not after now; default now)")
@click.option("--json", "as_json", is_flag=True, help="the comparison as JSON")
@click.pass_obj
def simulate_command(obj, draft_file: Path, against_file: Path | None, since: datetime | None,
                     until: datetime | None, as_json: bool) -> None:
    """What-if: re-decide the stored history under a draft SLA policy, in memory (nothing is written),
    and compare compliance, breaches and escalations per priority, team and month side by side."""
    try:  # a wrong policy or period is said before the store is opened
        draft = load_policy(draft_file)
        against = load_policy(against_file) if against_file else None
    except PolicyError as err:
        raise Usage(str(err)) from None
    if until is not None and until > datetime.now(UTC):  # clocks evaluated in a future nobody has lived
        raise Usage(f"--until {until.isoformat()} is in the future: nothing is known of it yet (leave --until "
                    "out to evaluate the clocks up to now)")
    if since is not None and until is not None and since >= until:
        raise Usage(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    sim = simulate(case_store_for_reading(obj.settings()), draft, since, until, against)
    if as_json:
        print_json(sim.model_dump(mode="json"))
    else:
        print(table(sim))


def _write_refusals(path: Path, summary: Summary) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["case", "where", "activity", "command", "code", "message"])
        for r in summary.refused:
            out.writerow([r.case, r.where, r.activity, r.command, r.code, r.message])
        for p in summary.not_imported:
            out.writerow([p.case, p.where, "", "", "not_imported", p.message])
