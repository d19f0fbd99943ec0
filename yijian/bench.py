"""`make bench` / `yijian bench`: every benchmark in one run, on this machine, with baselines measured
in the same run (figures are reported as ratios; machines are noisy). Writes a JSON report and prints
a table."""

from __future__ import annotations

import json
import platform
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from yijian.config import Settings, get_settings


def bench_settings(base: Settings, section: str = "") -> Settings:
    """Own topics, home and consumer groups for one run (a fresh Settings: derived paths follow home);
    ``section`` gets its own topic prefix under the run's, sharing the run's ClickHouse folder."""
    home = base.home if section else base.home / "bench" / uuid.uuid4().hex[:8]
    prefix = f"{base.topic_prefix}{section}." if section else f"bench{home.name}."
    return Settings(home=home, topic_prefix=prefix, kafka_bootstrap=base.kafka_bootstrap,
                    clickhouse_dsn=base.clickhouse_dsn if section else None)


def run(records: int, out: Path, smoke: bool = False, only: tuple[str, ...] = (), latency_rates: tuple[float, ...] = (250.0, 5000.0)) -> dict:
    from yijian.deploy import stack
    from yijian.kafka import delete_topics_with_prefix

    console = Console()
    settings = bench_settings(get_settings())
    stack.up(settings)  # the broker (started if needed), this run's topics and its own ClickHouse folder
    report: dict = {
        "started": datetime.now(timezone.utc).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "smoke": smoke,
        "sections": {},
    }
    from yijian.kafka import ensure_topics
    from yijian.processors.bench import bench_latency, bench_processors, bench_worker_envelopes, bench_worker_memory
    from yijian.producers.bench import bench_sdk
    from yijian.rules.bench import bench_engine
    from yijian.sinks.bench import bench_sink

    latency_encounters = 100 if smoke else 1600
    sections = (
        ("sdk", "hospital SDK: validate+encode+outbox+encrypt+publish vs raw publish of the same envelopes", lambda s: bench_sdk(s, records)),
        ("processors", "one worker end to end vs a plain decrypt+decode loop; rules on vs off", lambda s: bench_processors(s, n_records=records)),
        ("worker_envelopes", "one worker (rules on) on one-record envelopes, as hospitals send in real time, vs decrypt+decode",
         lambda s: bench_worker_envelopes(s, n_records=600 if smoke else 3_000)),
        ("rules_engine", "rule engine in-process: all packs vs none", lambda s: bench_engine(min(records, 5000))),
        ("worker_memory", "worker RSS after growing numbers of distinct patients (rules on)",
         lambda s: bench_worker_memory(s, phases=(1_000, 3_000) if smoke else (3_000, 12_000))),
        ("sink", "ClickHouse sink rows/s and received → queryable latency", lambda s: bench_sink(s, n_rows=max(records, 5000))),
    ) + tuple(
        (f"latency_{rate:g}rps", f"whole platform at {rate:g} records/s offered: received → finding on feedback, → queryable",
         lambda s, rate=rate: bench_latency(s, rate=rate, encounters=latency_encounters))
        for rate in ((200.0,) if smoke else latency_rates)
    ) + (
        ("latency_saturation", "whole platform, sent as fast as possible: received → finding on feedback, → queryable",
         lambda s: bench_latency(s, rate=None, encounters=latency_encounters)),
    )
    unknown = set(only) - {name for name, _, _ in sections}
    if unknown:
        raise SystemExit(f"unknown bench section(s) {sorted(unknown)}; sections: {[name for name, _, _ in sections]}")
    try:
        for name, what, fn in sections:
            if only and name not in only:
                continue
            section = bench_settings(settings, name)
            ensure_topics(section)
            with console.status(f"{name}: {what} ..."):
                t = time.perf_counter()
                report["sections"][name] = fn(section)
                report["sections"][name]["section_seconds"] = round(time.perf_counter() - t, 1)
    finally:
        delete_topics_with_prefix(settings, settings.topic_prefix)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    table = Table("section", "figure", "value", title=f"yijian bench ({records} records) → {out}")
    for section, figures in report["sections"].items():
        for k, v in figures.items():
            table.add_row(section, k, str(v))
    console.print(table)
    return report
