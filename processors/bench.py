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


def make_envelopes(ring: KeyRing, n_records: int, batch: int, institutions: int = 40):
    """Sealed envelopes of a simulated province (≈ n_records, realistic patients, codes and faults)
    and its reference data: (topic name, institution, envelope) in emit order, and the SimResult."""
    from yijian.producers.simulator import simulate

    res = simulate(institutions=institutions, encounters=max(10, n_records // 6), seed=7)
    out = []
    open_batch: dict[tuple[str, str], list] = {}
    first: dict[tuple[str, str], int] = {}
    seq: dict[tuple[str, str], int] = {}

    def flush(key):
        recs = open_batch.pop(key, None)
        if recs:
            inst, rtype = key
            key_entry = ring.active(inst) if ring.entries(inst) else ring.new(inst)
            out.append((f"raw.{rtype}", inst, seal(rtype, recs, key_entry, "bench", first[key])))

    for ev in res.iter_timed():  # every record is sent (no gaps) and numbered consecutively
        key = (ev.institution_code, ev.record_type)
        if key not in open_batch:
            open_batch[key] = []
            first[key] = seq.get(key, 1)
        open_batch[key].append(ev.record)
        seq[key] = seq.get(key, 1) + 1
        if len(open_batch[key]) >= batch:
            flush(key)
    for key in list(open_batch):
        flush(key)
    return out, res


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


RAW_RECORD_TOPICS = ["raw.encounter", "raw.prescription", "raw.charge"]


def _publish_province(settings: Settings, n_records: int, batch: int):
    """A simulated province sealed into envelopes of up to ``batch`` records, its keys saved and its
    reference data published, the envelopes on the raw topics: (ring, envelopes, SimResult)."""
    from yijian.processors.refdata_state import publish as publish_refdata

    ensure_topics(settings)
    ring = KeyRing()
    envelopes, res = make_envelopes(ring, n_records, batch)
    save_keyring(settings, ring)
    publish_refdata(settings, res.refdata_updates())
    p = producer(settings, **{"linger.ms": 20})
    for topic, inst, value in envelopes:
        p.produce(settings.topic(topic), key=inst, value=value)
        p.poll(0)
    p.flush(60)
    return ring, envelopes, res


def _deploy_all_rule_packs(settings: Settings) -> list:
    from yijian.rules.deployment import publish
    from yijian.rules.model import load_packs

    packs = load_packs()
    for pack in packs:
        publish(settings, pack)
    return packs


def bench_processors(settings: Settings, n_records: int = 20_000, batch: int = 100) -> dict:
    ring, _, res = _publish_province(settings, n_records, batch)
    n_records = sum(1 for _ in res.iter_timed())  # the simulator decides the exact count

    def decrypt_decode(m) -> int:
        return len(open_envelope(m.value(), ring).records)

    baseline_s = _consume_all(settings, RAW_RECORD_TOPICS, n_records, decrypt_decode)
    pipeline = Pipeline(settings, ring, res.refdata)

    def full(m) -> int:
        out = pipeline.process(m.value(), Lineage(topic=m.topic(), partition=m.partition(), offset=m.offset()), datetime.now(timezone.utc), {})
        return len(out.std)

    pipeline_s = _consume_all(settings, RAW_RECORD_TOPICS, n_records, full)
    worker_off = _run_worker(settings, n_records, "yijian_records_in_total", f"{settings.topic_prefix}bench-off")

    packs = _deploy_all_rule_packs(settings)
    worker_on = _run_worker(settings, n_records, "yijian_rule_records_total", f"{settings.topic_prefix}bench-on")
    baseline = n_records / baseline_s
    return {
        "records": n_records,
        "data": f"simulated province: {len(res.by_institution)} institutions, distinct patients, real code maps",
        "records_per_envelope_max": batch,
        "baseline_decrypt_decode_rps": round(baseline),
        "pipeline_loop_rps": round(n_records / pipeline_s),
        "worker_rules_off_rps": round(worker_off),
        "worker_rules_on_rps": round(worker_on),
        "rules_in_force": sum(len(p.rules) for p in packs),
        "ratio_worker_off_vs_baseline": round(worker_off / baseline, 3),
        "ratio_worker_on_vs_baseline": round(worker_on / baseline, 3),
        "ratio_rules_on_vs_off": round(worker_on / worker_off, 3),
    }


def bench_worker_envelopes(settings: Settings, n_records: int = 3_000) -> dict:
    """One worker (all rules on) on envelopes of ONE record each, as hospitals send at a province's
    real rate (≈0.4 records/s per institution: nothing to batch within the SDK's linger). Faust pays
    per Kafka message, so this, not records/s in full envelopes, sizes the processors. Baseline: the
    plain decrypt+decode loop over the same envelopes."""
    ring, envelopes, _ = _publish_province(settings, n_records, batch=1)
    _deploy_all_rule_packs(settings)
    n = len(envelopes)
    baseline_s = _consume_all(settings, RAW_RECORD_TOPICS, n, lambda m: len(open_envelope(m.value(), ring).records))
    worker = _run_worker(settings, n, "yijian_rule_records_total", f"{settings.topic_prefix}bench-env")
    return {
        "envelopes": n,
        "records_per_envelope": 1,
        "baseline_decrypt_decode_eps": round(n / baseline_s),
        "worker_rules_on_eps": round(worker),
        "ratio_worker_vs_baseline": round(worker / (n / baseline_s), 4),
    }


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_worker_memory(settings: Settings, phases: tuple[int, ...] = (3_000, 12_000), cache_size: int = 2_000) -> dict:
    """Resident memory of one worker (all rule packs on) after successive batches of *distinct*
    patients. With histories in RocksDB and ``cache_size`` of them in memory, memory must level off."""
    from yijian.deploy.local import Worker
    from yijian.producers.examples import encounter

    ensure_topics(settings)
    ring = KeyRing()
    key = ring.new("H52010200001")
    save_keyring(settings, ring)
    _deploy_all_rule_packs(settings)
    p = producer(settings, **{"linger.ms": 20})
    w = Worker(settings, name="mem", YIJIAN_PATIENT_CACHE_SIZE=str(cache_size))
    out = {"cache_size": cache_size, "phases": []}
    try:
        w.get("/health")
        sent, seq = 0, 1
        for n in phases:
            for start in range(sent, sent + n, 100):
                recs = [encounter("H52010200001", i) for i in range(start, min(start + 100, sent + n))]
                p.produce(settings.topic("raw.encounter"), key="H52010200001", value=seal("encounter", recs, key, "bench", seq))
                seq += len(recs)
                p.poll(0)
            p.flush(60)
            sent += n
            deadline = time.monotonic() + 600
            while _metric(w.port, "yijian_rule_records_total") < sent and time.monotonic() < deadline:
                time.sleep(0.2)
            out["phases"].append({"distinct_patients": sent, "rss_mb": round(_rss_mb(w.proc.pid), 1)})
    finally:
        w.stop()
    first, last = out["phases"][0], out["phases"][-1]
    out["patients_growth"] = round(last["distinct_patients"] / first["distinct_patients"], 2)
    out["rss_growth"] = round(last["rss_mb"] / first["rss_mb"], 3)
    return out


def bench_latency(settings: Settings, rate: float | None, encounters: int = 800, institutions: int = 20) -> dict:
    """Latency through the whole local platform (2 replicas, all rules, sink) for a simulated province
    sent at ``rate`` records/s (None: as fast as possible = saturation):
    - received → finding on ``feedback``: Kafka time of the record's envelope → Kafka time of the
      feedback envelope that carries its finding (encrypted to the hospital);
    - received → queryable: Kafka time of the record's envelope → row inserted in ClickHouse."""
    import statistics

    from yijian.deploy.local import LocalPlatform
    from yijian.producers.simulator import simulate
    from yijian.kafka import read_to_end

    res = simulate(institutions=institutions, encounters=encounters, seed=23)
    ensure_topics(settings)
    platform = LocalPlatform(settings, res)
    try:
        report = platform.publish(rate=rate)
        client = platform.drain(timeout=600)
        feedback_ms: dict[str, int] = {}

        def note(msg) -> None:
            opened = open_envelope(msg.value(), platform.ring)
            for fb in opened.records:
                if fb["kind"] == "finding":
                    feedback_ms.setdefault(fb["feedback_id"], msg.timestamp()[1])

        read_to_end(settings, settings.topic("feedback"), note, timeout=120)
        rows = client.query(
            "SELECT f.finding_id, toUnixTimestamp64Milli(r.received_time) FROM findings AS f FINAL "
            "INNER JOIN (SELECT institution_code, record_id, min(received_time) AS received_time FROM ("
            "  SELECT institution_code, record_id, received_time, src_topic FROM encounters UNION ALL "
            "  SELECT institution_code, record_id, received_time, src_topic FROM charges UNION ALL "
            "  SELECT institution_code, record_id, received_time, src_topic FROM prescription_items) "
            "  WHERE startsWith(src_topic, {prefix:String}) GROUP BY institution_code, record_id) AS r "
            "ON f.institution_code = r.institution_code AND f.record_id = r.record_id",
            parameters={"prefix": settings.topic_prefix},
        ).result_rows
        to_finding = sorted(feedback_ms[fid] - rx for fid, rx in rows if fid in feedback_ms)
        q, span_ms = client.query(
            "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', received_time, ingested_time)), "
            "dateDiff('millisecond', min(received_time), max(ingested_time)) FROM ("
            "SELECT received_time, ingested_time, src_topic FROM encounters UNION ALL "
            "SELECT received_time, ingested_time, src_topic FROM prescription_items UNION ALL "
            "SELECT received_time, ingested_time, src_topic FROM charges) "
            "WHERE startsWith(src_topic, {prefix:String})",  # only this run's rows (sections share a database)
            parameters={"prefix": settings.topic_prefix},
        ).result_rows[0]

        def pct(values: list[int], p: float) -> float:
            return float(values[min(len(values) - 1, int(p * len(values)))]) if values else float("nan")

        return {
            "offered_rate_rps": rate or "saturation",
            "records_sent": report.records_sent,
            "publish_rps": round(report.records_sent / max(report.seconds, 1e-6), 1),
            "records_per_envelope": round(report.records_sent / max(report.envelopes, 1), 1),
            "replicas": len(platform.workers),
            "first_received_to_last_queryable_s": round(span_ms / 1000, 1),
            "platform_rps": round(report.records_sent / max(span_ms / 1000, 1e-3), 1),
            "findings_timed": len(to_finding),
            "received_to_feedback_ms_p50": pct(to_finding, 0.5),
            "received_to_feedback_ms_p99": pct(to_finding, 0.99),
            "received_to_feedback_ms_mean": round(statistics.fmean(to_finding), 1) if to_finding else None,
            "received_to_queryable_ms_p50": float(q[0]),
            "received_to_queryable_ms_p99": float(q[1]),
        }
    finally:
        platform.close()
