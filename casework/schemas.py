"""JSON Schemas of the Temporal contract, generated from the pydantic models into docs/schemas/.

`python -m casework.schemas` rewrites them (`--check` only compares); a test fails when they are out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from pydantic import TypeAdapter

from domain.commands import COMMAND_TYPES, TIMER_COMMANDS
from domain.events import AnyEvent
from domain.model import CaseState
from workflows.contract import CaseInput, TimelineEntry

OUT = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def schemas() -> dict[str, dict]:
    found = {
        "workflow-input.CaseInput.json": CaseInput.model_json_schema(),
        "query-state.CaseState.json": CaseState.model_json_schema(),
        "query-timeline.TimelineEntry.json": TypeAdapter(list[TimelineEntry]).json_schema(),
        "events.json": TypeAdapter(AnyEvent).json_schema(),
    }
    for kind, model in COMMAND_TYPES.items():
        if kind not in TIMER_COMMANDS:
            found[f"update-{kind}.{model.__name__}.json"] = model.model_json_schema()
    return found


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# click parses the arguments so that `--help` (or a typo) never rewrites the directory.
@click.command(name="python -m casework.schemas", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=OUT, show_default="docs/schemas",
              help="The directory to write (its *.json files are replaced).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the directory differs from the models.")
def cli(out: Path, check: bool) -> None:
    """Write the contract's JSON Schemas, one file per model."""
    expected = {name: render(schema) for name, schema in schemas().items()}
    if check:
        on_disk = {p.name: p.read_text() for p in out.glob("*.json")}
        if on_disk != expected:
            click.echo(f"{out} is out of date: run python -m casework.schemas", err=True)
            sys.exit(1)
        return
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    for name, text in expected.items():
        (out / name).write_text(text)
    click.echo(f"wrote {len(expected)} schemas to {out}")


if __name__ == "__main__":
    cli()  # click: --help prints help, a usage error exits 2
