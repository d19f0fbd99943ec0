"""Stateful templates over sequences of records, PatientHistory bounds and serialization, plugins."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from yijian.rules.cases import build_record
from yijian.rules.engine import RuleEngine
from yijian.rules.history import HistoryStore, PatientHistory
from yijian.rules.model import Case, load_fixture, load_packs


@pytest.fixture(scope="module")
def setup():
    ctx, bases = load_fixture()
    return RuleEngine(load_packs(), ctx), bases


def rec(bases, base, **paths):
    return build_record(Case(base=base, set=paths), bases, base)


def fired(findings, rule_id):
    return [f for f in findings if f.rule_id == rule_id]


def test_readmission_over_a_sequence_of_stays(setup):
    engine, bases = setup
    store = HistoryStore(max_days=engine.history_days)
    h = store.get("p-fixture-0001")
    stay = lambda rid, b, e, **kw: rec(bases, "encounter", record_id=rid, med_type="inpatient", begntime=b, endtime=e, **kw)  # noqa: E731
    # first stay: admission then discharge (a corrected version of the same record)
    assert not fired(engine.process(stay("S1", "2025-06-01T08:00:00+08:00", None), h), "BH-001")
    assert not fired(engine.process(stay("S1", "2025-06-01T08:00:00+08:00", "2025-06-05T10:00:00+08:00", version=2), h), "BH-001")
    assert len(h.events["enc"]) == 1  # the correction replaced the admission
    # readmitted 7 days later with the same diagnosis category: fires, and names the earlier stay
    f = fired(engine.process(stay("S2", "2025-06-12T08:00:00+08:00", None), h), "BH-001")
    assert f and {(i.record_id, i.vola_item_type) for i in f[0].items} == {("S2", 1), ("S1", 2)}
    # re-delivery of the same record after it is in the history is still judged against S1 only
    assert fired(engine.evaluate(stay("S2", "2025-06-12T08:00:00+08:00", None), h), "BH-001")
    # a planned readmission (chemotherapy cycle) is exempt
    assert not fired(engine.evaluate(stay("S3", "2025-06-12T08:00:00+08:00", None, rinp_plan_flag=True), h), "BH-001")
    # a different diagnosis category is not a split stay
    other = stay("S4", "2025-06-12T08:00:00+08:00", None)
    other["diagnoses"][0]["icd_code"] = "S72.000"
    assert not fired(engine.evaluate(other, h), "BH-001")
    # cancelling S1 removes it from history: nothing to compare with
    engine.process(stay("S1", "2025-06-01T08:00:00+08:00", "2025-06-05T10:00:00+08:00", version=3, status="cancelled"), h)
    assert not fired(engine.evaluate(stay("S2", "2025-06-12T08:00:00+08:00", None), h), "BH-001")


def test_overlapping_stays_across_institutions(setup):
    engine, bases = setup
    h = PatientHistory(max_days=engine.history_days)
    a = rec(bases, "encounter", record_id="A1", med_type="inpatient", begntime="2025-06-10T08:00:00+08:00")
    a["institution_code"] = a["meta"]["institution_code"] = "H52020100001"
    engine.process(a, h)  # still admitted at H52020100001
    b = rec(bases, "encounter", record_id="B1", med_type="inpatient", begntime="2025-06-15T08:00:00+08:00")
    assert fired(engine.process(b, h), "BH-002")
    engine.process(dict(a, version=2, endtime="2025-06-14T08:00:00+08:00"), h)  # discharged before B1
    assert not fired(engine.evaluate(b, h), "BH-002")


def test_duplicate_prescriptions_across_institutions(setup):
    engine, bases = setup
    store = HistoryStore(max_days=engine.history_days)
    rx1 = rec(bases, "prescription", record_id="R1", rx_time="2025-06-01T09:00:00+08:00", **{"items.0.prd_days": 30})
    rx1["institution_code"] = rx1["meta"]["institution_code"] = "H52020100001"
    assert not fired(engine.process(rx1, store.get("p-fixture-0001")), "BH-003")
    # same generic (different manufacturer code), another institution, within the 30 days: fires
    rx2 = rec(bases, "prescription", record_id="R2", rx_time="2025-06-20T09:00:00+08:00", **{"items.0.med_list_codg": "XA02BCJ101A104124914999"})
    f = fired(engine.process(rx2, store.get("p-fixture-0001")), "BH-003")
    assert f and "H52020100001" in f[0].message
    # another patient with the same prescription: no finding (state is per pseudonym)
    rx3 = rec(bases, "prescription", record_id="R3", rx_time="2025-06-20T09:00:00+08:00", **{"patient.pseudonym": "p-other"})
    assert not fired(engine.process(rx3, store.get("p-other")), "BH-003")
    # after the first prescription has run out: no finding
    rx4 = rec(bases, "prescription", record_id="R4", rx_time="2025-07-05T09:00:00+08:00")
    assert not fired(engine.evaluate(rx4, store.get("p-fixture-0001")), "BH-003")


def test_payment_course_over_a_sequence_of_charges(setup):
    engine, bases = setup
    h = PatientHistory(max_days=engine.history_days)
    code = "XN07XXD012E001010100888"  # 丁苯酞软胶囊, 20 days
    results = []
    for day in (1, 10, 20, 21, 25):
        c = rec(bases, "charge", record_id=f"C{day}", med_list_codg=code, fee_ocur_time=f"2025-06-{day:02d}T09:00:00+08:00")
        results.append(bool(fired(engine.process(c, h), "NH-A12")))
    assert results == [False, False, False, True, True]  # day 21 is the 21st day since first use


def test_history_memory_is_bounded_and_serializable(setup):
    engine, bases = setup
    h = PatientHistory("p", max_days=30, max_events=5)
    for day in range(1, 11):  # ten charges, 3 days apart
        month, d = (6, day * 3) if day * 3 <= 30 else (7, day * 3 - 30)
        h.observe(rec(bases, "charge", record_id=f"C{day}", fee_ocur_time=f"2025-{month:02d}-{d:02d}T09:00:00+08:00"))
    assert len(h.events["chg"]) == 5  # capped
    assert [e["id"] for e in h.events["chg"]] == ["C6", "C7", "C8", "C9", "C10"]
    h.observe(rec(bases, "charge", record_id="C99", fee_ocur_time="2025-09-30T09:00:00+08:00"))
    assert [e["id"] for e in h.events["chg"]] == ["C99"]  # everything older than 30 days dropped
    again = PatientHistory.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again.to_dict() == h.to_dict()
    assert engine.history_days >= 365  # the longest window among the shipped rules


def test_templates_from_entry_points_are_discovered(tmp_path, monkeypatch, setup):
    """A real distribution on sys.path with an entry point in group yijian.rule_templates."""
    (tmp_path / "yijian_demo_plugin.py").write_text(textwrap.dedent('''
        from yijian.rules.templates import Env, Hit, Params, Template

        class OverAmount(Template):
            name = "demo_over_amount"
            record_types = ("charge",)

            class Params(Params):
                limit: int

            def check(self, f, p, env: Env):
                return [Hit(f"金额{f.amount}超过{p.limit}")] if env.note("amount", f.amount > p.limit) else []
    '''))
    dist = tmp_path / "yijian_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: yijian-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[yijian.rule_templates]\ndemo_over_amount = yijian_demo_plugin:OverAmount\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import yijian.rules.templates as T

    monkeypatch.setattr(T, "_loaded", False)
    monkeypatch.setattr(T, "REGISTRY", dict(T.REGISTRY))
    assert "demo_over_amount" in T.registry()
    from yijian.rules.model import pack_from_data

    pack = pack_from_data({"id": "demo", "version": "1", "rules": [{
        "id": "DEMO-1", "version": 1, "name": "演示", "category": "管理", "subject": "演示", "template": "demo_over_amount",
        "result_type": "可疑", "severity": "提示", "basis": "演示", "params": {"limit": 5}}]})
    ctx, bases = load_fixture()
    eng = RuleEngine([pack], ctx)
    assert [f.rule_id for f in eng.evaluate(bases["charge"])] == ["DEMO-1"]
    sys.modules.pop("yijian_demo_plugin", None)
