"""`casework serve` runs the HTTP API alone (casework.web), and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import httpx

from tests.cli.helpers import BIN, clean_env
from tests.notify.receiver import free_port


def test_casework_serve(temporal_env, tmp_path):
    port = free_port()
    env = clean_env(CASEWORK_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
                    CASEWORK_DATA_DIR=str(tmp_path / "data"), CASEWORK_HTTP_PORT=str(port),
                    CASEWORK_TASK_QUEUE=f"serve-{uuid.uuid4()}", CASEWORK_LOG_FORMAT="json")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([str(BIN / "casework"), "serve"], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "http_api_started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/cases").json() == {"items": [], "next_cursor": None}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
