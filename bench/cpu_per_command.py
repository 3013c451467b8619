"""Where a command's CPU goes, by process: this process (the worker and the driver), the Temporal dev
server and the projection's child, for casework's lifecycle commands and for the bare update, in
alternating rounds on one server. CPU seconds are the kernel's per-process counts, so they hold on a
shared machine where wall-clock throughput does not: `python -m bench.cpu_per_command [CASES] [ROUNDS]`."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.floor import floor
from bench.lifecycle import COMMANDS_PER_CASE
from bench.run import end_to_end
from casework.config import temporal_binary
from casework.logs import configure_logging
from workflows.contract import SEARCH_ATTRIBUTES

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process (with its reaped children's, if asked)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / TICKS


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as f:
            out += [int(p) for p in f.read().split()]
    return out


async def main(cases: int, rounds: int) -> None:
    configure_logging("console", "warning")
    me = os.getpid()
    with tempfile.TemporaryDirectory() as d:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
            dev_server_database_filename=str(Path(d) / "temporal.db"), search_attributes=SEARCH_ATTRIBUTES)
        server = _children(me)[0]
        rows: dict[str, list[dict]] = {"casework": [], "bare": []}
        try:
            for r in range(rounds):
                for side in ("casework", "bare"):
                    (Path(d) / f"{side}-{r}").mkdir()
                    py, srv, kids = _cpu(me), _cpu(server), _cpu(me, children=True) - _cpu(me)
                    if side == "casework":
                        result = await end_to_end(env, Path(d) / f"{side}-{r}", cases, 20)
                        n = result["commands"]
                    else:
                        result = await floor(env.client, cases * COMMANDS_PER_CASE, 20, COMMANDS_PER_CASE)
                        n = result["round_trips"]
                    rows[side].append({
                        "n": n, "python_ms": 1000 * (_cpu(me) - py) / n, "server_ms": 1000 * (_cpu(server) - srv) / n,
                        # the projection's child, reaped when its round ends
                        "projection_ms": 1000 * (_cpu(me, children=True) - _cpu(me) - kids) / n})
        finally:
            await env.shutdown()
    for side, values in rows.items():
        med = {k: round(statistics.median(v[k] for v in values), 2) for k in ("python_ms", "server_ms", "projection_ms")}
        print(side, "CPU ms per command (median of rounds):", med, "rounds:",
              [{k: round(v, 1) for k, v in row.items()} for row in values])


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40, int(sys.argv[2]) if len(sys.argv) > 2 else 3))
