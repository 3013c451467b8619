"""The real `casework` entry point in its own process, against a real dev server and a worker that
runs in the test's event loop (so the loop must keep running while the command does)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from casework.client import CaseworkClient
from casework.config import Settings
from casework.stores import open_case_store
from domain.store import CaseStore
from worker import build_worker

BIN = Path(sys.executable).parent


@dataclass
class Result:
    code: int
    out: str
    err: str


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the tester's own casework or Temporal settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEWORK_", "TEMPORAL_"))}
    return {**env, **extra}


async def casework(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                   timeout: float = 90) -> Result:
    proc = await asyncio.create_subprocess_exec(str(BIN / "casework"), *args, env=env or clean_env(), cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return Result(proc.returncode, out.decode(), err.decode())


@dataclass
class CliEngine:
    """A worker on a sealing store in `data_dir` (as `casework run` keeps it), and the CLI's view of it."""

    cases: CaseworkClient
    store: CaseStore
    settings: Settings
    address: str
    task_queue: str

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(CASEWORK_DATA_DIR=str(self.settings.data_dir), **extra)

    async def cli(self, *args: str, **kw) -> Result:
        kw.setdefault("env", self.env())
        return await casework("--address", self.address, "--task-queue", self.task_queue, *args, **kw)


@asynccontextmanager
async def cli_engine(temporal_env, data_dir: Path):
    settings = Settings(data_dir=data_dir)
    store = open_case_store(settings)
    queue = f"cli-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, queue):
        yield CliEngine(CaseworkClient(temporal_env.client, queue), store, settings,
                        temporal_env.client.service_client.config.target_host, queue)
