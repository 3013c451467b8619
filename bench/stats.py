"""The benchmarks' percentiles: nearest rank on the sorted values (no interpolation)."""

from __future__ import annotations


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency_ms(latencies: list[float]) -> dict[str, float]:
    return {p: round(percentile(latencies, q) * 1000, 1) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}
