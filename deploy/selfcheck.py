"""Round trip through the local stack: Kafka produce → consume → ClickHouse insert → query."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

from rich.console import Console

from yijian.config import Settings


def run_selfcheck(settings: Settings, console: Console, n: int = 5) -> dict:
    from confluent_kafka import TopicPartition

    from yijian.deploy import stack
    from yijian.kafka import consumer, producer
    from yijian.sinks.client import make_client

    stack.up(settings)
    topic = settings.topic("selfcheck")
    run_id = uuid.uuid4().hex[:12]
    sent = [{"run": run_id, "seq": i, "at": datetime.now(timezone.utc).isoformat()} for i in range(n)]

    p = producer(settings)
    for rec in sent:
        p.produce(topic, key=run_id, value=json.dumps(rec).encode())
    if p.flush(30) != 0:
        raise RuntimeError("Kafka did not acknowledge every self-check record within 30 s")
    console.print(f"published {n} records to [bold]{topic}[/] (run {run_id})")

    c = consumer(settings, group_id=f"selfcheck-{run_id}")
    c.assign([TopicPartition(topic, 0, 0)])
    got: list[dict] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        for msg in c.consume(100, timeout=0.5):
            if msg.error() is None:
                rec = json.loads(msg.value())
                if rec["run"] == run_id:
                    got.append({**rec, "offset": msg.offset()})
    c.close()
    if [r["seq"] for r in got] != list(range(n)):
        raise RuntimeError(f"read back {len(got)} of {n} records from {topic}")
    console.print(f"read back {len(got)} records from Kafka (offsets {got[0]['offset']}..{got[-1]['offset']})")

    ch = make_client(settings)
    ch.command(
        "CREATE TABLE IF NOT EXISTS selfcheck (run String, seq UInt32, kafka_offset UInt64, "
        "at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (run, seq)"
    )
    ch.insert(
        "selfcheck",
        [[r["run"], r["seq"], r["offset"], datetime.fromisoformat(r["at"])] for r in got],
        column_names=["run", "seq", "kafka_offset", "at"],
    )
    count = ch.query("SELECT count() FROM selfcheck WHERE run = {r:String}", parameters={"r": run_id}).result_rows[0][0]
    ch.close()
    if count != n:
        raise RuntimeError(f"ClickHouse returned {count} rows for run {run_id}, expected {n}")
    console.print(
        f"wrote and queried back {count} rows in ClickHouse [bold]{settings.clickhouse_database}.selfcheck[/] "
        f"({settings.clickhouse_dsn})"
    )
    return {"run": run_id, "kafka": len(got), "clickhouse": count}
