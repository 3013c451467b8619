"""Where a command's CPU goes: the worker (in this process) under yappi's CPU clock while casework's
lifecycle commands run, top functions by total time. `pip install yappi==1.7.6` first (a profiling
tool, not a dependency of casework), then `python -m bench.profile_commands [CASES]`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.run import end_to_end
from casework.config import temporal_binary
from casework.logs import configure_logging
from workflows.contract import SEARCH_ATTRIBUTES


async def main(cases: int) -> None:
    import yappi

    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as d:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
            dev_server_database_filename=str(Path(d) / "temporal.db"), search_attributes=SEARCH_ATTRIBUTES)
        try:
            (Path(d) / "warm").mkdir()
            await end_to_end(env, Path(d) / "warm", 10, 10, projection="off")  # imports, caches
            yappi.set_clock_type("cpu")
            yappi.start()
            result = await end_to_end(env, Path(d), cases, 20, projection="off")
            yappi.stop()
        finally:
            await env.shutdown()
    total = sum(t.ttot for t in yappi.get_thread_stats())
    print(f"{result['commands']} commands, {result['commands_per_s']}/s; worker CPU {total:.2f} s "
          f"({1000 * total / result['commands']:.0f} ms per command)")
    stats = yappi.get_func_stats()
    stats.sort("ttot")
    for f in list(stats)[:40]:
        print(f"{f.ttot:8.2f} {f.tsub:8.2f} {f.ncall:8d} {f.module.split('site-packages/')[-1][-60:]}:{f.name}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40))
