"""Rule engine: every shipped case through the engine, findings' shape, index, packs as JSON."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from yijian.processors.contracts import Finding
from yijian.rules.cases import build_record, run_all, set_path
from yijian.rules.engine import RuleEngine, RuleError
from yijian.rules.model import Case, Pack, load_fixture, load_pack, load_packs, pack_files


@pytest.fixture(scope="module")
def fixture():
    return load_fixture()


@pytest.fixture(scope="module")
def engine(fixture):
    return RuleEngine(load_packs(), fixture[0])


def test_every_shipped_case_passes_through_the_engine(engine, fixture):
    results = run_all(engine, fixture[1])
    failed = [(r.rule_id, r.expect, r.index, r.detail) for r in results if not r.ok]
    assert not failed
    # every rule has at least one must-fire and one must-not-fire case
    by_rule = {}
    for r in results:
        by_rule.setdefault(r.rule_id, set()).add(r.expect)
    assert set(by_rule) == set(engine.rules)
    assert all(v == {"fire", "pass"} for v in by_rule.values())


def test_the_45_subjects_of_the_2025_catalogue_are_covered():
    pack = load_pack(next(p for p in pack_files() if p.name == "nhsa_2025.yaml"))
    assert len({r.subject for r in pack.rules}) == 45


def test_case_failures_are_reported(engine, fixture):
    """A case that expects the wrong outcome fails (the runner can fail)."""
    rule = engine.rules["NH-A01"].rule.model_copy(deep=True)
    rule.cases.fire, rule.cases.pass_ = rule.cases.pass_, rule.cases.fire
    from yijian.rules.cases import run_case

    ok, _ = run_case(engine, rule, rule.cases.fire[0], fixture[1], True)
    assert not ok


def charge(fixture, **paths):
    rec = copy.deepcopy(fixture[1]["charge"])
    for k, v in paths.items():
        set_path(rec, k.replace("__", "."), v)
    return rec


def test_finding_shape_is_deterministic_and_complete(engine, fixture):
    rec = charge(fixture, med_list_codg="XL02BBD161A110110932127", patient__sex="2", pric="30", cnt="2", det_item_fee_sumamt="60")
    f1 = [f for f in engine.evaluate(rec) if f.rule_id == "NH-A01"]
    f2 = [f for f in engine.evaluate(json.loads(json.dumps(rec))) if f.rule_id == "NH-A01"]
    assert len(f1) == 1 and f1[0].finding_id == f2[0].finding_id
    f = f1[0]
    assert isinstance(f, Finding)
    assert (f.rule_version, f.pack_version, f.category, f.severity, f.result_type) == (1, "nhsa-2025@2025.1", "政策", "违规", "明确")
    assert f.vola_amt == Decimal("60.00") and f.items[0].vola_item_type == 1 and f.items[0].record_id == "C0001"
    assert "限男性使用" in f.message and "条例" in f.basis
    assert f.lineage.topic == "yijian.raw.charge" and f.patient_pseudonym == "p-fixture-0001"
    # a new record version is a new finding id; a cancelled record produces nothing
    rec2 = dict(rec, version=2)
    assert [x.finding_id for x in engine.evaluate(rec2) if x.rule_id == "NH-A01"] != [f.finding_id]
    assert engine.evaluate(dict(rec, status="cancelled")) == []


def test_price_ceiling_amount_is_the_excess(engine, fixture):
    rec = charge(fixture, med_list_codg="001109000010000", pric="50", cnt="3", det_item_fee_sumamt="150")
    f = next(f for f in engine.evaluate(rec) if f.rule_id == "BH-004")
    assert f.vola_amt == Decimal("30.00")  # (50 - 40 ceiling) × 3


def test_validity_dates_scenes_and_stage_filter(fixture):
    ctx, bases = fixture
    packs = load_packs()
    rec = charge(fixture, med_list_codg="XL02BBD161A110110932127", patient__sex="2")
    before = copy.deepcopy(rec)
    before["meta"]["event_time"] = "2025-01-01T09:00:00+08:00"
    eng = RuleEngine(packs, ctx)
    assert "NH-A01" not in {f.rule_id for f in eng.evaluate(before)}  # catalogue effective 2025-05-23
    # a rule limited to the inpatient scene is not run on an outpatient record
    inpatient_only = next(p for p in packs if p.id == "prescription")
    rx = build_record(Case(base="prescription", set={"items.0.med_list_codg": "XN02AAM001B002010100333", "items.0.prd_days": 3}), bases, "prescription")
    ids = {f.rule_id for f in RuleEngine([inpatient_only], ctx).evaluate(rx)}
    assert "RX-006" not in ids
    rx["med_type"] = "inpatient"
    assert "RX-006" in {f.rule_id for f in RuleEngine([inpatient_only], ctx).evaluate(rx)}
    # stage filter: an engine for 事前 drops rules declared only for 事后
    data = json.loads(inpatient_only.to_json())
    for r in data["rules"]:
        r["stages"] = ["事后"]
    assert RuleEngine([Pack.model_validate(data)], ctx, stage="事前").rules == {}


def test_index_runs_only_the_rules_of_the_record_type_and_codes(fixture):
    ctx, bases = fixture
    eng = RuleEngine(load_packs(), ctx)
    untriggered_charge = {cr.id for cr in eng.untriggered.get("charge", [])}
    eng.calls.clear()
    eng.evaluate(charge(fixture, med_list_codg="001102000010000"))  # a code no knowledge point uses
    assert set(eng.calls) == untriggered_charge
    assert len(eng.calls) < len(eng.rules) / 5
    eng.calls.clear()
    eng.evaluate(charge(fixture, med_list_codg="XL02BBD161A110110932127"))
    assert set(eng.calls) == untriggered_charge | {"NH-A01"}
    # an encounter with a female-only diagnosis runs the diagnosis rules of chapter O, not the drug rules
    enc = copy.deepcopy(bases["encounter"])
    enc["diagnoses"][0]["icd_code"] = "O80.000"
    eng.calls.clear()
    eng.evaluate(enc)
    assert "NH-C15" in eng.calls and "NH-C15B" not in eng.calls and "NH-A01" not in eng.calls
    assert all("encounter" in eng.rules[r].record_types for r in eng.calls)


def test_pack_json_round_trip_and_load_pack():
    for path in pack_files():
        pack = load_pack(path)
        again = Pack.from_json(pack.to_json())
        assert again.model_dump(exclude={"source"}) == pack.model_dump(exclude={"source"})
        assert json.loads(pack.to_json())["id"] == pack.id


def test_duplicate_rule_ids_and_unknown_templates_are_refused(fixture):
    pack = load_packs()[0]
    with pytest.raises(RuleError, match="duplicate"):
        RuleEngine([pack, pack], fixture[0])
    data = json.loads(pack.to_json())
    data["rules"] = data["rules"][:1]
    data["rules"][0]["template"] = "no_such_template"
    with pytest.raises(RuleError, match="unknown template"):
        RuleEngine([Pack.model_validate(data)], fixture[0])


def test_engine_imports_without_platform_libraries():
    import subprocess
    import sys

    code = ("import sys; import yijian.rules.engine, yijian.rules.history, yijian.rules.model; "
            "bad=[m for m in ('faust','aiokafka','confluent_kafka','clickhouse_connect','chdb','typer','rich') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_bench_engine_runs_both_configurations():
    from yijian.rules.bench import bench_engine

    out = bench_engine(200)
    assert out["records"] == 200 and out["rules"] > 60
    assert out["records_per_s_all_packs"] > 0 and out["records_per_s_no_rules"] > 0
    assert 0 < out["template_calls_per_record"] < out["rules"]
