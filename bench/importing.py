"""Import and rebuild speed, each against raw store appends of the very same events in the same run
(the store's own cost: the events appended, nothing decided or computed).

- import: the shipped BPIC 2013 log through the importer (read, plan, decide each command at its
  recorded instant, store each case whole);
- rebuild: the reporting tables built afresh from the imported store (`casework projections
  rebuild`: read every event, evolve its case, write the rows, swap the tables in), SQLite.

`run(tmp, parts, rounds=3)` returns the figures (medians of the rounds); `import_speed(tmp)` one import."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
import time
from pathlib import Path

from casework.config import sqlite_env
from casework.importer import import_log
from casework.importer.export import case_histories
from casework.policy import load_policy
from domain.store import CaseStore
from projections.runner import rebuild

BPIC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bpic2013-closed-problems.csv"
BATCH = 50  # cases per transaction, as the importer writes them


def run(tmp: Path, parts: list[str], log: Path = BPIC, limit: int | None = None, rounds: int = 1) -> dict:
    """{"import": ..., "rebuild": ...} for the parts asked (the rebuild reads the imported store), each
    with its rounds and the medians of their rates and ratios."""
    if not log.exists():
        return {part: {"skipped": f"no event log at {log}"} for part in parts}
    runs: dict[str, list[dict]] = {part: [] for part in parts}
    for r in range(rounds):
        (tmp / str(r)).mkdir()
        one = one_round(tmp / str(r), parts, log, limit)
        for part in parts:
            runs[part].append(one[part])
    return {part: {**{k: v for k, v in rs[0].items() if k not in RATES}, "rounds": len(rs),
                   **{k: statistics.median(x[k] for x in rs) for k in RATES}, "runs": [
                       {k: x[k] for k in (*RATES, "seconds")} for x in rs]} for part, rs in runs.items()}


RATES = ("events_per_s", "raw_store_appends_per_s", "ratio_to_raw_store_appends")


def one_round(tmp: Path, parts: list[str], log: Path, limit: int | None) -> dict:
    imported = import_speed(tmp, log, limit=limit)
    out = {"import": imported}
    if "rebuild" in parts:
        store = CaseStore(env=sqlite_env(tmp / "imported.db"))
        start = time.perf_counter()
        events = rebuild(store, sqlite_env(tmp / "reporting.db"))
        elapsed = time.perf_counter() - start
        assert events == imported["events"], (events, imported["events"])
        out["rebuild"] = {"events": events, "seconds": round(elapsed, 2), "events_per_s": round(events / elapsed),
                          "raw_store_appends_per_s": imported["raw_store_appends_per_s"],
                          "ratio_to_raw_store_appends": round(events / elapsed / imported["raw_store_appends_per_s"], 4)}
    return out


def import_speed(tmp: Path, log: Path = BPIC, mapping: str = "bpic2013", limit: int | None = None) -> dict:
    if not log.exists():
        return {"skipped": f"no event log at {log}"}
    store = CaseStore(env=sqlite_env(tmp / "imported.db"))
    summary = import_log(log, mapping, store, load_policy(), limit=limit)
    histories = list(case_histories(store))
    raw = CaseStore(env=sqlite_env(tmp / "raw.db"))
    start = time.perf_counter()
    for i in range(0, len(histories), BATCH):
        raw.import_cases(histories[i:i + BATCH], stored_at=datetime.now(UTC))
    raw_elapsed = time.perf_counter() - start
    events = sum(map(len, histories))
    assert events == summary.events and raw.recorder.max_notification_id() == events
    import_rate, raw_rate = summary.events / summary.seconds, events / raw_elapsed
    return {"log": log.name, "cases": summary.imported + summary.follow_ups, "rows": summary.rows, "commands": summary.commands,
            "events": summary.events, "refused": len(summary.refused), "seconds": round(summary.seconds, 2),
            "events_per_s": round(import_rate), "rows_per_s": round(summary.rows / summary.seconds),
            "raw_store_appends_per_s": round(raw_rate), "ratio_to_raw_store_appends": round(import_rate / raw_rate, 4)}


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), ["import", "rebuild"], limit=int(sys.argv[1]) if len(sys.argv) > 1 else None),
                         indent=2))
