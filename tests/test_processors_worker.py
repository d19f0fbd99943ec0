"""The processors' Faust worker on the real broker: each stage's happy path and rejection reasons."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from yijian.producers.examples import INST, recent_charge as charge, recent_encounter as encounter, identity as patient, recent_prescription as prescription
from yijian.keyring import KeyRing, save_keyring
from yijian.deploy.local import Worker, collect
from yijian.kafka import producer
from yijian.producers.envelope import seal


@pytest.fixture
def worker(settings):
    ring = KeyRing()
    ring.new(INST)
    save_keyring(settings, ring)
    w = Worker(settings)
    yield ring
    w.stop()


def test_worker_standardizes_checks_quality_and_rejects_bad_envelopes(settings, worker):
    ring = worker
    key = ring.active(INST)
    p = producer(settings)
    late = datetime.now(timezone.utc) - timedelta(days=3)
    bad_id = encounter(2, patient=patient(certno="110105194912310021"))  # wrong check digit
    p.produce(settings.topic("raw.encounter"), key=INST, value=seal("encounter", [encounter(1), bad_id], key, "his-1", 1))
    p.produce(settings.topic("raw.prescription"), key=INST, value=seal("prescription", [prescription(1)], key, "his-1", 1))
    # charges: seq 1 then seq 5 → records 2..4 never sent
    p.produce(settings.topic("raw.charge"), key=INST, value=seal("charge", [charge(1, when=late)], key, "his-1", 1))
    p.produce(settings.topic("raw.charge"), key=INST, value=seal("charge", [charge(5)], key, "his-1", 5))
    tampered = bytearray(seal("charge", [charge(9)], key, "his-1", 6))
    tampered[-5] ^= 0xFF
    p.produce(settings.topic("raw.charge"), key=INST, value=bytes(tampered))
    stranger = KeyRing().new("H52010200002")
    p.produce(settings.topic("raw.charge"), key=INST, value=seal("charge", [charge(10)], stranger, "his-x", 1))
    p.produce(settings.topic("raw.charge"), key=INST, value=b"\x00\x01garbage")
    assert p.flush(30) == 0

    def complete(g):
        codes = {q["code"] for q in g["quality.issues"]}
        return len(g["std.records"]) >= 5 and len(g["rejected"]) >= 3 and {"seq_gap", "late", "invalid_id_number"} <= codes

    got = collect(settings, ["std.records", "quality.issues", "rejected"], complete)
    std = got["std.records"]
    assert sorted(r["record_id"] for r in std) == ["C1", "C5", "E1", "E2", "RX1"]
    for r in std:  # no names or ID numbers after the decrypt stage
        assert set(r["patient"]) == {"pseudonym", "cert_type", "sex", "birth_date", "age", "region_code", "id_valid"}
        assert "测试患者" not in str(r) and "11010519491231002X" not in str(r)
        assert r["meta"]["lineage"]["topic"].startswith(settings.topic_prefix + "raw.")
    e1 = next(r for r in std if r["record_id"] == "E1")
    assert e1["patient"]["id_valid"] is True and e1["patient"]["age"] >= 76
    assert next(r for r in std if r["record_id"] == "E2")["patient"]["id_valid"] is False

    reasons = sorted(r["reason"] for r in got["rejected"])
    assert reasons == ["bad_envelope", "bad_tag", "unknown_key"]
    for r in got["rejected"]:
        assert r["lineage"]["topic"] == settings.topic("raw.charge") and r["lineage"]["offset"] >= 0

    issues = {(q["record_id"], q["code"]) for q in got["quality.issues"]}
    assert ("E2", "invalid_id_number") in issues
    assert ("C1", "late") in issues
    assert ("seq:his-1:2-4", "seq_gap") in issues
    assert ("E1", "unmapped_code") in issues  # no reference data loaded: every code is unmapped
    assert not any(code == "late" for rid, code in issues if rid != "C1")
