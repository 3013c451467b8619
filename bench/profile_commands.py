"""Where a command's CPU goes: the worker (in this process) under yappi's CPU clock while casework's
lifecycle commands run, top functions by total time. `pip install yappi==1.7.6` first (a profiling
tool, not a dependency of casework), then `python -m bench.profile_commands [CASES]`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path


from bench.run import end_to_end
from bench.server import local_server
from casework.logs import configure_logging


async def main(cases: int) -> None:
    import yappi

    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as d:
        env = await local_server(Path(d))
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
