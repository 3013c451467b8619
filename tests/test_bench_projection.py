"""The projection and report benchmark stays runnable: tiny, on SQLite, nothing timed or compared
against a figure here (the figures are bench/README.md's, from `python -m bench.run`)."""

from __future__ import annotations

import bench.run  # noqa: F401 - the entry point imports
from bench import projection
from bench.console_pages import pages


def test_the_projection_and_report_benchmark_runs_tiny(tmp_path):
    out = projection.run(tmp_path, ["sqlite"], projection_events=200, report_events=2_000, rounds=1,
                         parts=["projection", "reports"])
    catch_up = out["sqlite"]["projection_catch_up"]
    assert catch_up["events"] >= 200 and len(catch_up["round_ratios"]) == 1
    assert {"events_per_s", "raw_inserts_per_s", "ratio_to_raw_inserts"} <= set(catch_up)
    queries = out["sqlite"]["report_queries"]
    assert queries["read_model_rows"]["cases"] == 100
    assert {"times", "agents", "at_risk", *projection.reports.REPORTS} <= set(queries["median_ms"])
    assert set(queries["console_median_ms"]) == set(pages(""))  # every page answered 200 (else it raises)
