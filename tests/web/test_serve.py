"""`casework.web.serve(settings)` (what `casework serve` runs): the HTTP API alone, in its own process,
against an existing Temporal server; it stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx

from tests.notify.receiver import free_port

SERVE = "from casework.config import load_settings; from casework import web; web.serve(load_settings())"


def test_serve_runs_the_api_alone_and_stops_on_sigterm(temporal_env, tmp_path):
    port = free_port()
    queue = f"casework-serve-{uuid.uuid4()}"
    env = {**os.environ, "CASEWORK_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
           "CASEWORK_DATA_DIR": str(tmp_path / "data"), "CASEWORK_HTTP_PORT": str(port), "CASEWORK_TASK_QUEUE": queue,
           "CASEWORK_HTTP_ENGINE_TIMEOUT_SECONDS": "2", "CASEWORK_LOG_FORMAT": "json"}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-c", SERVE], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "http_api_started" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert "http_open_mode" in log.read_text()  # no registry: said loudly
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/cases").json() == {"items": [], "next_cursor": None}
            nobody = http.get(f"/cases/{uuid.uuid4()}/timeline")
            assert nobody.status_code == 404 and nobody.json()["code"] == "unknown_case"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_refuses_open_mode_off_loopback(tmp_path):
    env = {**os.environ, "CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_HTTP_HOST": "0.0.0.0",
           "CASEWORK_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-c", SERVE], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "needs a principal registry" in result.stderr
