"""HospitalProducer against the real broker: round trip, corrections, outage, kill -9, feedback."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from yijian.kafka import consumer
from yijian.keyring import KeyRing, save_keyring
from yijian.producers import examples
from yijian.producers.envelope import EnvelopeRejected, open_envelope, read_header, seal
from yijian.producers.feedback import FeedbackListener
from yijian.producers.producer import HospitalProducer
from yijian.schemas.codec import encode_records
from yijian.schemas.models import Feedback

A, B = "H52010100001", "H52030200002"
pytestmark = pytest.mark.kafka


@pytest.fixture
def ring():
    r = KeyRing()
    r.new(A)
    r.new(B)
    return r


def read_topic(settings, logical: str, want_records: int, bound_s: float = 30.0) -> list:
    """Every message of a topic (raw values), until ``want_records`` records were seen (bounded wait)."""
    c = consumer(settings, f"test-{os.urandom(4).hex()}")
    c.subscribe([settings.topic(logical)])
    out, seen = [], 0
    deadline = time.monotonic() + bound_s
    try:
        while seen < want_records and time.monotonic() < deadline:
            for msg in c.consume(100, 0.5):
                if msg.error():
                    continue
                out.append(msg)
                seen += read_header(msg.value())["record_count"]
        # anything beyond (duplicates) that is already there
        for msg in c.consume(100, 1.0):
            if not msg.error():
                out.append(msg)
    finally:
        c.close()
    return out


def opened(msgs, ring):
    return [open_envelope(m.value(), ring) for m in msgs]


def test_round_trip_batches_corrections_byte_identical(settings, ring):
    s = settings.model_copy(update={"batch_max_records": 40, "linger_ms": 5})
    encs = [examples.encounter(A, i) for i in range(150)]
    with HospitalProducer(s, A, keyring=ring, heartbeats=False) as p:
        futs = [p.send(e) for e in encs[:100]]
        futs += p.send_many(encs[100:], "encounter")
        corrected = p.correct(encs[3], dept_name="外科")
        cancelled = p.cancel(encs[4])
        rx = p.send(examples.prescription(A, 1))
        assert p.flush(60) == 0
        assert [f.result(0) for f in futs] == list(range(1, 151))
        assert (corrected.result(0), cancelled.result(0), rx.result(0)) == (151, 152, 1)
        st = p.stats()
        assert st["sent"] == st["queued"] == 153 and st["pending"] == 0
    msgs = read_topic(s, "raw.encounter", 152)
    assert all(m.key() == A.encode() for m in msgs) and len({m.partition() for m in msgs}) == 1
    envs = opened(msgs, ring)
    assert max(e.header["record_count"] for e in envs) <= 40 and len(envs) >= 4  # batched
    seqs, records = [], []
    for e in envs:
        seqs += range(e.header["first_seq"], e.header["first_seq"] + e.header["record_count"])
        records += e.records
    assert seqs == list(range(1, 153))
    # byte-identical: every decrypted record re-encodes to exactly the bytes of what was sent
    for sent, got in zip(encs, records[:150]):
        assert encode_records("encounter", [got]) == encode_records("encounter", [sent])
    assert (records[150]["record_id"], records[150]["version"], records[150]["status"], records[150]["dept_name"]) == (encs[3].record_id, 2, "corrected", "外科")
    assert (records[151]["record_id"], records[151]["version"], records[151]["status"]) == (encs[4].record_id, 2, "cancelled")
    rx_env = opened(read_topic(s, "raw.prescription", 1), ring)
    assert rx_env[0].records[0]["items"][0]["det_item_fee_sumamt"] == Decimal("12.80")

    # the same envelopes are refused with a revoked or foreign key ring, and when tampered
    value = msgs[0].value()
    with pytest.raises(EnvelopeRejected) as exc:
        open_envelope(value, ring.subset(B))
    assert exc.value.reason == "unknown_key"
    other = KeyRing()
    other.new(A)
    with pytest.raises(EnvelopeRejected) as exc:
        open_envelope(value, other)
    assert exc.value.reason == "bad_tag"
    with pytest.raises(EnvelopeRejected) as exc:
        open_envelope(value[:-20] + bytes([value[-20] ^ 1]) + value[-19:], ring)
    assert exc.value.reason == "bad_tag"
    ring.revoke(f"{A}.v1")
    with pytest.raises(EnvelopeRejected) as exc:
        open_envelope(value, ring)
    assert exc.value.reason == "revoked_key"


def test_validation_errors_queue_nothing(settings, ring):
    from pydantic import ValidationError

    with HospitalProducer(settings, A, keyring=ring, heartbeats=False) as p:
        bad = examples.encounter(A, 1).model_dump()
        bad["med_type"] = "spa"
        with pytest.raises(ValidationError):
            p.send_many([examples.encounter(A, 0).model_dump(), bad], "encounter")
        with pytest.raises(ValueError, match="机构编码"):
            p.send(examples.encounter(B, 1))
        assert p.stats()["queued"] == 0 and p.outbox.next_seq("encounter") == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_broker_outage_records_wait_on_disk_then_go_in_order(settings, ring, tmp_path):
    outbox = tmp_path / "outbox.sqlite"
    dead = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{_free_port()}", "outbox_path": outbox, "delivery_timeout_ms": 1000})
    p = HospitalProducer(dead, A, keyring=ring, heartbeats=False)
    futs = [p.send(examples.charge(A, i)) for i in range(30)]
    assert p.flush(1.5) == 30
    assert p.close(0.5) == 30
    assert not any(f.done() for f in futs)
    live = settings.model_copy(update={"outbox_path": outbox})
    with HospitalProducer(live, A, keyring=ring, heartbeats=False) as p2:
        assert p2.stats()["pending"] == 30
        later = p2.send(examples.charge(A, 30))
        assert p2.flush(60) == 0
        assert later.result(0) == 31
    envs = opened(read_topic(settings, "raw.charge", 31), ring)
    seqs = [s for e in envs for s in range(e.header["first_seq"], e.header["first_seq"] + e.header["record_count"])]
    assert seqs == list(range(1, 32))
    assert [r["record_id"] for e in envs for r in e.records] == [f"C{i:08d}" for i in range(31)]


CHILD = r"""
import sys
from yijian.config import Settings
from yijian.producers import examples
from yijian.producers.producer import HospitalProducer
p = HospitalProducer(Settings(), "H52010100001", heartbeats=False)
i = 0
while True:
    seq = p.send(examples.encounter("H52010100001", i)).seq
    print(i, seq, flush=True)
    i += 1
"""


def test_killed_producer_resumes_without_gap_or_loss(settings, ring, tmp_path):
    save_keyring(settings, ring)
    env = {
        **os.environ,
        "YIJIAN_HOME": str(settings.home),
        "YIJIAN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "YIJIAN_TOPIC_PREFIX": settings.topic_prefix,
        "YIJIAN_LINGER_MS": "5",
        "YIJIAN_BATCH_MAX_RECORDS": "50",
        "YIJIAN_ENV_FILE": str(tmp_path / "none.env"),
    }
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    acknowledged = {}
    try:
        for line in child.stdout:
            i, seq = map(int, line.split())
            acknowledged[i] = seq
            if len(acknowledged) >= 400:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    for line in child.stdout.read().splitlines():  # what it acknowledged before the kill landed
        if len(line.split()) == 2:
            i, seq = map(int, line.split())
            acknowledged[i] = seq
    assert len(acknowledged) >= 400 and list(acknowledged.values())[:400] == list(range(1, 401))
    s = settings.model_copy(update={"linger_ms": 5})
    with HospitalProducer(s, A, keyring=ring, heartbeats=False) as p:
        first_new = p.outbox.next_seq("encounter")
        # numbering continues after the kill (a record stored just before the kill may not have been printed)
        assert first_new > max(acknowledged.values())
        futs = [p.send(examples.encounter(A, 100_000 + i)) for i in range(20)]
        assert p.flush(60) == 0
        assert [f.result(0) for f in futs] == list(range(first_new, first_new + 20))
    total = first_new + 19
    envs = opened(read_topic(settings, "raw.encounter", total), ring)
    by_seq: dict[int, list] = {}
    for e in envs:
        for k, r in enumerate(e.records):
            by_seq.setdefault(e.header["first_seq"] + k, []).append(r["record_id"])
    assert sorted(by_seq) == list(range(1, total + 1))  # no gap, nothing lost
    for i, seq in acknowledged.items():
        assert set(by_seq[seq]) == {f"E{i:08d}"}  # each acknowledged record is there under its number
    duplicates = sum(len(v) - 1 for v in by_seq.values())
    assert duplicates <= 16 * 50  # at most what was in flight at the kill is sent twice


def test_heartbeat_and_manifest_on_control_topic(settings, ring):
    s = settings.model_copy(update={"heartbeat_interval_s": 0.2, "linger_ms": 1})
    day = date(2026, 11, 2)
    with HospitalProducer(s, A, keyring=ring) as p:
        encs = [examples.encounter(A, i) for i in range(5)]
        p.send_many(encs, "encounter")
        p.cancel(encs[0])
        p.send_many([examples.charge(A, i) for i in range(3)], "charge")
        p.send(examples.encounter(A, 9, when=datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)))  # next day
        assert p.flush(30) == 0
        m = p.send_manifest(day)
        deadline = time.monotonic() + 10
        while p.outbox.next_seq("heartbeat") == 1 and time.monotonic() < deadline:  # the periodic heartbeat
            time.sleep(0.05)
        assert p.flush(30) == 0 and m.done()
        sent = p.outbox.last_sent_seq()
        n_control = sent.get("heartbeat", 0) + sent["manifest"]
    assert sent.get("heartbeat", 0) >= 1
    envs = opened(read_topic(s, "raw.control", n_control), ring)
    kinds = {e.record_type for e in envs}
    assert kinds == {"heartbeat", "manifest"}
    hb = next(e for e in envs if e.record_type == "heartbeat").records[0]
    assert hb["institution_code"] == A and hb["producer_id"] == "his-1"
    man = next(e for e in envs if e.record_type == "manifest").records[0]
    entries = {x["record_type"]: x for x in man["entries"]}
    assert man["business_date"] == day
    # 5 encounters + 1 cancellation that day: 6 submissions; the amount sums the same 6 submissions
    cancelled_amount = encs[0].medfee_sumamt
    assert (entries["encounter"]["record_count"], entries["encounter"]["amount_sum"]) == (6, sum(e.medfee_sumamt for e in encs) + cancelled_amount)
    assert (entries["encounter"]["first_seq"], entries["encounter"]["last_seq"]) == (1, 6)
    assert (entries["charge"]["record_count"], entries["charge"]["amount_sum"]) == (3, Decimal("30.00"))
    assert entries["prescription"] == {"record_type": "prescription", "record_count": 0, "amount_sum": Decimal("0.00"), "first_seq": 0, "last_seq": 0}


def test_feedback_listener_round_trip(settings, ring):
    from confluent_kafka import Producer

    now = datetime.now(timezone.utc)

    def fb(inst, fid):
        return Feedback(
            feedback_id=fid, kind="finding", institution_code=inst, record_type="prescription", record_id="RX1",
            record_version=1, code="RX-7DAY", code_version=1, name="处方超7日用量", severity="预警", result_type="可疑",
            message="处方用药天数超过7日 / prescription exceeds 7 days", vola_amt=Decimal("12.80"), created_time=now,
        )

    platform = Producer(settings.kafka_client_config())
    for inst, fid in ((B, "fb-for-b"), (A, "fb-for-a")):
        platform.produce(settings.topic("feedback"), key=inst.encode(), value=seal("feedback", [fb(inst, fid)], ring.active(inst), "platform", 1))
    assert platform.flush(10) == 0

    hospital_ring = ring.subset(A)  # the hospital holds only its own keys
    with HospitalProducer(settings, A, keyring=hospital_ring, heartbeats=False) as p:
        listener = FeedbackListener(p)
        got = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            got = listener.poll(1.0)
        assert [f.feedback_id for f in got] == ["fb-for-a"] and got[0].severity == "预警"
        assert listener.rejected == []  # B's envelope was skipped, not tried
        ack = listener.acknowledge("fb-for-a", handler_code="staff01")
        with pytest.raises(ValueError):
            listener.explain("fb-for-a", reason=" ", handler_code="staff01")
        assert p.flush(30) == 0 and ack.result(0) == 1
        listener.close()
    handled = opened(read_topic(settings, "feedback.handling", 1), ring)
    rec = handled[0].records[0]
    assert (handled[0].record_type, rec["feedback_id"], rec["dspo_way"], rec["institution_code"]) == ("feedback_handling", "fb-for-a", "acknowledge", A)
