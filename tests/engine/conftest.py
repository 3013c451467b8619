"""Starting `casework run` as users do, in its own process, on a data directory and ports of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.notify.receiver import free_port

BIN = Path(sys.executable).parent
_runs = itertools.count()


@dataclass
class EngineProcess:
    data: Path
    port: int
    ui: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / f"engine-{next(_runs)}.log"  # one per process started

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> EngineProcess:
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([str(BIN / "casework"), "run"], env=self.env, stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT)
        if wait:
            deadline = time.monotonic() + 60
            while "worker_started" not in self.log.read_text():
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "the engine did not start within 60 s"
                time.sleep(0.2)
        return self

    def server_pid(self) -> int:
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if "embedded_temporal_started" in line]
        return lines[-1]["pid"]

    def run_once(self, timeout: float = 60) -> subprocess.CompletedProcess:
        """Start it in the foreground, for an engine expected to refuse."""
        return subprocess.run([str(BIN / "casework"), "run"], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def casework(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "casework"), "--address", self.address, *args],
                                capture_output=True, text=True, env=self.env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def make_engine(tmp_path):
    started: list[EngineProcess] = []

    def make(data: Path | None = None, port: int | None = None, ui: int | None = None, **settings: str):
        data = data or tmp_path / f"data-{len(started)}"
        port, ui = port or free_port(), ui or free_port()
        env = {**os.environ, "CASEWORK_DATA_DIR": str(data), "CASEWORK_EMBEDDED_PORT": str(port),
               "CASEWORK_EMBEDDED_UI_PORT": str(ui), "CASEWORK_HTTP_PORT": str(free_port()),
               "CASEWORK_LOG_FORMAT": "json",
               "PATH": f"{BIN}:{os.environ['PATH']}",
               **{f"CASEWORK_{k.upper()}": v for k, v in settings.items()}}
        engine = EngineProcess(data, port, ui, env)
        started.append(engine)
        return engine

    yield make
    for engine in started:
        engine.stop()
