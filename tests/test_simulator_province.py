"""The province simulator: determinism, valid records, national formats, exact ground truth."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from yijian.producers.simulator import FAULTS, RULE_FAULTS, simulate
from yijian.refdata.formats import matches
from yijian.refdata.identity import check_resident_id
from yijian.schemas.models import HOSPITAL_TZ, RECORD_MODELS

NOW = datetime(2025, 6, 1, 14, 0, tzinfo=HOSPITAL_TZ)
RATE = 0.02


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    path = tmp_path_factory.mktemp("gt") / "truth.json"
    res = simulate(institutions=200, encounters=4000, seed=11, now=NOW, fault_rate=RATE, ground_truth_path=path)
    return res, json.loads(path.read_text())


@pytest.fixture(scope="module")
def clean():
    return simulate(institutions=120, encounters=1500, seed=5, now=NOW, fault_rate=0)


def _dump(res):
    return [(e.emit_time, e.institution_code, e.record_type, e.skip, e.seq, e.record.model_dump_json()) for e in res.events]


def test_same_seed_same_output_other_seed_differs():
    a = simulate(institutions=30, encounters=300, seed=9, now=NOW)
    b = simulate(institutions=30, encounters=300, seed=9, now=NOW)
    c = simulate(institutions=30, encounters=300, seed=10, now=NOW)
    assert _dump(a) == _dump(b)
    ga, gb = dict(a.ground_truth), dict(b.ground_truth)
    ga.pop("generation_seconds"), gb.pop("generation_seconds")
    assert ga == gb and a.refdata.fingerprint() == b.refdata.fingerprint()
    assert _dump(a) != _dump(c)


def test_records_validate_and_events_are_ordered(sim):
    res, _ = sim
    prev = None
    seqs: dict = {}
    for e in res.events:
        model = RECORD_MODELS[e.record_type]
        assert type(e.record) is model
        again = model.model_validate(json.loads(e.record.model_dump_json()))
        assert again == e.record
        assert e.record.institution_code == e.institution_code
        assert prev is None or prev <= e.emit_time <= NOW
        prev = e.emit_time
        k = (e.institution_code, e.record_type)
        seqs[k] = seqs.get(k, 0) + 1
        assert e.seq == seqs[k]  # 1, 2, 3 ... counting skipped records
    assert list(iter(res))[0] == (res.events[0].institution_code, res.events[0].record_type, res.events[0].record, res.events[0].skip)
    assert set(res.by_institution) <= {i.code for i in res.refdata.institutions()}


def test_province_coverage_and_registry(sim):
    res, _ = sim
    insts = res.refdata.institutions()
    assert len(insts) == 200
    assert {i.city_code for i in insts} == {p.code for p in res.refdata.regions.prefectures()}
    assert {i.county_code for i in insts} == {c.code for c in res.refdata.regions.counties()}
    levels = Counter(i.level for i in insts)
    assert levels[1] and levels[2] and levels[3] and levels[2] > levels[3]
    assert 1 <= sum(i.type == "internet" for i in insts) <= 10
    med = Counter(e.record.med_type for e in res.events if e.record_type == "encounter")
    assert med["outpatient"] > med["inpatient"] > med["internet"] > 0 and med["emergency"] > 0
    for i in insts:
        assert matches("institution", i.code) and i.code[1:7] == i.county_code
    for p in res.refdata.practitioners():
        assert matches("practitioner", p.code)
        assert all(res.refdata.institution(c) for c in p.institutions)


def test_national_codes_in_refdata_match_formats_and_maps_differ(sim):
    res, _ = sim
    kinds = {"drug": "drug", "diagnosis": "diagnosis", "operation": "operation", "service": "service",
             "consumable": "consumable", "department": "department"}
    maps = {}
    for inst in res.refdata.institutions():
        for kind, fmt in kinds.items():
            m = res.refdata.code_map(inst.code, kind)
            assert m
            for nat in m.values():
                assert matches(fmt, nat), (kind, nat)
        maps[inst.code] = res.refdata.code_map(inst.code, "drug")
    distinct = {tuple(sorted(m.items())) for m in maps.values()}
    assert len(distinct) > 150  # local codes differ per institution


def _events_by_key(res):
    return {(e.institution_code, e.record_type, e.record.record_id, e.record.version): e for e in res.events}


def test_fault_counts_match_rates_and_every_record_exists(sim):
    res, gt = sim
    n = gt["config"]["encounters"]
    assert set(gt["fault_units"]) == set(FAULTS)
    for f, units in gt["fault_units"].items():
        expected = RATE * n
        assert abs(units - expected) <= 4 * (expected ** 0.5) + 2, (f, units)
    by_key = _events_by_key(res)
    seen_units = {}
    for f in gt["faults"]:
        assert (f["institution_code"], f["record_type"], f["record_id"], f["version"]) in by_key, f
        assert f["expect"]
        seen_units.setdefault(f["fault"], set()).add(f["unit"])
    for f, units in gt["fault_units"].items():
        assert len(seen_units.get(f, ())) == units, f
    totals = gt["totals"]
    for t in ("encounter", "prescription", "charge"):
        assert totals["clean_records"].get(t, 0) + totals["faulty_records"].get(t, 0) == totals["records"][t]


def test_injected_faults_are_really_there(sim):
    res, gt = sim
    by_key = _events_by_key(res)
    sla = timedelta(hours=gt["sla_hours"])
    for f in gt["faults"]:
        e = by_key[(f["institution_code"], f["record_type"], f["record_id"], f["version"])]
        r = e.record
        kind = f["fault"]
        if kind == "invalid_id_number":
            assert check_resident_id(r.patient.certno).reason == "invalid_check_digit"
        elif kind == "sex_mismatch":
            assert check_resident_id(r.patient.certno, sex=r.patient.gend).reason == "sex_mismatch"
        elif kind == "discharge_before_admission":
            assert r.endtime < r.begntime
        elif kind == "amount_mismatch":
            assert r.det_item_fee_sumamt != (r.cnt * r.pric).quantize(Decimal("0.01"))
        elif kind == "late":
            t = r.fee_ocur_time if f["record_type"] == "charge" else r.rx_time if f["record_type"] == "prescription" else (r.endtime or r.begntime)
            assert e.emit_time - t > sla
        elif kind == "seq_gap":
            assert e.skip and f["expect"][0]["first_seq"] <= e.seq <= f["expect"][0]["last_seq"]
        elif kind == "unmapped_code":
            loc = f["expect"][0]["local_code"]
            assert res.refdata.map_code(f["institution_code"], f["expect"][0]["code_kind"], loc) is None
            assert loc in r.model_dump_json()
        elif kind in ("correction", "cancellation"):
            assert r.version == 2 and r.status == ("corrected" if kind == "correction" else "cancelled")
            v1 = by_key[(f["institution_code"], "charge", r.record_id, 1)]
            assert v1.emit_time <= e.emit_time and v1.seq < e.seq
        elif kind == "missing_field":
            assert getattr(r, f["expect"][0]["field"]) is None
        elif kind == "too_many_drugs":
            assert len(r.items) > 5
        elif kind == "outpatient_days_exceeded":
            assert max(i.prd_days for i in r.items) > 7 and not r.chronic_flag and r.med_type == "outpatient"
        elif kind == "special_antibiotic_outpatient":
            assert any(i.antibiotic_tier == "special" for i in r.items) and r.med_type == "outpatient"
        elif kind == "online_rx_no_pharmacist":
            assert r.online_flag and r.phar_code is None
        elif kind == "internet_first_visit_rx" and f["record_type"] == "encounter":  # 首诊 itself, with its prescription
            assert r.med_type == "internet" and r.fst_visit_flag is True and f["expect"][0]["related"]
        elif kind == "internet_first_visit_rx":
            enc = by_key[(f["institution_code"], "encounter", r.mdtrt_id, 1)].record
            assert enc.fst_visit_flag is True and r.online_flag
        elif kind == "drug_sex_restriction" and f["record_type"] == "charge":  # the charge line of the restricted drug
            assert res.refdata.drug(res.refdata.map_code(r.institution_code, "drug", r.medins_list_codg)).sex not in ("", r.patient.gend)
        elif kind == "drug_sex_restriction":
            codes = [res.refdata.map_code(r.institution_code, "drug", i.medins_list_codg) for i in r.items]
            assert any(res.refdata.drug(c).sex not in ("", r.patient.gend) for c in codes)
        elif kind == "readmission_15d":
            rel = f["expect"][0]["related"][0]
            first = by_key[(rel["institution_code"], "encounter", rel["record_id"], 1)].record
            assert first.patient.certno == r.patient.certno and first.endtime <= r.begntime
            assert r.begntime - first.endtime < timedelta(days=gt["readmission_days"]) and r.rinp_plan_flag is False
        elif kind == "duplicate_prescription":
            rel = f["expect"][0]["related"][0]
            first = by_key[(rel["institution_code"], "prescription", rel["record_id"], 1)].record
            assert rel["institution_code"] != r.institution_code and first.patient.certno == r.patient.certno
            drug = f["expect"][0]["drug_code"]
            d1 = [i for i in first.items if res.refdata.map_code(first.institution_code, "drug", i.medins_list_codg) == drug]
            d2 = [i for i in r.items if res.refdata.map_code(r.institution_code, "drug", i.medins_list_codg) == drug]
            assert d1 and d2 and r.rx_time - first.rx_time < timedelta(days=d1[0].prd_days)
        if kind in RULE_FAULTS:
            assert f["expect"][0] == {**f["expect"][0], "kind": "rule", "subject": kind} and f["expect"][0]["rule_id"]
    gaps = {(g["institution_code"], s) for g in gt["seq_gaps"] for s in range(g["first_seq"], g["last_seq"] + 1)}
    assert gaps == {(e.institution_code, e.seq) for e in res.events if e.skip}
    for u in gt["unmapped_codes"]:
        assert res.refdata.map_code(u["institution_code"], u["kind"], u["local_code"]) is None


def test_clean_records_are_really_clean(clean):
    res = clean
    gt = res.ground_truth
    assert gt["faults"] == [] and gt["seq_gaps"] == [] and gt["unmapped_codes"] == []
    assert not any(e.skip for e in res.events)
    rd = res.refdata
    start = datetime.fromisoformat(gt["window_start"])
    charges_by_enc: dict = {}
    patients: Counter = Counter()
    for e in res.events:
        r = e.record
        inst = r.institution_code
        assert r.version == 1 and r.status == "normal"
        idc = check_resident_id(r.patient.certno, sex=r.patient.gend, event_date=NOW.date())
        assert idc.valid and idc.birth_date == r.patient.brdy, idc
        if e.record_type == "charge":
            assert r.det_item_fee_sumamt == (r.cnt * r.pric).quantize(Decimal("0.01"))
            kind = r.item_type
            nat = rd.map_code(inst, kind, r.medins_list_codg)
            assert nat, (inst, kind, r.medins_list_codg)
            cat = rd.drug(nat) if kind == "drug" else rd.service(nat) if kind == "service" else rd.consumable(nat)
            assert r.pric <= Decimal(str(cat.price_ceiling))
            assert start <= r.fee_ocur_time <= NOW and (kind != "drug" or r.rxno)
            charges_by_enc.setdefault((inst, r.mdtrt_id), []).append(r)
        elif e.record_type == "prescription":
            assert start <= r.rx_time <= NOW
            assert rd.registered_at(r.prsc_dr_code, inst)
            for i in r.items:
                assert i.det_item_fee_sumamt == (i.cnt * i.pric).quantize(Decimal("0.01"))
                d = rd.drug(rd.map_code(inst, "drug", i.medins_list_codg))
                assert d.sex in ("", r.patient.gend)
                assert not (d.antibiotic_tier == "special" and r.med_type != "inpatient")
            if r.rx_kind != "tcm_decoction":
                assert len(r.items) <= 5
            if r.med_type == "outpatient" and not r.chronic_flag:
                assert max(i.prd_days for i in r.items) <= 7
            if r.med_type == "emergency":
                assert max(i.prd_days for i in r.items) <= 3
            if r.online_flag:
                assert r.phar_code and rd.practitioner(r.phar_code).pharmacist
            names = [rd.drug(rd.map_code(inst, "drug", i.medins_list_codg)) for i in r.items]
            for a in names:
                assert not any(b.generic_name in a.incompatible_with for b in names)
        else:
            patients[r.patient.certno] += 1
            assert rd.map_code(inst, "diagnosis", r.diagnoses[0].diag_code)
            assert rd.map_code(inst, "department", r.dept_code)
            assert rd.registered_at(r.atddr_code, inst)
            assert r.endtime is None or r.begntime <= r.endtime
            assert r.medfee_sumamt == r.fund_pay_sumamt + r.psn_selfpay_amt
            assert start <= (r.endtime or r.begntime) <= NOW
            if r.med_type == "internet":
                assert r.fst_visit_flag is False
            if r.med_type == "inpatient":
                assert r.rinp_plan_flag is not None
    for e in res.events:
        if e.record_type == "encounter" and e.record.med_type != "inpatient":
            lines = charges_by_enc[(e.institution_code, e.record.record_id)]
            assert sum(c.det_item_fee_sumamt for c in lines) == e.record.medfee_sumamt
    assert max(patients.values()) == 1  # no accidental readmissions or duplicates in clean data


def test_unknown_fault_and_rates_over_one_are_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        simulate(institutions=5, encounters=5, faults={"nope": 0.1})
    with pytest.raises(ValueError, match="at most 1"):
        simulate(institutions=5, encounters=5, fault_rate=0.1)
