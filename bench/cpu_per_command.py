"""Where a command's CPU goes, by process: this process (the worker and the driver), the Temporal dev
server and the projection's child, for casework's lifecycle commands and for the bare update, in
alternating rounds on one server. CPU seconds are the kernel's per-process counts, so they hold on a
shared machine where wall-clock throughput does not: `python -m bench.cpu_per_command [CASES] [ROUNDS]
[--before]` (--before: a third side, casework writing the history of before LEAN_PATCH)."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path


from bench.floor import floor
from bench.lifecycle import COMMANDS_PER_CASE
from bench.run import end_to_end
from bench.server import local_server
from casework.logs import configure_logging

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


async def main(cases: int, rounds: int, before: bool) -> None:
    configure_logging("console", "warning")
    me = os.getpid()
    with tempfile.TemporaryDirectory() as d:
        env = await local_server(Path(d))
        server = _children(me)[0]
        sides = ("casework", "casework_before", "bare") if before else ("casework", "bare")
        rows: dict[str, list[dict]] = {side: [] for side in sides}
        try:
            for r in range(rounds):
                for side in sides:
                    (Path(d) / f"{side}-{r}").mkdir()
                    py, srv, kids = _cpu(me), _cpu(server), _cpu(me, children=True) - _cpu(me)
                    if side.startswith("casework"):
                        result = await end_to_end(env, Path(d) / f"{side}-{r}", cases, 20,
                                                  lean_history=side == "casework")
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
    # A shared machine moves every side's absolute CPU from round to round (clock speed, caches): the
    # ratios within a round hold better.
    for side in sides[:-1]:
        for k in ("python_ms", "server_ms"):
            per_round = [c[k] / b[k] for c, b in zip(rows[side], rows["bare"])]
            print(f"{side} / bare, {k}: median {statistics.median(per_round):.2f}, rounds",
                  [round(x, 2) for x in per_round])


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--before"]
    asyncio.run(main(int(args[0]) if args else 40, int(args[1]) if len(args) > 1 else 3, "--before" in sys.argv))
