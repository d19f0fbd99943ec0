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


def bench_settings(base: Settings) -> Settings:
    """Own topics, home and consumer groups for one run (a fresh Settings: derived paths follow home)."""
    tag = uuid.uuid4().hex[:8]
    return Settings(home=base.home / "bench" / tag, topic_prefix=f"bench{tag}.", kafka_bootstrap=base.kafka_bootstrap)


def run(records: int, out: Path, smoke: bool = False) -> dict:
    from yijian.deploy import stack
    from yijian.kafka import delete_topics_with_prefix

    console = Console()
    base = get_settings()
    stack.up(base, create_topics=False)
    settings = bench_settings(base)
    report: dict = {
        "started": datetime.now(timezone.utc).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "smoke": smoke,
        "sections": {},
    }
    try:
        from yijian.processors.bench import bench_processors

        with console.status(f"processors: {records} records ..."):
            t = time.perf_counter()
            report["sections"]["processors"] = bench_processors(settings, n_records=records)
            report["sections"]["processors"]["seconds"] = round(time.perf_counter() - t, 1)
        from yijian.rules.bench import bench_engine

        with console.status("rules engine ..."):
            report["sections"]["rules_engine"] = bench_engine(min(records, 5000))
    finally:
        delete_topics_with_prefix(settings, settings.topic_prefix)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    table = Table("section", "figure", "value", title=f"yijian bench ({records} records) → {out}")
    for section, figures in report["sections"].items():
        for k, v in figures.items():
            table.add_row(section, k, str(v))
    console.print(table)
    return report
