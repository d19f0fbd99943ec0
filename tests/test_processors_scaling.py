"""Two replicas share the raw partitions; one is killed with -9 mid-stream: nothing is lost, and what is
processed twice carries the same deterministic ids (the sink deduplicates)."""

from __future__ import annotations

import time

from yijian.deploy.local import Supervisor, Worker, collect
from yijian.kafka import producer
from yijian.keyring import KeyRing, save_keyring
from yijian.producers.envelope import seal
from yijian.producers.examples import recent_charge as charge


def _metric(worker: Worker, name: str) -> float:
    _, body = worker.get("/metrics")
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.decode().splitlines() if l.startswith(name + "{") or l.startswith(name + " "))


def test_two_workers_share_partitions_and_a_kill9_loses_nothing(settings):
    institutions = [f"H52010{i:06d}" for i in range(12)]
    ring = KeyRing()
    keys = {inst: ring.new(inst) for inst in institutions}
    save_keyring(settings, ring)
    w1 = Worker(settings, name="w1", YIJIAN_STALL_AFTER_S="20")
    w2 = Worker(settings, name="w2", loglevel="info", YIJIAN_STALL_AFTER_S="20")
    p = producer(settings)
    sent: set[str] = set()
    seq = {inst: 1 for inst in institutions}

    def send(rounds: int) -> None:
        for _ in range(rounds):
            for inst in institutions:
                recs = [charge(len(sent) + j, inst=inst) for j in range(5)]
                sent.update(f"{inst}/{r.record_id}" for r in recs)
                p.produce(settings.topic("raw.charge"), key=inst, value=seal("charge", recs, keys[inst], "his-1", seq[inst]))
                seq[inst] += len(recs)
        assert p.flush(30) == 0

    try:
        import json

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # the group has settled: both replicas own partitions
            shares = [json.loads(w.get("/health")[1])["partitions_assigned"] for w in (w1, w2)]
            if all(shares):
                break
            time.sleep(0.5)
        assert all(shares), shares
        send(4)
        collect(settings, ["std.records"], lambda g: len(g["std.records"]) >= len(sent) // 2)
        assert _metric(w1, "yijian_envelopes_total") > 0 and _metric(w2, "yijian_envelopes_total") > 0, "both replicas take a share"
        w1.kill9()
        # as in production, a liveness probe restarts a replica that reports a stalled partition
        supervisor = Supervisor([w2], interval=2).start()
        send(4)
        got = collect(settings, ["std.records", "quality.issues"], lambda g: {f"{r['institution_code']}/{r['record_id']}" for r in g["std.records"]} >= sent, timeout=120)
        seen = [f"{r['institution_code']}/{r['record_id']}" for r in got["std.records"]]
        missing = sent - set(seen)
        if missing:  # diagnostics: where were the missing records, and what did each worker do
            print("MISSING", sorted(missing))
            for w in (w1, w2):
                print(w.log_path, w.log_path.read_text(errors="replace")[-3000:])
        assert set(seen) == sent  # nothing lost
        # re-processing repeats the same records with the same ids, never new ones
        assert len(seen) >= len(sent)
        assert not [q for q in got["quality.issues"] if q["code"] == "seq_gap"], "no false gap after failover"
        supervisor.stop()
    finally:
        w2.stop()
        w1.stop()


def test_stall_watch_reports_only_partitions_with_waiting_messages_and_no_progress():
    from yijian.processors.watchdog import StallWatch

    w = StallWatch(stall_after=10)
    owned = {("raw.charge", 0): 8, ("raw.charge", 1): 5}
    assert w.stalled(owned, now=0) == {}  # clocks start
    w.processed("raw.charge", 1, 4, now=5)  # partition 1 is fully processed (next offset 5)
    stalled = w.stalled(owned, now=11)
    assert set(stalled) == {"raw.charge:0"} and stalled["raw.charge:0"]["waiting"] == 8
    w.processed("raw.charge", 0, 7, now=12)  # progress clears it
    assert w.stalled(owned, now=13) == {}
    assert w.stalled({("raw.charge", 1): 9}, now=30) == {"raw.charge:1": {"waiting": 4, "idle_seconds": 25.0}}
    assert ("raw.charge", 0) not in w.progress  # revoked partitions are forgotten
    # messages queued behind other partitions' backlog: not stalled while Faust fetches the partition
    # and the replica keeps processing; stalled once Faust stops fetching it (paused partition)
    w2 = StallWatch(stall_after=10)
    owned2 = {("raw.control", 0): 5, ("raw.charge", 0): 900}
    w2.stalled(owned2, now=0)
    for t in range(1, 30):
        w2.processed("raw.charge", 0, t * 10, now=t)
    both = {("raw.control", 0), ("raw.charge", 0)}
    assert w2.stalled(owned2, now=29.5, fetching=both) == {}
    assert set(w2.stalled(owned2, now=29.5, fetching={("raw.charge", 0)})) == {"raw.control:0"}
    assert set(w2.stalled(owned2, now=45, fetching=both)) == {"raw.control:0", "raw.charge:0"}  # replica idle
    # a partition whose highwater is not known yet (no fetch response) is neither stalled nor an error
    assert w.stalled({("raw.charge", 1): 9, ("raw.encounter", 0): None}, now=31) == {"raw.charge:1": {"waiting": 4, "idle_seconds": 26.0}}


def test_connection_status_never_connected_only_after_the_silence_window():
    from datetime import datetime, timedelta, timezone

    from yijian.processors.control import connection_issues

    t0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    state: dict = {}
    window = timedelta(minutes=10)
    assert connection_issues(state, ["H52010100001"], t0, window) == []  # just registered: pending
    assert connection_issues(state, ["H52010100001"], t0 + timedelta(minutes=5), window) == []
    late = connection_issues(state, ["H52010100001"], t0 + timedelta(minutes=11), window)
    assert [i.code for i in late] == ["never_connected"]
    assert connection_issues(state, ["H52010100001"], t0 + timedelta(minutes=12), window) == []  # once per hour
