"""One engine per port and data directory; the embedded Temporal server dies with its engine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from casework.devserver import port_taken


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie no longer holds anything; its new parent reaps it


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_second_engine_on_a_taken_port_refuses_to_start_and_says_why(make_engine, tmp_path):
    first = make_engine().start()

    on_port = make_engine(port=first.port).run_once()
    on_ui = make_engine(ui=first.ui).run_once()

    for refused, port, setting in ((on_port, first.port, "CASEWORK_EMBEDDED_PORT"),
                                   (on_ui, first.ui, "CASEWORK_EMBEDDED_UI_PORT")):
        assert refused.returncode != 0
        assert f"port {port} ({setting}) is already in use" in refused.stderr
        assert "Traceback" not in refused.stderr + refused.stdout
    assert not (tmp_path / "data-1" / "events.db").exists()  # it stored nothing anywhere
    assert first.proc.poll() is None  # and the first engine runs on


def test_a_second_engine_on_a_data_directory_in_use_refuses_to_start(make_engine):
    first = make_engine().start()

    refused = make_engine(data=first.data).run_once()

    assert refused.returncode != 0
    assert f"data directory {first.data} is in use by another casework engine (pid {first.proc.pid}" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    assert first.proc.poll() is None


def test_the_embedded_server_dies_with_a_killed_engine_and_the_next_start_succeeds(make_engine):
    first = make_engine().start()
    server = first.server_pid()

    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)

    wait_until(lambda: gone(server), 15, "the embedded server to die with its engine")
    wait_until(lambda: not port_taken(first.port), 15, "the port to be free")
    again = make_engine(data=first.data, port=first.port, ui=first.ui).start()
    assert again.server_pid() != server
    again.stop()
    assert again.proc.returncode == 0
    wait_until(lambda: gone(again.server_pid()), 15, "the embedded server to stop with its engine")


def test_an_engine_on_another_store_refuses_a_task_queue_served_by_another(make_engine):
    """Two SQLite stores on one server's queue would split every case between them: the second
    engine (pointed at the first one's server, with a store of its own) refuses and says why."""
    first = make_engine().start()

    second = make_engine(temporal_address=first.address).run_once()

    assert second.returncode != 0
    assert "task queue 'casework' is polled by workers on another event store" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout
    on_other_queue = make_engine(temporal_address=first.address, task_queue="casework-b").start()
    assert on_other_queue.proc.poll() is None  # another queue on the same server is fine


def test_without_a_registry_the_engine_says_it_runs_open_and_a_bad_registry_stops_it(make_engine, tmp_path):
    open_engine = make_engine().start()
    warnings = [line for line in open_engine.log.read_text().splitlines() if "auth_open_mode" in line]
    assert warnings and '"level": "warning"' in warnings[0]

    broken = tmp_path / "principals.toml"
    broken.write_text("[services.crm]\nacts_as = ['system']\n")
    refused = make_engine(principals_file=str(broken)).run_once()
    assert refused.returncode != 0
    assert "needs secret_file or secret_env" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
