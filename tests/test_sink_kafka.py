"""The sink on the real broker and the embedded engine: exact counts after re-delivery, corrections
and cancellations, rollups = aggregates over facts, ClickHouse outage held back and caught up,
/metrics, /health and the local /query endpoint."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from sink_helpers import FailingClient, drain, one
from yijian.sinks import synth
from yijian.sinks.client import make_client
from yijian.sinks.sink import ClickHouseSink

pytestmark = pytest.mark.kafka


def _assert_counts(client, db, exp):
    assert one(client, f"SELECT count() FROM {db}.encounters FINAL WHERE status != 'cancelled'") == exp["encounters"]
    assert one(client, f"SELECT countIf(status = 'cancelled') FROM {db}.encounters FINAL") == exp["cancelled_encounters"]
    assert one(client, f"SELECT countIf(version = 2 AND status = 'corrected') FROM {db}.encounters FINAL") == exp["corrected_encounters"]
    assert one(client, f"SELECT sum(medfee_sumamt) FROM {db}.encounters FINAL WHERE status != 'cancelled'") == exp["medfee_sum"]
    assert one(client, f"SELECT count() FROM {db}.prescription_items FINAL") == exp["prescription_items"]
    assert one(client, f"SELECT uniqExact(record_id) FROM {db}.prescription_items FINAL") == exp["prescriptions"]
    assert one(client, f"SELECT count() FROM {db}.charges FINAL") == exp["charges"]
    assert one(client, f"SELECT count() FROM {db}.quality_issues FINAL") == exp["quality_issues"]
    assert one(client, f"SELECT count() FROM {db}.findings FINAL") == exp["findings"]
    assert one(client, f"SELECT count() FROM {db}.rejected FINAL") == exp["rejected"]
    assert one(client, f"SELECT count() FROM {db}.finding_handling FINAL") == exp["handling"]


def _assert_rollups_match_facts(client, db):
    for table, rtype in (("encounters", "encounter"), ("prescription_items", "prescription"), ("charges", "charge")):
        facts = client.query(
            f"SELECT toDate(event_time, 'Asia/Shanghai') AS d, institution_code, uniqExact(record_id), uniqExact(record_id, version) "
            f"FROM {db}.{table} GROUP BY d, institution_code ORDER BY d, institution_code"
        ).result_rows
        roll = client.query(
            f"SELECT day, institution_code, uniqExactMerge(records), uniqExactMerge(record_versions) FROM {db}.daily_records "
            f"WHERE record_type = {{t:String}} GROUP BY day, institution_code ORDER BY day, institution_code",
            parameters={"t": rtype},
        ).result_rows
        assert len(facts) > 0
        # distinct records per day x institution: identical (ids never disappear)
        assert [r[:3] for r in roll] == [r[:3] for r in facts], table
        # versions ever received: the rollup remembers versions that merges already replaced in the facts
        assert all(r[3] >= f[3] for r, f in zip(roll, facts)), table
    q_f = client.query(f"SELECT dimension, uniqExact(issue_id) FROM {db}.quality_issues GROUP BY dimension ORDER BY dimension").result_rows
    q_r = client.query(f"SELECT dimension, uniqExactMerge(issues) FROM {db}.daily_quality GROUP BY dimension ORDER BY dimension").result_rows
    assert q_f == q_r
    f_f = client.query(f"SELECT rule_id, severity, uniqExact(finding_id) FROM {db}.findings GROUP BY rule_id, severity ORDER BY rule_id, severity").result_rows
    f_r = client.query(f"SELECT rule_id, severity, uniqExactMerge(findings) FROM {db}.daily_findings GROUP BY rule_id, severity ORDER BY rule_id, severity").result_rows
    assert f_f == f_r


def test_exact_counts_after_redelivery_corrections_and_cancellations(settings):
    prov = synth.generate(n_institutions=12, encounters_per_inst=8, seed=3)
    exp = prov.expected
    assert exp["corrected_encounters"] > 0 and exp["cancelled_encounters"] > 0
    n = synth.publish(settings, prov)
    n += synth.publish(settings, prov)  # the same batches twice (a producer retrying a whole run)
    sink = ClickHouseSink(settings)
    try:
        drain(sink, n)
        client = sink.client
        db = settings.clickhouse_database
        _assert_counts(client, db, exp)
        raw_rows = one(client, f"SELECT count() FROM {db}.encounters")
        # a second consumer group re-reads everything from the start (re-delivery after an offset reset)
        again = ClickHouseSink(settings, group_id=f"again-{uuid.uuid4().hex[:6]}", migrate=False)
        try:
            drain(again, n)
        finally:
            again.close()
        _assert_counts(client, db, exp)
        assert one(client, f"SELECT count() FROM {db}.encounters") >= raw_rows  # raw copies exist; FINAL hides them
        _assert_rollups_match_facts(client, db)
        versions = one(client, f"SELECT uniqExactMerge(record_versions) FROM {db}.daily_records WHERE record_type = 'encounter'")
        assert versions == exp["encounters"] + 2 * exp["cancelled_encounters"] + exp["corrected_encounters"]
        # lineage: every fact row points back to its raw Kafka coordinates
        assert one(client, f"SELECT countIf(src_topic = '' ) FROM {db}.encounters") == 0
    finally:
        sink.close()


def test_clickhouse_outage_is_held_back_then_caught_up_exactly(settings):
    prov = synth.generate(n_institutions=8, encounters_per_inst=6, seed=5)
    n = synth.publish(settings, prov)
    real = make_client(settings)
    # let the first two inserts of the first flush land, then fail: the retry must re-send the very
    # same blocks (same dedup tokens) without double counting
    flaky = FailingClient(real, pass_first=2)
    sink = ClickHouseSink(settings, client=flaky)
    try:
        import time

        deadline = time.monotonic() + 60
        while flaky.failures < 3:
            assert time.monotonic() < deadline, sink.health()
            sink.poll_once(timeout=0.1)
        health = sink.health()
        assert health["status"] == "degraded" and health["paused"]
        assert "unavailable" in health["last_error"]
        assert health["buffered_rows"] > 0 and health["buffered_rows"] <= settings.sink_max_buffer_rows
        assert sink.committed_messages == 0
        committed = sink.consumer.committed(sink.consumer.assignment(), timeout=5)
        assert all(tp.offset < 0 for tp in committed), "nothing may be committed while ClickHouse refuses the data"
        held = health["buffered_rows"]
        # paused: polling more does not grow the buffer (bounded memory)
        for _ in range(5):
            sink.poll_once(timeout=0.1)
        assert sink.health()["buffered_rows"] == held
        flaky.failing = False  # ClickHouse is back
        drain(sink, n)
        assert not sink.paused and sink.health()["status"] == "ok"
        _assert_counts(real, settings.clickhouse_database, prov.expected)
        _assert_rollups_match_facts(real, settings.clickhouse_database)
    finally:
        sink.close()


def test_metrics_health_and_local_query_endpoint(settings):
    from yijian.sinks.queries import ClientBackend, HttpBackend
    from yijian.sinks.server import App, Server

    prov = synth.generate(n_institutions=4, encounters_per_inst=3, seed=8)
    n = synth.publish(settings, prov)
    sink = ClickHouseSink(settings)
    server = Server(App(backend=ClientBackend(sink.client), sink=sink, query_endpoint=True, settings=settings)).start()
    try:
        drain(sink, n)
        sink._lag_at = 0
        sink._update_lag()
        metrics = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
        enc = sum(len(b.items) for b in prov.batches if b.kind == "std" and b.items[0]["meta"]["record_type"] == "encounter")
        rows_written = {line.split("}")[0].split('"')[1]: float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("yijian_sink_rows_written_total{")}
        assert rows_written["encounters"] >= prov.expected["encounters"]
        assert "yijian_sink_batches_total" in metrics and "yijian_sink_lag{" in metrics
        health = json.loads(urllib.request.urlopen(server.url + "/health", timeout=5).read())
        assert health["status"] == "ok" and health["query_endpoint"] is True
        assert health["sink"]["last_error"] == ""
        assert all(v == 0 for v in health["sink"]["lag"].values())
        http = HttpBackend(server.url)
        res = http.sql("SELECT count() FROM encounters FINAL WHERE status != 'cancelled' AND institution_code = {i:String}",
                       {"i": synth.institutions(1)[0].code})
        assert res.rows[0][0] == prov.expected["by_institution"][synth.institutions(1)[0].code]
        assert enc >= res.rows[0][0]
        with pytest.raises(RuntimeError, match="read-only"):
            http.sql("DROP TABLE encounters")
        # `yijian query` in another process: the engine's folder is locked by this process, so the
        # CLI goes through the owner's /query endpoint
        import os
        import subprocess
        import sys

        env = {**os.environ, "YIJIAN_CLICKHOUSE_DSN": str(settings.clickhouse_dsn), "YIJIAN_CLICKHOUSE_DATABASE": settings.clickhouse_database,
               "YIJIAN_SINK_HTTP_PORT": str(server.port), "YIJIAN_HOME": str(settings.home)}
        out = subprocess.run([sys.executable, "-m", "yijian.cli", "query", "-n", "visits_cost", "-p", "level=province", "-p", "date_from=2020-01-01",
                              "-p", "date_to=2030-01-01", "-f", "json"], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        assert rows[0]["unit"] == "520000"
        assert rows[0]["outpatient_visits"] + rows[0]["inpatient_stays"] == prov.expected["encounters"]
        out = subprocess.run([sys.executable, "-m", "yijian.cli", "query", "SELECT count() AS n FROM charges FINAL", "-f", "csv"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["n", str(prov.expected["charges"])]
    finally:
        server.stop()
        sink.close()
