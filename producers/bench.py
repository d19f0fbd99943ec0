"""SDK throughput against raw confluent-kafka, in the same run (called by `make bench`).

``bench_sdk(settings, n)`` sends ``n`` encounter records through :class:`HospitalProducer`
(validate + Avro-encode + durable outbox + batch + SM4-GCM seal + idempotent acks=all publish, until
every record is confirmed) and then publishes the very same sealed envelopes with a bare
confluent-kafka producer (same topic, same acks=all/idempotent settings, no SDK work). Records per
second are reported per CPU core (process CPU time) and per wall second, and the ratio SDK / raw.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    return time.process_time()


def bench_sdk(settings, n_records: int = 20_000) -> dict:
    from yijian.kafka import ensure_topics, producer as kafka_producer
    from yijian.keyring import KeyRing
    from yijian.producers import examples
    from yijian.producers.producer import HospitalProducer

    institution = "H52010100001"
    ensure_topics(settings)
    ring = KeyRing()
    ring.new(institution)
    # build the inputs outside the timed part: the HIS has its records already
    records = [examples.encounter(institution, i).model_dump() for i in range(n_records)]
    sealed: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        s = settings.model_copy(update={"outbox_path": Path(tmp) / "bench.sqlite"})
        p = HospitalProducer(s, institution, producer_id="bench", keyring=ring, heartbeats=False, on_sealed=lambda t, v: sealed.append((t, v)))
        w0, c0 = time.perf_counter(), _cpu()
        step = 100  # the HIS hands over records in small groups (one transaction per group)
        for i in range(0, n_records, step):
            p.send_many(records[i : i + step], "encounter")
        left = p.flush(300)
        sdk_wall, sdk_cpu = time.perf_counter() - w0, _cpu() - c0
        envelopes = p.stats()["envelopes"]
        p.close()
    if left:
        raise RuntimeError(f"{left} records not confirmed by the broker")

    raw = kafka_producer(settings, **{"compression.type": "none", "linger.ms": 2})
    errors = []
    w0, c0 = time.perf_counter(), _cpu()
    for topic, value in sealed:
        while True:
            try:
                raw.produce(topic, value=value, key=institution.encode(), on_delivery=lambda e, m: e and errors.append(e))
                break
            except BufferError:
                raw.poll(0.01)
        raw.poll(0)
    raw.flush(300)
    raw_wall, raw_cpu = time.perf_counter() - w0, _cpu() - c0
    if errors:
        raise RuntimeError(f"raw publish failed: {errors[0]}")
    envelope_bytes = sum(len(v) for _, v in sealed)
    sdk_per_core = n_records / sdk_cpu if sdk_cpu else float("inf")
    raw_per_core = n_records / raw_cpu if raw_cpu else float("inf")
    return {
        "records": n_records,
        "envelopes": envelopes,
        "avg_records_per_envelope": round(n_records / max(envelopes, 1), 1),
        "avg_record_bytes_sealed": round(envelope_bytes / n_records, 1),
        "sdk_records_per_s_wall": round(n_records / sdk_wall),
        "sdk_records_per_cpu_s": round(sdk_per_core),
        "raw_records_per_s_wall": round(n_records / raw_wall),
        "raw_records_per_cpu_s": round(raw_per_core),
        "ratio_sdk_to_raw_per_core": round(sdk_per_core / raw_per_core, 3),
        "ratio_sdk_to_raw_wall": round(raw_wall / sdk_wall, 3),
        "what": "SDK = validate + Avro encode + SQLite outbox (WAL) + batch + SM4-GCM seal + idempotent acks=all publish, "
        "until confirmed; raw = confluent-kafka publish of the same sealed envelopes",
    }


if __name__ == "__main__":
    import json
    import uuid

    from yijian.config import Settings
    from yijian.kafka import delete_topics_with_prefix

    s = Settings(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.", topic_partitions=1)
    try:
        print(json.dumps(bench_sdk(s, 20_000), indent=1, ensure_ascii=False))
    finally:
        delete_topics_with_prefix(s, s.topic_prefix)
