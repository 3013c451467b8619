"""The Temporal SDK core's own log lines go through the same redaction as casework's.

A workflow task that fails on a bad input makes the core log a line quoting that input; before its
lines were forwarded into the logging pipeline they reached the worker's output as they were.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid

from workflows.return_visits import RETURN_VISITS_TYPE

WORKER = textwrap.dedent("""
    import asyncio, sys
    from temporalio.client import Client
    from casework.config import load_settings, sqlite_env
    from casework.connection import connect_options
    from casework.logs import configure_logging
    from domain.store import CaseStore
    from worker import build_worker

    async def main(address, queue, db):
        configure_logging("json", "info")  # as `casework run` does, before it connects
        client = await Client.connect(address, **connect_options(load_settings(environ={}), embedded=True))
        async with build_worker(client, CaseStore(env=sqlite_env(db)), queue):
            print("READY", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main(*sys.argv[1:4]))
""")


async def test_a_failing_task_s_input_is_not_quoted_by_the_core(temporal_env, tmp_path):
    queue = f"core-log-{uuid.uuid4()}"
    out_path = tmp_path / "worker.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", WORKER, temporal_env.client.service_client.config.target_host,
                                 queue, str(tmp_path / "events.db")], stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if "READY" in out_path.read_text():
                break
            await asyncio.sleep(0.1)
        # A plan whose customer lacks an id: its first task fails on the input, and is retried.
        await temporal_env.client.start_workflow(
            RETURN_VISITS_TYPE, {"plan": {"customer": {"name": "Wang Fang", "contact": "wang.fang@example.com",
                                                       "tier": "key_account"}, "first_due": "2027-01-01T00:00:00Z"}},
            id=f"return-visits-{uuid.uuid4()}", task_queue=queue)
        for _ in range(100):
            if "temporalio.core" in out_path.read_text() or "sdk_core" in out_path.read_text():
                break
            await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    text = out_path.read_text()
    assert "Failing workflow task" in text  # the core's line was written (so the check below can fail)
    assert "Wang Fang" not in text and "wang.fang@example.com" not in text
