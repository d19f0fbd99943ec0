"""Sink benchmark: throughput of a backlog and event → queryable latency under a steady trickle.

``bench_sink(settings, n_rows)`` uses the topics and database of ``settings`` (create them first:
``ensure_topics``). Phase 1 produces ``n_rows`` standardized encounters (batches of 100) and
measures how fast one sink drains them (rows/s, from its first poll to the last commit). Phase 2
runs the sink in a thread, produces small batches every 20 ms with ``received_time`` = send time,
and reads the latency ``ingested_time - received_time`` (the row is queryable once inserted)
from ClickHouse itself: p50 / p99 in milliseconds.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone


def _encounters(n: int, seed: int = 5) -> list[dict]:
    from yijian.sinks import synth

    prov = synth.generate(n_institutions=20, encounters_per_inst=10, seed=seed, batch_size=10_000)
    rows = [it for b in prov.batches if b.kind == "std" for it in b.items if it["meta"]["record_type"] == "encounter"]
    while len(rows) < n:
        rows = rows + rows
    out = []
    for i, r in enumerate(rows[:n]):
        out.append({**r, "record_id": f"B{i:09d}", "version": 1, "status": "normal"})
    return out


def bench_sink(settings, n_rows: int = 50_000, trickle_messages: int = 100, trickle_rows: int = 10) -> dict:
    from yijian.kafka import producer
    from yijian.processors.contracts import encode_batch
    from yijian.sinks.sink import ClickHouseSink

    topic = settings.topic("std.records")
    rows = _encounters(n_rows)
    p = producer(settings)
    for i in range(0, len(rows), 100):
        chunk = rows[i:i + 100]
        p.produce(topic, encode_batch("std", chunk), key=chunk[0]["institution_code"].encode())
    p.flush(60)
    n_messages = (len(rows) + 99) // 100

    sink = ClickHouseSink(settings, group_id=f"bench-{uuid.uuid4().hex[:8]}", topics=("std.records",))
    # wait for the partition assignment before starting the clock
    t_join = time.monotonic()
    while not sink.consumer.assignment() and time.monotonic() - t_join < 30:
        sink.consumer.poll(0.1)
    t0 = time.monotonic()
    while sink.committed_messages < n_messages:
        sink.poll_once(timeout=0.2, max_messages=1000)
    elapsed = time.monotonic() - t0
    throughput = n_rows / elapsed if elapsed > 0 else 0.0

    # phase 2: steady trickle with the sink running
    stop = threading.Event()
    th = threading.Thread(target=lambda: _loop(sink, stop), daemon=True)
    th.start()
    base = _encounters(trickle_messages * trickle_rows, seed=9)
    for m in range(trickle_messages):
        now = datetime.now(timezone.utc).isoformat()
        chunk = []
        for j in range(trickle_rows):
            r = base[m * trickle_rows + j]
            chunk.append({**r, "record_id": f"T{m:05d}{j:03d}", "meta": {**r["meta"], "received_time": now, "event_time": now}})
        p.produce(topic, encode_batch("std", chunk), key=chunk[0]["institution_code"].encode())
        p.poll(0)
        time.sleep(0.02)
    p.flush(30)
    deadline = time.monotonic() + 60
    while sink.committed_messages < n_messages + trickle_messages and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    th.join(30)
    db = settings.clickhouse_database
    q = sink.client.query(
        f"SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', received_time, ingested_time)), count() FROM {db}.encounters WHERE startsWith(record_id, 'T')"
    ).result_rows[0]
    sink.close()
    return {
        "n_rows": n_rows,
        "messages": n_messages,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(throughput),
        "latency_ms_p50": round(float(q[0][0]), 1),
        "latency_ms_p99": round(float(q[0][1]), 1),
        "latency_samples": int(q[1]),
        "batch_seconds": settings.sink_batch_seconds,
        "batch_rows": settings.sink_batch_rows,
    }


def _loop(sink, stop: threading.Event) -> None:
    while not stop.is_set():
        sink.poll_once(timeout=0.05)
    sink.flush()
