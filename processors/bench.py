"""Benchmark of the processors: one worker end to end vs a plain confluent-kafka loop on the same data.

The data (sealed envelopes) is produced once; then, in the same run:
- baseline: plain confluent-kafka `consume()` loop doing only decrypt + decode (open_envelope);
- pipeline loop: the same loop running the whole Pipeline (decrypt, pseudonymize, standardize, quality);
- worker: a real `yijian worker` subprocess (Faust), rules off, measured from its first to its last
  standardized output (start-up excluded), then again with every shipped rule pack deployed, measured
  until the rules stage has evaluated every record.
"""

from __future__ import annotations

import time
import urllib.request
from datetime import datetime, timezone

from confluent_kafka import TopicPartition

from yijian.config import Settings
from yijian.kafka import consumer, ensure_topics, producer
from yijian.keyring import KeyRing, save_keyring
from yijian.processors.contracts import Lineage
from yijian.processors.pipeline import Pipeline
from yijian.producers.envelope import open_envelope, seal


def make_envelopes(ring: KeyRing, n_records: int, batch: int, institutions: int = 20) -> list[tuple[str, str, bytes]]:
    """(topic name, institution, envelope) with a realistic mix of record types (factories of the tests)."""
    from yijian.producers.samples import charge, encounter, prescription

    makers = (("encounter", encounter), ("prescription", prescription), ("charge", charge), ("charge", charge))
    out = []
    seqs: dict[tuple[str, str], int] = {}
    made = 0
    i = 0
    while made < n_records:
        inst = f"H5201{(i % institutions):02d}00{i % 7:03d}"[:12].ljust(12, "0")
        rtype, make = makers[i % len(makers)]
        key = ring.active(inst) if any(e.institution_code == inst for e in ring.entries()) else ring.new(inst)
        k = min(batch, n_records - made)
        recs = [make(made + j, inst=inst) for j in range(k)]
        first = seqs.get((inst, rtype), 1)
        seqs[(inst, rtype)] = first + k
        out.append((f"raw.{rtype}", inst, seal(rtype, recs, key, "bench", first)))
        made += k
        i += 1
    return out


def _consume_all(settings: Settings, topics: list[str], expected: int, work) -> float:
    c = consumer(settings, group_id=f"bench-{time.time_ns()}", **{"enable.auto.commit": False, "fetch.max.bytes": 52428800})
    assign = []
    for t in topics:
        md = c.list_topics(settings.topic(t), timeout=10).topics[settings.topic(t)]
        assign += [TopicPartition(settings.topic(t), p, 0) for p in md.partitions]
    c.assign(assign)
    done = 0
    t0 = None
    while done < expected:
        msgs = c.consume(1000, timeout=1.0)
        if t0 is None and msgs:
            t0 = time.perf_counter()
        for m in msgs:
            if not m.error():
                done += work(m)
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    c.close()
    return elapsed


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        total = 0.0
        for line in r.read().decode().splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def _run_worker(settings: Settings, n_records: int, metric: str, app_id: str) -> float:
    from yijian.deploy.local import Worker

    w = Worker(settings, name=app_id, YIJIAN_PROCESSOR_APP_ID=app_id)
    try:
        w.get("/health")
        first = last = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = _metric(w.port, metric)
            now = time.perf_counter()
            if done > 0 and first is None:
                first = (now, done)
            if done >= n_records:
                last = now
                break
            time.sleep(0.05)
        if first is None or last is None:
            raise RuntimeError(f"worker did not process {n_records} records (see {w.log_path})")
        # rate over the records processed after the first observation (start-up excluded)
        return (n_records - first[1]) / max(last - first[0], 1e-6)
    finally:
        w.stop()


def bench_processors(settings: Settings, n_records: int = 20_000, batch: int = 100) -> dict:
    ensure_topics(settings)
    ring = KeyRing()
    envelopes = make_envelopes(ring, n_records, batch)
    save_keyring(settings, ring)
    p = producer(settings, **{"linger.ms": 20})
    for topic, inst, value in envelopes:
        p.produce(settings.topic(topic), key=inst, value=value)
        p.poll(0)
    p.flush(60)
    raw = ["raw.encounter", "raw.prescription", "raw.charge"]

    def decrypt_decode(m) -> int:
        return len(open_envelope(m.value(), ring).records)

    baseline_s = _consume_all(settings, raw, n_records, decrypt_decode)
    pipeline = Pipeline(settings, ring)

    def full(m) -> int:
        out = pipeline.process(m.value(), Lineage(topic=m.topic(), partition=m.partition(), offset=m.offset()), datetime.now(timezone.utc), {})
        return len(out.std)

    pipeline_s = _consume_all(settings, raw, n_records, full)
    worker_off = _run_worker(settings, n_records, "yijian_records_in_total", f"{settings.topic_prefix}bench-off")

    from yijian.rules.deployment import publish
    from yijian.rules.model import load_packs

    packs = load_packs()
    for pack in packs:
        publish(settings, pack)
    worker_on = _run_worker(settings, n_records, "yijian_rule_records_total", f"{settings.topic_prefix}bench-on")
    baseline = n_records / baseline_s
    return {
        "records": n_records,
        "records_per_envelope": batch,
        "baseline_decrypt_decode_rps": round(baseline),
        "pipeline_loop_rps": round(n_records / pipeline_s),
        "worker_rules_off_rps": round(worker_off),
        "worker_rules_on_rps": round(worker_on),
        "rules_in_force": sum(len(p.rules) for p in packs),
        "ratio_worker_off_vs_baseline": round(worker_off / baseline, 3),
        "ratio_worker_on_vs_baseline": round(worker_on / baseline, 3),
        "ratio_rules_on_vs_off": round(worker_on / worker_off, 3),
    }
