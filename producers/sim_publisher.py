"""Publish a simulated province (producers/simulator.py) to Kafka, as its hospitals' SDKs would.

Uses the SDK's own parts — each institution's key from the key ring, :func:`envelope.seal`, the
idempotent acks=all producer keyed by institution — but numbers records itself with the simulator's
sequence numbers, so that injected gaps (records numbered but never sent) reach the platform the way
a faulty HIS would produce them. Records of one institution and type travel in envelopes of up to
``batch_max`` consecutive records; after the traffic, every institution sends a heartbeat and a daily
manifest declaring what it *generated* (so missing records show in the reconciliation).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable

from yijian.config import Settings
from yijian.kafka import producer as kafka_producer
from yijian.keyring import KeyRing
from yijian.producers.envelope import seal
from yijian.producers.simulator import SimResult
from yijian.schemas.models import DailyManifest, Heartbeat, ManifestEntry, business_amount, business_date

PRODUCER_ID = "his-sim"


@dataclass
class PublishReport:
    records_sent: int = 0
    records_skipped: int = 0
    envelopes: int = 0
    control_envelopes: int = 0
    seconds: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)


def publish_simulation(
    settings: Settings,
    res: SimResult,
    keyring: KeyRing,
    *,
    rate: float | None = None,
    batch_max: int = 200,
    progress: Callable[[int], None] | None = None,
    manifests: bool = True,
) -> PublishReport:
    """Send every non-skipped record in emit order (``rate``: records/s, None = as fast as possible)."""
    report = PublishReport()
    p = kafka_producer(settings, **{"linger.ms": 10, "compression.type": "none"})
    open_batch: dict[tuple[str, str], list] = {}
    next_seq: dict[tuple[str, str], int] = {}
    first_seq: dict[tuple[str, str], int] = {}
    declared: dict[tuple[str, str, str], list] = defaultdict(lambda: [0, Decimal("0"), 0, 0])  # count, amount, first, last
    t0 = time.monotonic()

    def flush(key: tuple[str, str]) -> None:
        recs = open_batch.pop(key, None)
        if not recs:
            return
        inst, rtype = key
        value = seal(rtype, recs, keyring.active(inst), PRODUCER_ID, first_seq[key])
        p.produce(settings.topic(f"raw.{rtype}"), key=inst, value=value)
        report.envelopes += 1
        p.poll(0)

    for ev in res.iter_timed():
        key = (ev.institution_code, ev.record_type)
        day = business_date(ev.record_type, ev.record).isoformat()
        d = declared[(ev.institution_code, ev.record_type, day)]
        d[0] += 1
        d[1] += business_amount(ev.record_type, ev.record)
        d[2] = d[2] or ev.seq
        d[3] = ev.seq
        if ev.skip:
            flush(key)  # a gap: the next envelope starts after it
            report.records_skipped += 1
            continue
        if key in open_batch and next_seq.get(key) != ev.seq:
            flush(key)
        if key not in open_batch:
            open_batch[key] = []
            first_seq[key] = ev.seq
        open_batch[key].append(ev.record)
        next_seq[key] = ev.seq + 1
        report.records_sent += 1
        report.by_type[ev.record_type] = report.by_type.get(ev.record_type, 0) + 1
        if len(open_batch[key]) >= batch_max:
            flush(key)
        if rate:
            ahead = report.records_sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                for k in list(open_batch):  # records waiting while we pace go out now (linger)
                    flush(k)
                time.sleep(ahead)
        if progress and report.records_sent % 500 == 0:
            progress(report.records_sent)
    for key in list(open_batch):
        flush(key)
    if manifests:
        now = datetime.now(timezone.utc)
        control_seq: dict[str, int] = defaultdict(lambda: 1)
        by_inst_day: dict[tuple[str, str], list[ManifestEntry]] = defaultdict(list)
        for (inst, rtype, day), (count, amount, first, last) in sorted(declared.items()):
            by_inst_day[(inst, day)].append(ManifestEntry(record_type=rtype, record_count=count, amount_sum=amount, first_seq=first, last_seq=last))
        for inst in sorted({k[0] for k in declared}):
            hb = Heartbeat(institution_code=inst, producer_id=PRODUCER_ID, sent_time=now, outbox_depth=0,
                           last_seq={rt: s - 1 for (i, rt), s in next_seq.items() if i == inst}, sdk_version="sim")
            items: list = [("heartbeat", hb)]
            for (i, day), entries in sorted(by_inst_day.items()):
                if i == inst:
                    items.append(("manifest", DailyManifest(institution_code=inst, producer_id=PRODUCER_ID,
                                                            business_date=datetime.fromisoformat(day).date(), entries=entries, sent_time=now)))
            for rtype, rec in items:
                value = seal(rtype, [rec], keyring.active(inst), PRODUCER_ID, control_seq[inst])
                control_seq[inst] += 1
                p.produce(settings.topic("raw.control"), key=inst, value=value)
                report.control_envelopes += 1
            p.poll(0)
    if p.flush(120):
        raise RuntimeError("Kafka did not acknowledge every simulated envelope within 120 s")
    if progress:
        progress(report.records_sent)
    report.seconds = time.monotonic() - t0
    return report

