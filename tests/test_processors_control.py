"""Per-institution checks and feedback, on the real broker with a real worker."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from yijian.producers.examples import INST, recent_charge as charge, recent_encounter as encounter, recent_prescription as prescription
from yijian.deploy.local import Worker, collect
from yijian.kafka import producer
from yijian.keyring import KeyRing, save_keyring
from yijian.producers.envelope import open_envelope, seal
from yijian.schemas.models import DailyManifest, Feedback, Heartbeat, ManifestEntry

FAST = dict(YIJIAN_CONTROL_INTERVAL_S="1", YIJIAN_SILENT_AFTER_MINUTES="0.05", YIJIAN_ORPHAN_GRACE_MINUTES="0.05", YIJIAN_MANIFEST_GRACE_S="1")


def test_feedback_heartbeat_manifest_orphans_and_connection(settings):
    ring = KeyRing()
    key = ring.new(INST)
    save_keyring(settings, ring)
    worker = Worker(settings, **FAST)
    try:
        p = producer(settings)
        now = datetime.now(timezone.utc)
        hb = Heartbeat(institution_code=INST, producer_id="his-1", sent_time=now, outbox_depth=0, last_seq={"encounter": 2}, sdk_version="0.1.0")
        p.produce(settings.topic("raw.control"), key=INST, value=seal("heartbeat", [hb], key, "his-1", 1))
        e1, e2 = encounter(1), encounter(2)
        p.produce(settings.topic("raw.encounter"), key=INST, value=seal("encounter", [e1, e2], key, "his-1", 1))
        # a prescription for an encounter that never arrives (E77)
        p.produce(settings.topic("raw.prescription"), key=INST, value=seal("prescription", [prescription(77)], key, "his-1", 1))
        assert p.flush(30) == 0
        # manifest declares 3 encounters for today but only 2 were sent
        day = e1.begntime.astimezone(timezone(timedelta(hours=8))).date()
        total = e1.medfee_sumamt + e2.medfee_sumamt
        manifest = DailyManifest(
            institution_code=INST, producer_id="his-1", business_date=day, sent_time=now,
            entries=[ManifestEntry(record_type="encounter", record_count=3, amount_sum=total + Decimal("9"), first_seq=1, last_seq=3)],
        )
        collect(settings, ["std.records"], lambda g: len(g["std.records"]) >= 3)
        p.produce(settings.topic("raw.control"), key=INST, value=seal("manifest", [manifest], key, "his-1", 2))
        assert p.flush(30) == 0

        def done(g):
            codes = {q["code"] for q in g["quality.issues"]}
            return {"manifest_mismatch", "encounter_missing", "silent"} <= codes

        got = collect(settings, ["quality.issues"], done, timeout=60)
        by_code = {q["code"]: q for q in got["quality.issues"]}
        m = by_code["manifest_mismatch"]
        assert m["details"]["declared_count"] == 3 and m["details"]["received_count"] == 2
        assert m["details"]["received_amount"] == str(total)
        assert by_code["encounter_missing"]["record_id"] == "RX77"
        assert by_code["silent"]["dimension"] == "connection"

        # feedback: encrypted with the institution's key, readable by it, not by another key
        fb = collect(settings, ["feedback"], lambda g: len(g["feedback"]) >= 2, raw=True)["feedback"]
        items = []
        for value in fb:
            opened = open_envelope(value, ring)
            assert opened.header["institution_code"] == INST and opened.record_type == "feedback"
            items += [Feedback.model_validate(r) for r in opened.records]
        assert {"manifest_mismatch", "encounter_missing", "unmapped_code"} <= {i.code for i in items}
        other = KeyRing()
        other.new(INST)
        try:
            open_envelope(fb[0], other)
            raise AssertionError("another key ring opened the feedback")
        except Exception as exc:
            assert getattr(exc, "reason", "") in ("unknown_key", "bad_tag")

        status, body = worker.get("/metrics")
        text = body.decode()
        assert status == 200 and "yijian_records_in_total" in text and 'record_type="encounter"' in text
        status, body = worker.get("/health")
        assert json.loads(body)["status"] == "ok"
    finally:
        worker.stop()


def test_revocation_on_keys_topic_takes_effect_without_restart(settings):
    ring = KeyRing()
    key = ring.new(INST)
    save_keyring(settings, ring)
    worker = Worker(settings)
    try:
        p = producer(settings)
        p.produce(settings.topic("raw.charge"), key=INST, value=seal("charge", [charge(1)], key, "his-1", 1))
        assert p.flush(30) == 0
        collect(settings, ["std.records"], lambda g: len(g["std.records"]) >= 1)
        revoked = ring.revoke(key.key_id)
        save_keyring(settings, ring)
        p.produce(settings.topic("keys"), key=key.key_id, value=json.dumps({"key_id": key.key_id, "status": "revoked", "revoked_at": revoked.revoked_at.isoformat()}).encode())
        assert p.flush(30) == 0
        import time

        time.sleep(3)  # the keys agent applies the event; ordering across topics is not guaranteed
        p.produce(settings.topic("raw.charge"), key=INST, value=seal("charge", [charge(2)], key, "his-1", 2))
        assert p.flush(30) == 0
        got = collect(settings, ["rejected", "std.records"], lambda g: len(g["rejected"]) >= 1)
        assert [r["reason"] for r in got["rejected"]] == ["revoked_key"]
        assert [r["record_id"] for r in got["std.records"]] == ["C1"]
    finally:
        worker.stop()


def test_rules_deployed_while_worker_runs_fire_without_restart_and_carry_versions(settings):
    """A pack deployed to the rules topic reaches a running worker; stateful rules see patients across institutions."""
    from yijian.rules.deployment import publish
    from yijian.rules.model import PACKS_DIR, load_pack

    other = "H52030200007"
    ring = KeyRing()
    key, key2 = ring.new(INST), ring.new(other)
    save_keyring(settings, ring)
    worker = Worker(settings)
    try:
        p = producer(settings)
        # before any pack is deployed: a prescription with 6 drugs (处方 ≤ 5 种) gives no finding
        rx = prescription(1)
        six = rx.model_copy(update={"record_id": "RX6", "items": [rx.items[0].model_copy(update={"item_no": i}) for i in range(1, 7)]})
        p.produce(settings.topic("raw.prescription"), key=INST, value=seal("prescription", [six], key, "his-1", 1))
        assert p.flush(30) == 0
        collect(settings, ["std.records"], lambda g: len(g["std.records"]) >= 1)
        pack = load_pack(PACKS_DIR / "prescription.yaml")
        publish(settings, pack)
        import time

        time.sleep(3)
        seven = six.model_copy(update={"record_id": "RX7"})
        p.produce(settings.topic("raw.prescription"), key=INST, value=seal("prescription", [seven], key, "his-1", 2))
        assert p.flush(30) == 0
        got = collect(settings, ["findings"], lambda g: any(f["record_id"] == "RX7" for f in g["findings"]), timeout=60)
        hits = [f for f in got["findings"] if f["record_id"] == "RX7"]
        assert hits and all(f["pack_version"] == f"{pack.id}@{pack.version}" for f in hits)
        assert all(f["rule_version"] >= 1 and f["basis"] for f in hits)
        assert not [f for f in got["findings"] if f["record_id"] == "RX6"]  # evaluated before the deploy
        # health shows the rules in force
        status, body = worker.get("/health")
        assert json.loads(body)["rules"] == len(pack.rules)
    finally:
        worker.stop()


def test_hospital_handling_of_a_finding_reaches_clickhouse(settings):
    """SDK → feedback.handling (encrypted) → processors (verify, decrypt) → handling.records → sink → finding_handling."""
    import time

    from yijian.producers.producer import HospitalProducer
    from yijian.schemas.models import FeedbackHandling
    from yijian.sinks.sink import ClickHouseSink

    ring = KeyRing()
    ring.new(INST)
    save_keyring(settings, ring)
    worker = Worker(settings)
    try:
        with HospitalProducer(settings, INST, keyring=ring, heartbeats=False) as hospital:
            hospital.handle_feedback(FeedbackHandling(
                feedback_id="F-0001", institution_code=INST, dspo_way="explain", dspo_way_rea="急诊抢救，已补录说明",
                handler_code="D520102000001", handled_time=datetime.now(timezone.utc),
            ))
            assert hospital.flush(30) == 0
        got = collect(settings, ["handling.records"], lambda g: len(g["handling.records"]) >= 1)
        assert got["handling.records"][0]["feedback_id"] == "F-0001"
        sink = ClickHouseSink(settings)
        deadline = time.monotonic() + 60
        rows = []
        while time.monotonic() < deadline and not rows:
            sink.poll_once(timeout=0.5)
            sink.flush()
            rows = sink.client.query("SELECT dspo_way, dspo_way_rea, institution_code FROM finding_handling FINAL").result_rows
        sink.close()
        assert rows == [("explain", "急诊抢救，已补录说明", INST)]
    finally:
        worker.stop()


def test_reference_data_changed_while_running_and_replay_restandardizes(settings, tmp_path):
    """A code mapping published while the worker runs applies to new records at once; `replay`
    re-standardizes the records that arrived before it (same ids: the sink replaces them)."""
    import time

    from yijian.processors.pipeline import Pipeline
    from yijian.processors.refdata_state import publish, read_refdata, updates_from_csv
    from yijian.processors.replay import Replayer

    def code_map(rows: list[str]) -> list:
        path = tmp_path / "code_maps.csv"
        path.write_text("institution_code,kind,local_code,national_code\n" + "\n".join(rows) + "\n", encoding="utf-8")
        return updates_from_csv(path, "code_maps")

    ring = KeyRing()
    key = ring.new(INST)
    save_keyring(settings, ring)
    first = [f"{INST},department,NK01,A03"]
    publish(settings, code_map(first))
    worker = Worker(settings)
    try:
        p = producer(settings)
        started = datetime.now(timezone.utc)
        p.produce(settings.topic("raw.encounter"), key=INST, value=seal("encounter", [encounter(1)], key, "his-1", 1))
        assert p.flush(30) == 0
        got = collect(settings, ["std.records"], lambda g: len(g["std.records"]) >= 1)
        e1 = got["std.records"][0]
        assert e1["dept_std"] == "A03" and e1["diagnoses"][0]["icd_code"] is None and e1["meta"]["unmapped"] == ["diagnosis:LJ18.9"]

        publish(settings, code_map(first + [f"{INST},diagnosis,LJ18.9,J18.900"]))  # the mapping arrives
        time.sleep(3)
        p.produce(settings.topic("raw.encounter"), key=INST, value=seal("encounter", [encounter(2)], key, "his-1", 2))
        assert p.flush(30) == 0
        got = collect(settings, ["std.records"], lambda g: any(r["record_id"] == "E2" for r in g["std.records"]))
        e2 = next(r for r in got["std.records"] if r["record_id"] == "E2")
        assert e2["diagnoses"][0]["icd_code"] == "J18.900" and e2["meta"]["unmapped"] == []

        replayer = Replayer(settings, Pipeline(settings, ring, read_refdata(settings)))
        report = replayer.replay_since(started)
        replayer.close()
        assert report.envelopes == 2 and report.records == 2 and not report.rejected_again
        got = collect(settings, ["std.records"], lambda g: sum(r["record_id"] == "E1" for r in g["std.records"]) >= 2)
        e1_again = [r for r in got["std.records"] if r["record_id"] == "E1"][-1]
        assert e1_again["diagnoses"][0]["icd_code"] == "J18.900"
        assert (e1_again["version"], e1_again["meta"]["lineage"]) == (e1["version"], e1["meta"]["lineage"])  # same row for the sink
    finally:
        worker.stop()


def test_replay_rejected_after_the_missing_key_is_added(settings):
    from yijian.processors.pipeline import Pipeline
    from yijian.processors.replay import Replayer

    ring = KeyRing()
    ring.new(INST)
    save_keyring(settings, ring)
    late_inst = "H52060200004"
    other = KeyRing()
    late_key = other.new(late_inst)  # the platform does not know this institution's key yet
    worker = Worker(settings)
    try:
        p = producer(settings)
        p.produce(settings.topic("raw.charge"), key=late_inst, value=seal("charge", [charge(1, inst=late_inst)], late_key, "his-1", 1))
        assert p.flush(30) == 0
        got = collect(settings, ["rejected"], lambda g: len(g["rejected"]) >= 1)
        assert got["rejected"][0]["reason"] == "unknown_key" and got["rejected"][0]["institution_code"] == late_inst
    finally:
        worker.stop()
    ring.merge(other)  # the fix: the institution's key is registered
    replayer = Replayer(settings, Pipeline(settings, ring))
    report = replayer.replay_rejected({"unknown_key"})
    replayer.close()
    assert (report.envelopes, report.records, report.rejected_again) == (1, 1, {})
    got = collect(settings, ["std.records"], lambda g: len(g["std.records"]) >= 1)
    assert got["std.records"][0]["record_id"] == "C1" and got["std.records"][0]["meta"]["lineage"]["topic"] == settings.topic("raw.charge")
