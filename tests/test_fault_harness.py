"""The load and fault harness, small (opt-in: `make test-all`, or `pytest -m slow`): cases on random
paths with bad commands mixed in, the worker SIGKILLed and restarted, the dev server restarted."""

from __future__ import annotations

import pytest

from bench.fault import run


@pytest.mark.slow
async def test_kills_and_restarts_lose_and_double_nothing():
    result = await run(cases_n=80, concurrency=10, seed=3, kill_every=(2, 4))
    assert result["worker_kills"] >= 1 and result["server_restarts"] == 1, result
    assert result["bad_commands_refused"] > 0
    assert (result["events_lost"], result["events_doubled"], result["cases_in_wrong_state"]) == (0, 0, 0), result
    assert result["read_models_equal_rebuild"], result
