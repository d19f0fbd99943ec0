"""bench_sink runs end to end on a small load and reports sane numbers (speed itself is not asserted)."""

from __future__ import annotations

import pytest

from yijian.sinks.bench import bench_sink

pytestmark = pytest.mark.kafka


def test_bench_sink_reports_throughput_and_latency(settings):
    r = bench_sink(settings, n_rows=1000, trickle_messages=10, trickle_rows=5)
    assert r["n_rows"] == 1000 and r["messages"] == 10
    assert r["rows_per_s"] > 0
    assert r["latency_samples"] == 50
    assert 0 <= r["latency_ms_p50"] <= r["latency_ms_p99"]
