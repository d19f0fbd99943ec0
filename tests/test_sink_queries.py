"""The analyst SQL library on synthetic data made with the contract models: every query runs,
results are plausible and agree with what was generated."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from sink_helpers import drain
from yijian.config import Settings
from yijian.sinks import queries, synth
from yijian.sinks.queries import ClientBackend

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def loaded(broker, clickhouse_path, tmp_path_factory):
    """One province loaded once through Kafka and the sink for all query tests of this module."""
    from yijian.kafka import delete_topics_with_prefix, ensure_topics
    from yijian.sinks.sink import ClickHouseSink

    tag = uuid.uuid4().hex[:10]
    s = Settings(home=tmp_path_factory.mktemp("qhome"), kafka_bootstrap=broker, topic_prefix=f"t{tag}.", topic_partitions=2,
                 clickhouse_dsn=f"chdb://{clickhouse_path}", clickhouse_database=f"t_{tag}", sink_batch_seconds=0.3)
    ensure_topics(s)
    prov = synth.generate(n_institutions=30, encounters_per_inst=6, seed=21)
    n = synth.publish(s, prov)
    sink = ClickHouseSink(s)
    drain(sink, n)
    yield s, ClientBackend(sink.client), prov
    sink.close()
    delete_topics_with_prefix(s, s.topic_prefix)
    sink.client.command(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")


def _window():
    today = date.today()
    return {"date_from": today - timedelta(days=10), "date_to": today + timedelta(days=1)}


def test_every_library_query_has_a_header_and_runs(loaded):
    s, be, _ = loaded
    assert len(queries.names()) >= 9
    for q in queries.all_queries():
        assert q.description and q.parameters and q.grain
        for p in q.param_names:
            assert p in q.parameters, f"{q.name}: parameter {p} not documented in its header"
        params = {k: v for k, v in {**_window(), "institution": synth.institutions(1, 21)[0].code}.items() if k in q.param_names}
        res = be.run(q.name, params, s)
        assert res.rows, f"{q.name} returned nothing"


@pytest.mark.parametrize("level,units", [("province", 1), ("city", 9), ("county", 30), ("institution", 30)])
def test_quality_score_by_level(loaded, level, units):
    s, be, prov = loaded
    rows = be.run("quality_score", {"level": level, **_window()}, s).dicts()
    assert len(rows) == units
    for r in rows:
        assert 0 <= r["score"] <= 100
        for k in ("completeness", "timeliness", "consistency", "validity", "mapping"):
            assert 0 <= r[k] <= 1
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    assert sum(r["records"] for r in rows) == prov.expected["encounters"] + prov.expected["prescriptions"] + prov.expected["charges"]
    if level == "province":
        assert rows[0]["unit"] == "520000" and rows[0]["unit_name"] == "贵州省"
    if level == "city":
        assert {r["unit_name"] for r in rows} >= {"贵阳市", "遵义市", "黔东南苗族侗族自治州"}
    # the weights matter: all weight on timeliness gives the timeliness ratio
    t = be.run("quality_score", {"level": level, **_window(), "w_completeness": 0, "w_consistency": 0, "w_validity": 0, "w_mapping": 0, "w_timeliness": 1}, s).dicts()
    assert all(abs(r["score"] - 100 * r["timeliness"]) < 0.01 for r in t)


def test_indicators_agree_with_generated_data(loaded):
    s, be, prov = loaded
    exp = prov.expected
    w = _window()
    vc = be.run("visits_cost", {"level": "province", **w}, s).dicts()
    assert sum(r["outpatient_visits"] + r["inpatient_stays"] for r in vc) == exp["encounters"]
    assert sum(float(r["total_cost"]) for r in vc) == pytest.approx(float(exp["medfee_sum"]))
    assert all(0 < r["self_pay_share"] < 1 for r in vc)
    by_inst = {r["unit"]: r["outpatient_visits"] + r["inpatient_stays"] for r in be.run("visits_cost", {"level": "institution", **w}, s).dicts()}
    assert by_inst == {k: v for k, v in exp["by_institution"].items() if v}
    days = be.run("visits_cost", {"level": "city", "by_day": 1, **w}, s).dicts()
    assert sum(r["outpatient_visits"] + r["inpatient_stays"] for r in days) == exp["encounters"]
    drug = be.run("drug_cost_share", {"level": "city", **w}, s).dicts()
    assert len(drug) == 9 and all(0 < r["drug_cost_share"] < 1 for r in drug)
    ab = be.run("antibiotic_use_rate", {"level": "province", **w}, s).dicts()[0]
    assert 0 < ab["antibiotic_use_rate"] < 1 and ab["with_antibiotic"] <= ab["prescriptions"] <= exp["prescriptions"]
    fs = be.run("findings_summary", {"level": "county", **w}, s).dicts()
    assert sum(r["findings"] for r in fs) == exp["findings"]
    assert sum(r["handled"] for r in fs) == exp["handling"]
    assert {r["severity"] for r in fs} <= {"提示", "预警", "违规"}
    trend = be.run("findings_trend", w, s).dicts()
    assert sum(r["findings"] for r in trend) == exp["findings"]
    tl = be.run("timeliness", {"level": "province", **w}, s).dicts()[0]
    assert 0 < tl["p50_seconds"] <= tl["p90_seconds"] <= tl["p99_seconds"]
    conn = be.run("connection_status", w, s).dicts()
    assert len(conn) == 30 and {r["status"] for r in conn} <= {"connected", "issue", "silent"}
    assert any(r["status"] == "issue" for r in conn)


def test_province_summary(loaded):
    s, be, prov = loaded
    summary = queries.province_summary(be, s)
    exp = prov.expected
    assert summary["institutions"] == 30
    assert summary["records"] == {"encounter": exp["encounters"], "prescription": exp["prescriptions"], "charge": exp["charges"]}
    assert sum(summary["findings_by_severity"].values()) == exp["findings"]
    assert sum(summary["connection_status"].values()) == 30
    assert 50 < summary["quality_score"] <= 100


def test_bad_parameters_are_refused_with_a_clear_message(loaded):
    s, be, _ = loaded
    with pytest.raises(ValueError, match="level"):
        be.run("quality_score", {"level": "galaxy"}, s)
    with pytest.raises(ValueError, match="no parameter"):
        be.run("visits_cost", {"nope": 1}, s)
    with pytest.raises(KeyError, match="no query named"):
        be.run("does_not_exist", {}, s)
