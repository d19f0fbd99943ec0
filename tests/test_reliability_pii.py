"""PII scan: no patient name or ID number on any topic after the decrypt stage, nor in the worker's log."""

from __future__ import annotations

from yijian.deploy.local import Worker, collect
from yijian.kafka import producer
from yijian.keyring import KeyRing, save_keyring
from yijian.producers.envelope import seal
from yijian.producers.examples import INST, recent_charge as charge, recent_encounter as encounter, identity as patient, recent_prescription as prescription

PEOPLE = [
    ("欧阳娜娜", "52010219850312004X", "2"),  # valid
    ("龙飞凤", "520102199001010016", "1"),  # wrong check digit → quality issue (must not quote the number)
    ("Zhang Wei", "E12345678", "1"),  # passport
]


def test_no_name_or_id_number_after_decrypt_stage_or_in_logs(settings):
    ring = KeyRing()
    key = ring.new(INST)
    save_keyring(settings, ring)
    worker = Worker(settings, loglevel="info")
    try:
        p = producer(settings)
        recs_e, recs_rx, recs_c = [], [], []
        for i, (name, certno, sex) in enumerate(PEOPLE, 1):
            cert_type = "01" if certno[0].isdigit() else "03"
            who = patient(certno=certno, gend=sex).model_copy(update={"psn_name": name, "psn_cert_type": cert_type})
            recs_e.append(encounter(i, patient=who))
            recs_rx.append(prescription(i, patient=who))
            recs_c.append(charge(i, patient=who))
        p.produce(settings.topic("raw.encounter"), key=INST, value=seal("encounter", recs_e, key, "his-1", 1))
        p.produce(settings.topic("raw.prescription"), key=INST, value=seal("prescription", recs_rx, key, "his-1", 1))
        p.produce(settings.topic("raw.charge"), key=INST, value=seal("charge", recs_c, key, "his-1", 1))
        assert p.flush(30) == 0
        topics = ["std.records", "std.by_patient", "quality.issues", "rejected", "findings"]
        got = collect(settings, topics, lambda g: len(g["std.records"]) >= 3 and len(g["std.by_patient"]) >= 3, raw=True)
    finally:
        worker.stop()
    blobs = [v for t in topics for v in got[t]] + [worker.log_path.read_bytes()]
    assert sum(len(b) for b in blobs) > 1000  # the scan saw real traffic
    for name, certno, _ in PEOPLE:
        for blob in blobs:
            assert name.encode() not in blob, name
            assert certno.encode() not in blob, certno
            assert certno[:17].encode() not in blob  # nor the ID body without its check digit
