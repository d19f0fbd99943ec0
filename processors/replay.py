"""Re-process raw envelopes: after a code mapping arrives (re-standardize) or after a fix that makes
rejected envelopes acceptable (a key was added, a schema published).

Replay reads the raw topics with a plain consumer (no consumer group offsets are touched), runs the
same :class:`Pipeline`, and publishes standardized records, quality issues and the patient
repartition again. Outputs carry deterministic ids and the source's lineage, so the sink replaces the
earlier rows instead of adding new ones; sequence-gap state is not touched (replay is not new traffic).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from confluent_kafka import TopicPartition

from yijian.config import Settings
from yijian.kafka import consumer, producer, read_to_end
from yijian.processors.contracts import Lineage, decode_batch, encode_batch
from yijian.processors.partitioning import partition_of
from yijian.processors.pipeline import Pipeline

RAW = ("raw.encounter", "raw.prescription", "raw.charge")


@dataclass
class ReplayReport:
    envelopes: int = 0
    records: int = 0
    rejected_again: dict[str, int] = field(default_factory=dict)
    quality_issues: int = 0


class Replayer:
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.producer = producer(settings)
        self.consumer = consumer(settings, group_id=f"replay-{time.time_ns()}", **{"enable.auto.commit": False})

    def close(self) -> None:
        self.consumer.close()
        if self.producer.flush(60):
            raise RuntimeError("replay outputs not acknowledged by Kafka within 60 s")

    def _emit(self, value: bytes, lineage: Lineage, received: datetime, report: ReplayReport) -> None:
        out = self.pipeline.process(value, lineage, received, None)
        report.envelopes += 1
        for r in out.rejected:
            report.rejected_again[r.reason] = report.rejected_again.get(r.reason, 0) + 1
        key = out.institution_code.encode()
        if out.std:
            report.records += len(out.std)
            self.producer.produce(self.settings.topic("std.records"), key=key, value=encode_batch("std", out.std))
            by_partition: dict[int, list] = {}
            for rec in out.std:
                by_partition.setdefault(partition_of(rec["patient"]["pseudonym"], self.settings.topic_partitions), []).append(rec)
            for partition, recs in by_partition.items():
                self.producer.produce(self.settings.topic("std.by_patient"), key=b"patients", value=encode_batch("std", recs), partition=partition)
        if out.quality:
            report.quality_issues += len(out.quality)
            self.producer.produce(self.settings.topic("quality.issues"), key=key, value=encode_batch("quality", out.quality))
        self.producer.poll(0)

    def replay_since(self, since: datetime, topics: tuple[str, ...] = RAW, progress: Callable[[int], None] | None = None) -> ReplayReport:
        """Every envelope received at or after ``since`` on ``topics``, up to their current end."""
        report = ReplayReport()
        ms = int(since.timestamp() * 1000)
        wanted = []
        ends: dict[tuple[str, int], int] = {}
        for name in topics:
            topic = self.settings.topic(name)
            md = self.consumer.list_topics(topic, timeout=10).topics[topic]
            for p in md.partitions:
                wanted.append(TopicPartition(topic, p, ms))
        starts = self.consumer.offsets_for_times(wanted, timeout=30)
        assign = []
        for tp in starts:
            lo, hi = self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            start = tp.offset if tp.offset >= 0 else hi
            if start < hi:
                ends[(tp.topic, tp.partition)] = hi
                assign.append(TopicPartition(tp.topic, tp.partition, start))
        self.consumer.assign(assign)
        while ends:
            for msg in self.consumer.consume(500, timeout=1.0):
                if msg.error():
                    continue
                tk = (msg.topic(), msg.partition())
                if tk not in ends:
                    continue
                received = datetime.fromtimestamp(msg.timestamp()[1] / 1000, tz=timezone.utc)
                self._emit(msg.value(), Lineage(topic=msg.topic(), partition=msg.partition(), offset=msg.offset()), received, report)
                if progress:
                    progress(report.envelopes)
                if msg.offset() + 1 >= ends[tk]:
                    del ends[tk]
        return report

    def replay_rejected(self, reasons: set[str] | None = None, progress: Callable[[int], None] | None = None) -> ReplayReport:
        """Re-process the original envelope of every rejection (optionally only some reasons)."""
        pointers: dict[tuple[str, int, int], None] = {}

        def note(msg) -> None:
            for r in decode_batch(msg.value())[1]:
                if reasons is None or r["reason"] in reasons:
                    lin = r["lineage"]
                    pointers[(lin["topic"], lin["partition"], lin["offset"])] = None

        read_to_end(self.settings, self.settings.topic("rejected"), note, timeout=120)
        report = ReplayReport()
        for topic, partition, offset in pointers:
            self.consumer.assign([TopicPartition(topic, partition, offset)])
            for _ in range(20):
                msgs = self.consumer.consume(1, timeout=1.0)
                if msgs and not msgs[0].error():
                    m = msgs[0]
                    received = datetime.fromtimestamp(m.timestamp()[1] / 1000, tz=timezone.utc)
                    self._emit(m.value(), Lineage(topic=topic, partition=partition, offset=offset), received, report)
                    break
            if progress:
                progress(report.envelopes)
        return report
