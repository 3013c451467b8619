"""JSON Schemas of the Temporal contract, generated from the pydantic models into docs/schemas/.

`python -m casework.schemas` rewrites them; a test fails when they are out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from domain.commands import COMMAND_TYPES, TIMER_COMMANDS
from domain.events import AnyEvent
from domain.model import CaseState
from pydantic import TypeAdapter
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


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for name, schema in schemas().items():
        (OUT / name).write_text(render(schema))
    print(f"wrote {len(schemas())} schemas to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
