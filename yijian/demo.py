"""`make demo` / `yijian demo`: the main job, run locally from a fresh clone."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel

from yijian.config import get_settings


def run_demo() -> None:
    from yijian.deploy import stack
    from yijian.deploy.selfcheck import run_selfcheck

    console = Console()
    settings = get_settings()
    with console.status("starting the local stack (first run downloads Kafka) ..."):
        created = stack.up(settings)
    st = stack.status(settings)
    console.print(f"Kafka broker on {settings.kafka_bootstrap}: {len(st.topics)} topics ({len(created)} created now)")
    result = run_selfcheck(settings, console)
    console.print(
        Panel.fit(
            f"Kafka:      {settings.kafka_bootstrap}  (data {st.kafka_data})\n"
            f"ClickHouse: {settings.clickhouse_dsn}  database {settings.clickhouse_database}\n"
            f"Round trip: {result['kafka']} records through Kafka, {result['clickhouse']} rows back from ClickHouse\n\n"
            "Next: `.venv/bin/yijian stack status`, `.venv/bin/yijian stack down`",
            title="yijian demo",
        )
    )
