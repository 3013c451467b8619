"""The load and fault harness (bench/fault.py) in the test run.

Small by default, so CI runs it on every submission: cases on random paths with bad commands, bursts
of 20+ commands in flight on one case, races of lifecycle commands, while the worker and the dev
server are SIGKILLed, the projector is SIGKILLed with a second one on standby, the reporting tables
are rebuilt under load and random cases are reset with `temporal workflow reset`. A scale-out run
puts three workers on one task queue over PostgreSQL with one projector. The long run (1,000 cases)
is opt-in (`pytest -m slow`); its figures are in bench/README.md.

Every must-be-0 count of the harness (events lost or doubled per type, SLA facts included, refused
commands stored, stuck and divergent cases, read models unlike a rebuild) must be 0, and the faults
must have happened.
"""

from __future__ import annotations

import json

import pytest

from bench.fault import Config, run


def assert_clean(result: dict) -> None:
    failing = {k: v for k, v in result["must_be_zero"].items() if v}
    assert not failing and result["ok"], json.dumps(
        {"failing": failing, "findings": result["findings"], "data_dir": result["data_dir"]},
        indent=1, default=str)[:20000]
    assert result["read_models"]["equal_rebuild"], result["read_models"]


def assert_load(result: dict, cases: int) -> None:
    load = result["load"]
    assert load["opened"] == cases, load
    assert load["bursts"] > 0 and load["races"] > 0, load  # 20+ commands in flight on one case
    assert load["bad_commands"] > 0 and load["bad_commands_refused"] == load["bad_commands"], load
    by_type = result["events"]["by_type"]
    # The short deadlines fired while the faults ran: warnings or breaches, and the escalations they
    # bring. (The runs last min_seconds, so that a fast machine does not end them before the first
    # warning share of the fault policy, 45 s into a resolution clock.)
    assert (by_type.get("SlaClockWarned") or by_type.get("SlaClockBreached")) and by_type.get("CaseEscalated"), by_type


async def test_short_fault_run_loses_doubles_and_wedges_nothing():
    result = await run(Config(cases=100, concurrency=10, seed=3, kill_every=(6.0, 12.0), server_kills=1,
                              projector_kills=1, rebuilds=1, resets=3, burst_share=0.25, race_share=0.1,
                              answer_timeout=180.0, min_seconds=75.0, progress=False))
    faults = result["faults"]
    assert faults["worker_kills"] >= 2 and faults["server_kills"] == 1, faults
    assert faults["projector_kills"] >= 1 and faults["projectors_max_running"] == 2, faults
    assert faults["rebuilds"] == 1 and faults["resets"] == 3, faults
    assert faults["under_load"].get("server") == 1 and faults["under_load"].get("rebuild") == 1, faults
    assert_load(result, 100)
    assert_clean(result)


async def test_three_workers_on_postgres_killed_at_random_lose_and_double_nothing():
    # Kills every 1-2 s: the load of 80 cases takes seconds since commands got cheaper, and must see them.
    result = await run(Config(cases=80, concurrency=10, seed=5, workers=3, store="postgres", kill_every=(1.0, 2.0),
                              server_kills=0, projector_kills=1, rebuilds=0, resets=2, burst_share=0.2,
                              race_share=0.08, answer_timeout=180.0, min_seconds=75.0, progress=False))
    faults = result["faults"]
    assert result["workers"] == 3 and result["store"] == "postgres"
    assert faults["worker_kills"] >= 3, faults
    assert_load(result, 80)
    assert_clean(result)


@pytest.mark.slow
async def test_long_fault_run():
    """The run of bench/README.md: 1,000 cases (about half an hour on the 2-core machine)."""
    result = await run(Config(cases=1000, concurrency=20, seed=11, server_kills=2, projector_kills=4, rebuilds=2,
                              resets=30, progress=False))
    assert result["faults"]["worker_kills"] >= 10 and result["faults"]["resets"] == 30, result["faults"]
    assert_load(result, 1000)
    assert_clean(result)
