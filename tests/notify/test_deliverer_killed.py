"""The outbox run alone (`casework notifications run`), killed with SIGKILL mid-delivery and started
again: every notification still arrives, under its one key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from activities.outbox import open_outbox
from casework.config import sqlite_env
from casework.config import Settings
from casework.stores import open_case_store
from tests.notify.receiver import PER_ROUND, SECRET, Receiver, expected_keys, notified_round, open_a_case, wait_for

BIN = Path(sys.executable).parent


def start_outbox(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "casework"), "notifications", "run"], env=env,
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)


def test_a_deliverer_killed_mid_run_and_restarted_loses_nothing(tmp_path):
    receiver = Receiver(delay=0.05).start()  # slow enough that the kill lands mid-run
    env = {**os.environ, "CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_WEBHOOK_URL": receiver.url,
           "CASEWORK_WEBHOOK_SECRET": SECRET,
           "CASEWORK_NOTIFY_CONCURRENCY": "2", "CASEWORK_NOTIFY_RETRY_INITIAL_SECONDS": "0.05",
           "CASEWORK_NOTIFY_RETRY_MAX_SECONDS": "0.3", "CASEWORK_LOG_FORMAT": "json"}
    store = open_case_store(Settings(data_dir=tmp_path))  # as the engine opens it: encrypted at rest
    cases = [open_a_case(store) for _ in range(12)]
    for cid in cases:
        notified_round(store, cid)
    keys = expected_keys(store, *cases)
    log = tmp_path / "outbox.log"

    first = start_outbox(env, log)
    try:
        wait_for(lambda: len(receiver.accepted) >= 5, what="the first deliveries")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = len(receiver.accepted)
        second = start_outbox(env, log)
        try:
            wait_for(lambda: set(receiver.accepted) == keys, timeout=60, what=f"all {len(keys)} delivered")
            outbox = open_outbox(sqlite_env(tmp_path / "outbox.db"))
            wait_for(lambda: outbox.counts()["delivered"] == len(keys), what="every row marked delivered")
        finally:
            second.terminate()
            assert second.wait(20) == 0
    finally:
        if first.poll() is None:
            first.kill()
        receiver.stop()

    assert 5 <= at_kill < len(keys) == 12 * PER_ROUND
    assert set(receiver.seen) == keys and not receiver.mismatched  # duplicates, if any, carry the same key
    assert not receiver.refused  # every whole request verified (one cut short by the kill is not one)
    assert len(receiver.truncated) <= 2  # at most the requests in flight when the deliverer was killed
    assert "Traceback" not in log.read_text()
