"""End to end against the simulator's ground truth: a simulated province goes through the real broker,
two processor replicas (Faust subprocesses, with a Supervisor) and the ClickHouse sink; ClickHouse
(read with FINAL) must then hold exactly what the simulator sent — nothing lost, nothing counted twice —
also when a replica is killed with SIGKILL mid-stream (twice), when the broker restarts under load,
when the hospitals are cut off from the broker for a while, and when ClickHouse refuses inserts for a while.

Compared exactly, per case:
- per record type, the distinct record ids sent (skipped records are never sent);
- the latest version and status of every record (corrections replace, cancellations are 'cancelled');
- encounter amounts (medfee_sumamt of the latest versions) per institution;
- per quality code, the records (institution, type, id, version) with a per-record issue == the ground
  truth's expectations;
- the sequence-gap ranges == the ground truth's non-trailing gaps.
And after the baseline: no patient name or ID number in any column of any table of the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from yijian.config import Settings
from yijian.deploy.local import LocalPlatform, free_port
from yijian.producers.simulator import simulate

REPO = Path(__file__).resolve().parents[1]
TABLE = {"encounter": "encounters", "prescription": "prescription_items", "charge": "charges"}


@pytest.fixture(scope="module")
def province():
    return simulate(institutions=20, encounters=300, seed=7)


def expected_counts(res) -> dict:
    latest: dict[tuple, tuple] = {}
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for ev in res.iter_timed():
        if ev.skip:
            continue
        r = ev.record
        key = (ev.record_type, ev.institution_code, r.record_id)
        if key not in latest or latest[key][0] < r.version:
            latest[key] = (r.version, str(r.status.value if hasattr(r.status, "value") else r.status))
    enc_latest = {}
    for ev in res.iter_timed():
        if not ev.skip and ev.record_type == "encounter":
            k = (ev.institution_code, ev.record.record_id)
            if k not in enc_latest or enc_latest[k].version < ev.record.version:
                enc_latest[k] = ev.record
    for (inst, _), r in enc_latest.items():
        amounts[inst] += Decimal(str(r.medfee_sumamt))
    gt = res.ground_truth
    quality = defaultdict(set)
    for f in gt["faults"]:
        for e in f["expect"]:
            if e["kind"] == "quality":
                quality[e["code"]].add((f["institution_code"], f["record_type"], f["record_id"], f["version"]))
    return {
        "records": dict(Counter(rtype for rtype, *_ in latest)),
        "latest": {f"{rt}|{i}|{rid}": v for (rt, i, rid), v in latest.items()},
        "amounts": {k: str(v) for k, v in amounts.items()},
        "quality": {c: len(v) for c, v in quality.items()},
        "seq_gaps": sorted([g["institution_code"], g["record_type"], g["first_seq"], g["last_seq"]]
                           for g in gt["seq_gaps"] if not g["trailing"]),
    }


def found_counts(client) -> dict:
    def rows(sql):
        return client.query(sql).result_rows

    records, latest = {}, {}
    for rtype, table in TABLE.items():
        records[rtype] = rows(f"SELECT uniqExact(institution_code, record_id) FROM {table} FINAL")[0][0]
        for inst, rid, version, status in rows(
                f"SELECT institution_code, record_id, max(version), argMax(status, version) FROM {table} FINAL GROUP BY institution_code, record_id"):
            latest[f"{rtype}|{inst}|{rid}"] = (int(version), str(status))
    amounts = {inst: str(Decimal(str(a)).quantize(Decimal("0.01"))) for inst, a in rows(
        "SELECT institution_code, sum(medfee_sumamt) FROM encounters FINAL GROUP BY institution_code")}
    quality = {code: n for code, n in rows(
        "SELECT code, uniqExact(institution_code, record_type, record_id, version) FROM quality_issues FINAL "
        "WHERE record_id != '' AND NOT startsWith(record_id, 'seq:') AND NOT startsWith(record_id, 'manifest:') GROUP BY code")}
    gaps = sorted([inst, rtype, json.loads(d)["first_missing"], json.loads(d)["last_missing"]] for inst, rtype, d in rows(
        "SELECT institution_code, record_type, details FROM quality_issues FINAL WHERE code = 'seq_gap'"))
    return {"records": records, "latest": latest, "amounts": amounts, "quality": quality, "seq_gaps": gaps}


def assert_matches_ground_truth(client, res) -> dict:
    exp = expected_counts(res)
    exp["amounts"] = {k: str(Decimal(v).quantize(Decimal("0.01"))) for k, v in exp["amounts"].items()}
    got = found_counts(client)
    print(f"\nrecords expected {exp['records']} found {got['records']}; quality expected {exp['quality']} found {got['quality']}; "
          f"seq gaps expected {exp['seq_gaps']} found {got['seq_gaps']}")
    assert got["records"] == exp["records"]
    assert got["latest"] == exp["latest"], (
        sorted(set(exp["latest"].items()) - set(got["latest"].items()))[:10], sorted(set(got["latest"].items()) - set(exp["latest"].items()))[:10])
    assert sum(v == (2, "cancelled") for v in got["latest"].values()) >= 1  # cancellations present and kept as cancelled
    assert sum(v == (2, "corrected") for v in got["latest"].values()) >= 1
    assert got["amounts"] == exp["amounts"]
    assert got["quality"] == exp["quality"]
    assert got["seq_gaps"] == exp["seq_gaps"] and exp["seq_gaps"]
    return exp


def test_baseline_then_no_pii_in_clickhouse(settings, province):
    plat = LocalPlatform(settings, province)
    try:
        report = plat.publish()
        assert report.records_sent == sum(province.ground_truth["totals"]["sent"].values())
        client = plat.drain()
        assert_matches_ground_truth(client, province)
        # PII scan: every column of every table of the test's database
        names, certnos = set(), set()
        for ev in province.iter_timed():
            names.add(ev.record.patient.psn_name)
            certnos.add(ev.record.patient.certno)
        tables = [r[0] for r in client.query(f"SELECT name FROM system.tables WHERE database = '{settings.clickhouse_database}'").result_rows]
        dump = []
        db = settings.clickhouse_database
        for t in tables:  # every column that can hold text (aggregate states hold numbers and uniq hashes)
            cols = [c for c, typ in client.query(f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = '{t}'").result_rows
                    if "String" in typ and "AggregateFunction" not in typ]
            if not cols:
                continue
            for row in client.query(f"SELECT {', '.join(f'`{c}`' for c in cols)} FROM {db}.{t}").result_rows:
                dump.append("\t".join(map(str, row)))
        text = "\n".join(dump)
        assert len(dump) > 1500 and len(names) > 100  # the scan saw the province
        leaked = [x for x in names | certnos | {c[:17] for c in certnos if len(c) >= 17} if x and x in text]
        assert leaked == []
    finally:
        plat.close()


def test_kill9_a_replica_twice_mid_stream_loses_and_doubles_nothing(settings, province):
    plat = LocalPlatform(settings, province)
    try:
        t, out = publish_in_background(plat)
        for at in (6, 14):
            time.sleep(at - (6 if at == 14 else 0))
            victim = next(w for w in plat.workers if w.proc.poll() is None)
            victim.kill9()
            assert victim.proc.returncode == -9
            plat.add_replica()
        assert t.is_alive()  # both kills happened while the hospitals were still sending
        t.join(120)
        assert out["report"].records_sent == sum(province.ground_truth["totals"]["sent"].values())
        assert_matches_ground_truth(plat.drain(), province)
    finally:
        plat.close()


@contextlib.contextmanager
def own_broker(clickhouse_path, tmp_path, hospital_advertised_port: int | None = None):
    """A broker of the test's own (it gets stopped, or fronted by a proxy), with the platform's Settings.
    ``hospital_advertised_port``: also open a HOSPITAL listener that advertises 127.0.0.1:<that port>
    (where the test runs a TCP proxy to it). Yields (settings, kafka(cmd), hospital listener port)."""
    port = free_port()
    env = {**os.environ, "YIJIAN_HOME": str(tmp_path / "kafka"), "YIJIAN_KAFKA_PORT": str(port),
           "YIJIAN_KAFKA_CACHE": os.environ.get("YIJIAN_KAFKA_CACHE", str(REPO / "var" / "cache" / "kafka"))}
    hospital_port = None
    if hospital_advertised_port:
        hospital_port = free_port()
        env.update(YIJIAN_KAFKA_HOSPITAL_PORT=str(hospital_port), YIJIAN_KAFKA_HOSPITAL_ADVERTISED=f"127.0.0.1:{hospital_advertised_port}")

    def kafka(cmd):
        r = subprocess.run(["bash", str(REPO / "deploy" / "kafka.sh"), cmd], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r

    from yijian.kafka import ensure_topics, wait_for_broker

    tag = os.urandom(5).hex()
    s = Settings(home=tmp_path / "home", kafka_bootstrap=f"127.0.0.1:{port}", topic_prefix=f"b{tag}.", topic_partitions=2,
                 clickhouse_dsn=f"chdb://{clickhouse_path}", clickhouse_database=f"b_{tag}")
    try:
        kafka("start")
        wait_for_broker(s)
        ensure_topics(s)
        yield s, kafka, hospital_port
    finally:
        subprocess.run(["bash", str(REPO / "deploy" / "kafka.sh"), "stop"], env=env, capture_output=True, timeout=120)
        try:
            from yijian.sinks.client import make_client

            make_client(s, create=False).command(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
        except Exception:
            pass


def publish_in_background(plat, settings=None, rate: float = 80):
    """The province's hospitals send at ``rate`` records/s in a thread; returns (thread, result dict)."""
    from yijian.producers.sim_publisher import publish_simulation

    out: dict = {}

    def run():
        try:
            out["report"] = publish_simulation(settings or plat.settings, plat.res, plat.ring, rate=rate)
        except BaseException as e:  # surfaced by the test's assertion on out["report"]
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_broker_restart_under_load(clickhouse_path, tmp_path, province):
    with own_broker(clickhouse_path, tmp_path) as (s, kafka, _):
        plat = LocalPlatform(s, province)
        try:
            t, out = publish_in_background(plat)
            time.sleep(8)
            assert t.is_alive()  # the broker goes down while the hospitals are still sending
            kafka("stop")
            time.sleep(4)
            kafka("start")
            t.join(180)
            assert out["report"].records_sent == sum(province.ground_truth["totals"]["sent"].values())
            assert_matches_ground_truth(plat.drain(), province)
        finally:
            plat.close()


def test_hospitals_cut_off_from_the_broker_mid_stream(clickhouse_path, tmp_path, province):
    """The hospitals' link to the broker (their own listener, through a TCP proxy) is cut for 10 s while
    they send; the platform keeps running on its own listener. Their idempotent producers retry when
    the link is back: every record arrives once."""
    from netfault import TcpProxy

    proxy_port = free_port()
    with own_broker(clickhouse_path, tmp_path, hospital_advertised_port=proxy_port) as (s, _, hospital_port):
        proxy = TcpProxy(proxy_port, ("127.0.0.1", hospital_port))
        hospitals = Settings(**{**s.model_dump(), "kafka_bootstrap": f"127.0.0.1:{proxy_port}"})
        plat = LocalPlatform(s, province)
        try:
            t, out = publish_in_background(plat, hospitals)
            time.sleep(6)
            assert t.is_alive() and proxy.connections > 0  # the hospitals send through the proxy
            received_before = _raw_count(s)
            proxy.cut()
            time.sleep(10)
            assert t.is_alive()
            assert _raw_count(s) - received_before < 50  # cut off: at most what was in flight got through
            proxy.restore()
            t.join(180)
            assert "error" not in out, out.get("error")
            assert out["report"].records_sent == sum(province.ground_truth["totals"]["sent"].values())
            assert_matches_ground_truth(plat.drain(), province)
        finally:
            plat.close()
            proxy.close()


def _raw_count(s) -> int:
    """Envelopes on the raw record topics (end offsets), read over the platform's own listener."""
    from confluent_kafka import TopicPartition

    from yijian.kafka import consumer

    c = consumer(s, group_id=f"probe-{time.time_ns()}")
    try:
        total = 0
        for t in ("raw.encounter", "raw.prescription", "raw.charge"):
            topic = s.topic(t)
            for p in c.list_topics(topic, timeout=10).topics[topic].partitions:
                total += c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        return total
    finally:
        c.close()


def test_clickhouse_unavailable_for_a_while_under_load(settings, province):
    """ClickHouse refuses every insert for 12+ s while the hospitals send (injected in the client: the
    embedded engine cannot be stopped inside the process that owns it). The sink holds back, commits
    nothing it has not stored, and catches up exactly."""
    from sink_helpers import FailingClient

    from yijian.sinks.client import make_client

    flaky = FailingClient(make_client(settings))
    flaky.failing = False
    plat = LocalPlatform(settings, province, sink_client=flaky)
    try:
        t, out = publish_in_background(plat)
        time.sleep(5)
        flaky.failing = True
        deadline = time.monotonic() + 15
        while flaky.failures == 0:
            assert time.monotonic() < deadline, "the sink made no insert during the outage"
            time.sleep(0.1)
        committed = plat.sink.committed_messages
        time.sleep(12)
        assert plat.sink.committed_messages == committed  # nothing acknowledged to Kafka that ClickHouse refused
        health = plat.sink.health()
        assert flaky.failures > 0 and health["status"] == "degraded" and "unavailable" in health["last_error"]
        flaky.failing = False
        t.join(180)
        assert out["report"].records_sent == sum(province.ground_truth["totals"]["sent"].values())
        assert_matches_ground_truth(plat.drain(), province)
        assert plat.sink.health()["status"] == "ok"
    finally:
        plat.close()
