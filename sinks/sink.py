"""The ClickHouse sink: internal topics → ClickHouse, batched, idempotent, never losing a record.

Loop (``poll_once``): consume JSON batches from std.records, quality.issues, findings, rejected and
handling.records; convert them to rows per table; flush when ``sink_batch_rows`` rows are buffered
or the oldest buffered message is ``sink_batch_seconds`` old. A flush inserts, per source
(topic, partition) and table, one Arrow block with the deterministic
``insert_deduplication_token = f"{topic}:{partition}:{first}-{last}"``, and only after every insert
was acknowledged it stores and commits the offsets.

When ClickHouse fails, the sink keeps the buffered block, pauses every assigned partition (memory
stays bounded: nothing new is fetched), and retries the very same blocks with exponential back-off
(same tokens, so a block that did land before the error is not counted twice); on success it
commits and resumes. A crash before the commit re-delivers the messages: identical blocks are
dropped by the token, differently cut ones collapse in ReplacingMergeTree (read with FINAL), and the
rollups count distinct ids, so nothing is double-counted.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from yijian.config import Settings
from yijian.sinks.convert import CONVERTERS, ArrowSchemas, undecodable_row

log = logging.getLogger("yijian.sink")

SOURCE_TOPICS = ("std.records", "quality.issues", "findings", "rejected", "handling.records")


@dataclass
class _Group:
    """Rows buffered from one (topic, partition): the unit of a dedup token and of a commit."""

    topic: str
    partition: int
    first: int
    last: int
    rows: dict[str, list[dict]] = field(default_factory=dict)
    count: int = 0


class SinkMetrics:
    """Prometheus metrics of one sink (own registry, so several sinks can live in one process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.rows = Counter("yijian_sink_rows_written", "Rows written to ClickHouse", ["table"], registry=self.registry)
        self.batches = Counter("yijian_sink_batches", "Flushes acknowledged by ClickHouse", registry=self.registry)
        self.messages = Counter("yijian_sink_messages", "Kafka messages consumed", ["topic"], registry=self.registry)
        self.errors = Counter("yijian_sink_insert_errors", "Failed flush attempts", registry=self.registry)
        self.undecodable = Counter("yijian_sink_undecodable_messages", "Messages stored as rejected/sink_decode_error", registry=self.registry)
        self.buffered = Gauge("yijian_sink_buffered_rows", "Rows waiting for a flush", registry=self.registry)
        self.paused = Gauge("yijian_sink_paused", "1 while consumption is paused (ClickHouse unavailable or buffer full)", registry=self.registry)
        self.lag = Gauge("yijian_sink_lag", "Messages not yet committed (high watermark - committed)", ["topic"], registry=self.registry)
        self.last_error_time = Gauge("yijian_sink_last_error_timestamp", "Unix time of the last failed flush", registry=self.registry)
        self.last_flush_time = Gauge("yijian_sink_last_flush_timestamp", "Unix time of the last acknowledged flush", registry=self.registry)


class ClickHouseSink:
    """Consume the internal topics and write them to ClickHouse. Drive it with :meth:`run` or
    :meth:`poll_once` (tests, demo, benchmarks). ``client``: any clickhouse-connect client (default:
    ``make_client(settings)``); tests pass a wrapper that fails on purpose."""

    def __init__(self, settings: Settings, client=None, group_id: str | None = None, topics: tuple[str, ...] = SOURCE_TOPICS, migrate: bool = True):
        from yijian.kafka import consumer
        from yijian.sinks.client import make_client

        self.settings = settings
        self.db = settings.clickhouse_database
        self.client = client if client is not None else make_client(settings)
        if migrate:
            from yijian.sinks.migrate import migrate as run_migrations

            run_migrations(settings, client=getattr(self.client, "inner", self.client))
        self.schemas = ArrowSchemas(getattr(self.client, "inner", self.client), self.db)
        self.metrics = SinkMetrics()
        self.topics = [settings.topic(t) for t in topics]
        self.consumer = consumer(
            settings,
            group_id or settings.sink_group_id,
            **{"enable.auto.commit": False, "enable.auto.offset.store": False, "max.poll.interval.ms": 600000},
        )
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._groups: dict[tuple[str, int], _Group] = {}
        self._buffered = 0
        self._oldest: float | None = None
        self._paused = False
        self._repause = False
        self._retry_at = 0.0
        self._backoff = 0.5
        self._lag_at = 0.0
        self.last_error: str = ""
        self.written: dict[str, int] = {}
        self.committed_messages = 0
        self._committed: dict[tuple[str, int], int] = {}
        self.lag: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- Kafka callbacks ----------------------------------------------------------------------------
    def _on_assign(self, consumer, partitions) -> None:
        if self._paused:
            self._repause = True

    def _on_revoke(self, consumer, partitions) -> None:
        # Flush what we can; whatever is not acknowledged is dropped from the buffer and will be
        # re-delivered to the partition's next owner (offsets were not committed).
        if self._groups and not self._paused:
            self.flush()
        revoked = {(p.topic, p.partition) for p in partitions}
        for key in list(self._groups):
            if key in revoked:
                self._buffered -= self._groups.pop(key).count
        if not self._groups:
            self._oldest = None
        self.metrics.buffered.set(self._buffered)

    # --- main loop ----------------------------------------------------------------------------------
    def poll_once(self, timeout: float = 0.2, max_messages: int = 500) -> int:
        """Consume up to ``max_messages``, flush if due. Returns the number of messages consumed."""
        if self._repause:
            self._pause()
        if self._paused:
            if time.monotonic() >= self._retry_at and self.flush():
                self._resume()
            else:
                self.consumer.poll(min(timeout, 0.1))  # keeps group membership; paused partitions return nothing
                self._update_lag()
                return 0
        msgs = self.consumer.consume(num_messages=max_messages, timeout=timeout)
        n = 0
        for msg in msgs:
            if msg.error():
                if msg.error().code() != -191:  # _PARTITION_EOF
                    log.warning("Kafka error: %s", msg.error())
                continue
            self._add(msg)
            n += 1
        if self._due():
            self.flush()
        self._update_lag()
        return n

    def run(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set; then flush (best effort) and close the consumer."""
        try:
            while not stop_event.is_set():
                self.poll_once()
            if self._groups:
                self.flush()
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.consumer.close()
        except RuntimeError:
            pass

    # --- buffering ----------------------------------------------------------------------------------
    def _add(self, msg) -> None:
        from yijian.processors.contracts import decode_batch

        topic, part, off = msg.topic(), msg.partition(), msg.offset()
        ts_type, ts_ms = msg.timestamp()
        msg_ts = datetime.fromtimestamp(ts_ms / 1000, timezone.utc) if ts_ms and ts_ms > 0 else datetime.now(timezone.utc)
        self.metrics.messages.labels(topic).inc()
        try:
            kind, items = decode_batch(msg.value())
            conv = CONVERTERS[kind]
            tables: dict[str, list[dict]] = {}
            for item in items:
                for table, rows in conv(item, msg_ts).items():
                    tables.setdefault(table, []).extend(rows)
        except Exception as exc:  # a malformed message is stored as rejected, never dropped silently
            log.warning("undecodable message %s:%s:%s: %s", topic, part, off, exc)
            self.metrics.undecodable.inc()
            tables = undecodable_row(topic, part, off, f"{type(exc).__name__}: {exc}", len(msg.value() or b""), msg_ts)
        key = (topic, part)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(topic, part, off, off)
        group.last = off
        for table, rows in tables.items():
            group.rows.setdefault(table, []).extend(rows)
            group.count += len(rows)
            self._buffered += len(rows)
        if self._oldest is None:
            self._oldest = time.monotonic()
        self.metrics.buffered.set(self._buffered)

    def _due(self) -> bool:
        if not self._groups:
            return False
        return (
            self._buffered >= self.settings.sink_batch_rows
            or self._buffered >= self.settings.sink_max_buffer_rows
            or (self._oldest is not None and time.monotonic() - self._oldest >= self.settings.sink_batch_seconds)
        )

    # --- flushing -----------------------------------------------------------------------------------
    def flush(self) -> bool:
        """Insert every buffered group; commit offsets after ClickHouse acknowledged all of them.

        Returns False (and pauses consumption) if any insert failed; the same blocks are retried
        later with the same dedup tokens."""
        from confluent_kafka import KafkaException, TopicPartition

        if not self._groups:
            return True
        with self._lock:
            try:
                written: dict[str, int] = {}
                for group in self._groups.values():
                    token = f"{group.topic}:{group.partition}:{group.first}-{group.last}"
                    for table, rows in group.rows.items():
                        if table == "institutions":
                            rows = list({r["institution_code"]: r for r in rows}.values())
                        if not rows:
                            continue
                        arrow = self.schemas.table(table, rows)
                        self.client.insert_arrow(f"{self.db}.{table}", arrow, settings={"insert_deduplication_token": token})
                        written[table] = written.get(table, 0) + len(rows)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {str(exc)[:500]}"
                self.metrics.errors.inc()
                self.metrics.last_error_time.set(time.time())
                log.warning("ClickHouse insert failed (holding %d rows, retry in %.1f s): %s", self._buffered, self._backoff, self.last_error)
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, self.settings.sink_retry_max_seconds)
                self._pause()
                return False
            offsets = [TopicPartition(g.topic, g.partition, g.last + 1) for g in self._groups.values()]
            try:
                self.consumer.store_offsets(offsets=offsets)
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                # The rows are in ClickHouse; only the commit failed (broker restarting, group rebalanced).
                # The messages will be delivered again from the last committed offset and collapse into
                # the same rows (deterministic keys, ReplacingMergeTree), so drop the buffer and go on.
                log.warning("Kafka offset commit failed after the insert (the batch will be re-read, idempotent): %s", exc)
            else:
                for tp in offsets:
                    self._committed[(tp.topic, tp.partition)] = tp.offset
            self.committed_messages += sum(g.last - g.first + 1 for g in self._groups.values())
            for table, n in written.items():
                self.metrics.rows.labels(table).inc(n)
                self.written[table] = self.written.get(table, 0) + n
            self.metrics.batches.inc()
            self.metrics.last_flush_time.set(time.time())
            self._groups.clear()
            self._buffered = 0
            self._oldest = None
            self._backoff = 0.5
            self.metrics.buffered.set(0)
            return True

    def _pause(self) -> None:
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
        self._paused = True
        self._repause = False
        self.metrics.paused.set(1)

    def _resume(self) -> None:
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.resume(assignment)
        self._paused = False
        self.metrics.paused.set(0)

    @property
    def paused(self) -> bool:
        return self._paused

    def _update_lag(self, every: float = 2.0) -> None:
        """Lag per topic = high watermark (cached from fetch responses, no broker round trip) minus
        the offset this sink committed (or the fetch position before its first commit)."""
        now = time.monotonic()
        if now - self._lag_at < every:
            return
        self._lag_at = now
        try:
            assignment = self.consumer.assignment()
            if not assignment:
                return
            positions = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.position(assignment)}
            per_topic: dict[str, int] = {}
            for tp in assignment:
                lo, hi = self.consumer.get_watermark_offsets(tp, cached=True)
                if hi is None or hi < 0:
                    continue
                pos = self._committed.get((tp.topic, tp.partition), positions.get((tp.topic, tp.partition), -1))
                if pos < 0:
                    pos = max(lo, 0)
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, hi - pos)
            for topic, lag in per_topic.items():
                self.metrics.lag.labels(topic).set(lag)
                self.lag[topic] = lag
        except Exception as exc:  # lag is informative only
            log.debug("lag update failed: %s", exc)

    def health(self) -> dict:
        """State for ``/health``: ok / degraded (paused, last error), buffer and rows written."""
        return {
            "status": "degraded" if self._paused else "ok",
            "paused": self._paused,
            "buffered_rows": self._buffered,
            "last_error": self.last_error,
            "rows_written": dict(self.written),
            "committed_messages": self.committed_messages,
            "lag": dict(self.lag),
            "topics": self.topics,
        }
