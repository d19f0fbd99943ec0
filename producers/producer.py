"""`HospitalProducer`: the hospital SDK's one entry point for publishing records.

``send(record)`` validates (pydantic model of the interface standard), Avro-encodes and appends the
record to the durable outbox in one SQLite transaction that also assigns its gap-free sequence number
(per institution, producer id and record type). When ``send()`` returns, the record is on disk: killing
the HIS process loses nothing, and the numbers continue after a restart.

A background thread batches outbox rows per record type (bounded by ``batch_max_records``,
``batch_max_bytes`` and ``linger_ms``, like Kafka's own producer), seals each batch into one envelope
with the institution's active SM4 key and publishes it with an idempotent, acks=all Kafka producer to
``raw.<type>`` (key = institution code). Rows are marked sent only when the broker confirms; when the
broker is unreachable they stay on disk and go out later, in order.

Each ``send()`` returns a :class:`concurrent.futures.Future` resolved with the sequence number when the
broker confirmed it (``callback`` is called then too). ``flush(timeout)`` returns the number of records
still waiting; ``stats()`` reports queued / sent / failed attempts.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from datetime import date, datetime, timezone

from typing import Callable, Iterable

from yijian import __version__
from yijian.config import Settings
from yijian.keyring import KeyRing, load_keyring
from yijian.producers.envelope import seal
from yijian.producers.outbox import Outbox, RecordMeta
from yijian.schemas.codec import encode_records
from yijian.schemas.models import (
    BUSINESS_TIME_FIELD,
    BUSINESS_TYPES,
    DailyManifest,
    FeedbackHandling,
    Heartbeat,
    Record,
    RECORD_MODELS,
    business_amount,
    business_date,
)

log = logging.getLogger("yijian.producers")

#: Logical topic (``settings.topic(...)``) of each record type.
TOPIC_OF = {
    "encounter": "raw.encounter",
    "prescription": "raw.prescription",
    "charge": "raw.charge",
    "heartbeat": "raw.control",
    "manifest": "raw.control",
    "feedback_handling": "feedback.handling",
}
_TYPE_OF_MODEL = {model: name for name, model in RECORD_MODELS.items()}
MAX_INFLIGHT_ENVELOPES = 16  # per record type; the rest waits on disk
RETRY_BACKOFF_S = 1.0


class ProducerClosed(RuntimeError):
    pass


def record_type_of(record: Record) -> str:
    try:
        return _TYPE_OF_MODEL[type(record)]
    except KeyError:
        raise TypeError(f"{type(record).__name__} is not a record of the interface standard") from None


def record_meta(record_type: str, record: Record) -> RecordMeta:
    """Record id, version, status, business date (Beijing) and amount, kept for manifests."""
    if record_type not in BUSINESS_TIME_FIELD:
        return RecordMeta()
    return RecordMeta(
        record_id=record.record_id,
        version=record.version,
        status=record.status,
        business_date=business_date(record_type, record).isoformat(),
        amount=business_amount(record_type, record),
    )


class HospitalProducer:
    """Validate, number, store durably, batch, encrypt and publish a hospital's records.

    Use as a context manager, or call :meth:`close`. One instance per process and institution; it is
    thread-safe (``send`` may be called from many HIS threads).
    """

    def __init__(
        self,
        settings: Settings,
        institution_code: str | None = None,
        producer_id: str | None = None,
        keyring: KeyRing | None = None,
        *,
        heartbeats: bool = True,
        on_sealed: Callable[[str, bytes], None] | None = None,
    ) -> None:
        from yijian.crypto import self_test
        from yijian.kafka import producer as kafka_producer

        self_test()  # refuse to run on a backend without SM4-GCM
        self.settings = settings
        self.institution_code = institution_code or settings.institution_code
        if not self.institution_code:
            raise ValueError("未配置机构编码 / no institution code: pass institution_code or set YIJIAN_INSTITUTION_CODE")
        self.producer_id = producer_id or settings.producer_id
        self.keyring = keyring if keyring is not None else load_keyring(settings)
        self.keyring.active(self.institution_code)  # fail now, not in the background thread
        self.outbox = Outbox(
            settings.outbox_file(self.institution_code), self.institution_code, self.producer_id, settings.outbox_synchronous
        )
        self._on_sealed = on_sealed
        self._fatal = False
        self._kafka_factory = lambda: kafka_producer(
            settings,
            **{
                "linger.ms": 2,
                "compression.type": "none",  # ciphertext does not compress
                "message.timeout.ms": settings.delivery_timeout_ms,
                "max.in.flight.requests.per.connection": 5,
                "logger": logging.getLogger("yijian.producers.kafka"),
                "error_cb": self._kafka_error,
            },
        )
        self._kafka = self._kafka_factory()
        self._cv = threading.Condition()
        self._futures: dict[tuple[str, int], Future] = {}
        self._cursor: dict[str, int] = {}  # highest seq handed to Kafka per type
        self._inflight: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}
        self._stats = {"queued": 0, "sent": 0, "failed": 0, "envelopes": 0}
        self._flushing = 0
        self._closed = False
        self._heartbeats = heartbeats
        self._next_heartbeat = time.monotonic() + settings.heartbeat_interval_s
        self._thread = threading.Thread(target=self._run, name=f"yijian-producer-{self.institution_code}", daemon=True)
        self._thread.start()

    # --- public API ------------------------------------------------------------------------------
    def send(
        self,
        record: Record | dict,
        record_type: str | None = None,
        callback: Callable[[Future], None] | None = None,
    ) -> Future:
        """Validate and durably queue one record; returns a future of its sequence number."""
        return self.send_many([record], record_type, callback=callback)[0]

    def send_many(
        self,
        records: Iterable[Record | dict],
        record_type: str | None = None,
        *,
        callback: Callable[[Future], None] | None = None,
        backfill: tuple[str, int] | None = None,
    ) -> list[Future]:
        """Validate and queue several records of one type in one transaction (all or none).

        ``backfill=(file_key, row)`` stores the progress of a file import in the same transaction.
        Raises pydantic ``ValidationError`` (nothing queued) if any record is invalid.
        """
        if self._closed:
            raise ProducerClosed("producer is closed")
        models = [self._validate(r, record_type) for r in records]
        if not models and backfill is None:
            return []
        rtype = record_type or (record_type_of(models[0]) if models else "encounter")
        items = [(encode_records(rtype, [m]), record_meta(rtype, m)) for m in models]
        futures = [Future() for _ in models]
        with self._cv:
            seqs = self.outbox.append(rtype, items, backfill=backfill)
            for seq, fut in zip(seqs, futures):
                fut.seq = seq  # type: ignore[attr-defined]
                if callback:
                    fut.add_done_callback(callback)
                self._futures[(rtype, seq)] = fut
            self._stats["queued"] += len(seqs)
            self._cv.notify_all()
        return futures

    def correct(self, record: Record, **changes) -> Future:
        """Send a correction (更正): same record_id, next version, status ``corrected``."""
        return self._revise(record, "corrected", changes)

    def cancel(self, record: Record) -> Future:
        """Send a cancellation (作废): same record_id, next version, status ``cancelled``."""
        return self._revise(record, "cancelled", {})

    def send_heartbeat(self) -> Future:
        """Queue a heartbeat on raw.control (outbox depth and last seq per type)."""
        hb = Heartbeat(
            institution_code=self.institution_code,
            producer_id=self.producer_id,
            sent_time=datetime.now(timezone.utc),
            outbox_depth=self.outbox.depth(),
            last_seq=self.outbox.last_sent_seq(),
            sdk_version=__version__,
        )
        return self.send(hb, "heartbeat")

    def manifest(self, business_date: date) -> DailyManifest:
        """The daily manifest (日结对账) of a business day, computed from the outbox history."""
        return DailyManifest(
            institution_code=self.institution_code,
            producer_id=self.producer_id,
            business_date=business_date,
            entries=self.outbox.day_summary(business_date.isoformat(), BUSINESS_TYPES),
            sent_time=datetime.now(timezone.utc),
        )

    def send_manifest(self, business_date: date) -> Future:
        """Queue the daily manifest of ``business_date`` (counts, amounts, seq range per type) on raw.control."""
        return self.send(self.manifest(business_date), "manifest")

    def handle_feedback(self, handling: FeedbackHandling) -> Future:
        """Queue a hospital's handling of a feedback item on feedback.handling."""
        return self.send(handling, "feedback_handling")

    def flush(self, timeout: float | None = None) -> int:
        """Send what is queued now (no lingering); wait up to ``timeout`` s; return records still pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._flushing += 1
            self._cv.notify_all()
        try:
            while True:
                left = self.outbox.depth()
                if left == 0 or self._closed or (deadline is not None and time.monotonic() >= deadline):
                    return left
                with self._cv:
                    self._cv.wait(0.02 if deadline is None else max(0.0, min(0.02, deadline - time.monotonic())))
        finally:
            with self._cv:
                self._flushing -= 1

    def stats(self) -> dict:
        """queued / sent / failed counts of this process, plus the outbox depth (pending on disk)."""
        with self._cv:
            out = dict(self._stats)
        out["pending"] = self.outbox.depth()
        return out

    def close(self, timeout: float = 10.0) -> int:
        """Flush up to ``timeout`` s, stop, and return the records left in the outbox for next time."""
        if self._closed:
            return self.outbox.depth()
        self.flush(timeout)
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join()
        self._kafka.flush(min(timeout, 2.0))
        self._kafka.purge()
        self._kafka.flush(0)
        self._kafka.poll(0)
        left = self.outbox.depth()
        self.outbox.close()
        return left

    def __enter__(self) -> "HospitalProducer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------------
    def _validate(self, record: Record | dict, record_type: str | None) -> Record:
        if isinstance(record, Record):
            rtype = record_type_of(record)
            if record_type and record_type != rtype:
                raise TypeError(f"record is a {rtype}, not a {record_type}")
            model = record
        else:
            if record_type is None:
                raise TypeError("record_type is needed for a dict record")
            model = RECORD_MODELS[record_type].model_validate(record)
        inst = getattr(model, "institution_code", None)
        if inst is not None and inst != self.institution_code:
            raise ValueError(
                f"记录的机构编码 {inst} 与本上报程序 {self.institution_code} 不符 / "
                f"record institution {inst} is not this producer's institution {self.institution_code}"
            )
        return model

    def _revise(self, record: Record, status: str, changes: dict) -> Future:
        rtype = record_type_of(record)
        latest = self.outbox_latest_version(rtype, record.record_id)
        data = record.model_dump()
        data.update(changes)
        data.update(version=max(record.version, latest) + 1, status=status)
        return self.send(RECORD_MODELS[rtype].model_validate(data), rtype)

    def outbox_latest_version(self, record_type: str, record_id: str) -> int:
        with self.outbox._lock:
            row = self.outbox._db.execute(
                "SELECT max(version) FROM records WHERE institution=? AND producer_id=? AND record_type=? AND record_id=?",
                (self.institution_code, self.producer_id, record_type, record_id),
            ).fetchone()
        return row[0] or 0

    def _kafka_error(self, err) -> None:
        log.warning("Kafka: %s", err)
        if err.fatal():  # e.g. idempotence state lost: start a new client, the outbox still has everything
            self._fatal = True

    def _replace_kafka_client(self) -> None:
        old, self._fatal = self._kafka, False
        old.purge()
        old.flush(0)
        old.poll(0)  # failed deliveries come back: their rows stay pending
        for rtype in list(self._inflight):
            self._inflight[rtype] = 0
            self._failed_at.setdefault(rtype, time.monotonic())
        self._kafka = self._kafka_factory()

    def _run(self) -> None:
        while True:
            with self._cv:
                if self._closed:
                    return
            if self._fatal:
                self._replace_kafka_client()
            try:
                self._kafka.poll(0)
                wait = self._fill()
                if self._heartbeats and time.monotonic() >= self._next_heartbeat:
                    self._next_heartbeat = time.monotonic() + self.settings.heartbeat_interval_s
                    if self.outbox.depth("heartbeat") == 0:
                        self.send_heartbeat()
                    wait = 0.0
            except Exception:  # keep the sender alive; records stay on disk
                log.exception("producer background loop")
                wait = RETRY_BACKOFF_S
            self._kafka.poll(min(wait, 0.05))
            if wait > 0.05:
                with self._cv:
                    if not self._closed:
                        self._cv.wait(wait - 0.05)

    def _fill(self) -> float:
        """Hand ready batches to Kafka; return seconds until the next batch may be ready."""
        s = self.settings
        wait = 0.25
        now_wall, now = time.time(), time.monotonic()
        for rtype in self.outbox.pending_types():
            if self._inflight.get(rtype, 0) >= MAX_INFLIGHT_ENVELOPES:
                continue
            failed = self._failed_at.get(rtype)
            if failed is not None:
                if self._inflight.get(rtype, 0) > 0:
                    continue  # wait until everything in flight of this type has come back
                if now - failed < RETRY_BACKOFF_S:
                    wait = min(wait, RETRY_BACKOFF_S - (now - failed))
                    continue
                del self._failed_at[rtype]
                self._cursor[rtype] = 0  # start again from the oldest unconfirmed record
            while self._inflight.get(rtype, 0) < MAX_INFLIGHT_ENVELOPES:
                rows = self.outbox.pending(rtype, self._cursor.get(rtype, 0), s.batch_max_records)
                if not rows:
                    break
                batch, size = [rows[0]], len(rows[0].payload)
                for r in rows[1:]:
                    if r.seq != batch[-1].seq + 1 or size + len(r.payload) > s.batch_max_bytes:
                        break
                    batch.append(r)
                    size += len(r.payload)
                full = len(batch) < len(rows) or len(batch) >= s.batch_max_records
                age_ms = (now_wall - batch[0].created) * 1000
                if not full and age_ms < s.linger_ms and not self._flushing:
                    wait = min(wait, (s.linger_ms - age_ms) / 1000)
                    break
                if not self._publish(rtype, batch):
                    wait = min(wait, 0.05)
                    break
        return wait

    def _publish(self, rtype: str, batch: list) -> bool:
        key = self.keyring.active(self.institution_code)
        first, n = batch[0].seq, len(batch)
        value = seal(rtype, batch, key, self.producer_id, first, payload=b"".join(r.payload for r in batch))
        topic = self.settings.topic(TOPIC_OF[rtype])
        try:
            self._kafka.produce(
                topic,
                value=value,
                key=self.institution_code.encode(),
                on_delivery=lambda err, msg, rtype=rtype, first=first, n=n: self._delivered(rtype, first, n, err),
            )
        except BufferError:
            return False
        if self._on_sealed:
            self._on_sealed(topic, value)
        self._cursor[rtype] = batch[-1].seq
        self._inflight[rtype] = self._inflight.get(rtype, 0) + 1
        self._stats["envelopes"] += 1
        return True

    def _delivered(self, rtype: str, first: int, n: int, err) -> None:
        self._inflight[rtype] -= 1
        if err is not None:
            with self._cv:
                self._stats["failed"] += n
            self._failed_at.setdefault(rtype, time.monotonic())
            log.warning("envelope %s seq %d..%d not confirmed (%s); it stays in the outbox", rtype, first, first + n - 1, err)
            return
        self.outbox.mark_sent(rtype, first, n)
        with self._cv:
            self._stats["sent"] += n
            futures = [self._futures.pop((rtype, s), None) for s in range(first, first + n)]
            self._cv.notify_all()
        for seq, fut in zip(range(first, first + n), futures):
            if fut is not None and not fut.done():
                fut.set_result(seq)
