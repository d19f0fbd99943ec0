"""The Faust app of the processors: ``yijian worker`` or ``faust -A yijian.processors.app worker``.

Agents
- ``ingest`` on raw.encounter / raw.prescription / raw.charge / raw.control: one Kafka message = one
  envelope = a batch of records, processed together by :class:`Pipeline`; outputs go to
  std.records, quality.issues, rejected, findings and (encrypted to the hospital) feedback.
- ``keys`` on the compacted keys topic: revocations take effect in every replica at once.

Scaling: run more workers with the same app id; partitions of the raw topics ≥ replicas. Delivery
is at-least-once; every output carries a deterministic id so the sink's ReplacingMergeTree and
insert tokens make re-processing invisible. Agent concurrency stays 1 (faust #606).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import faust

from yijian.config import get_settings
from yijian.keyring import load_keyring
from yijian.processors.contracts import Lineage, encode_batch
from yijian.processors.pipeline import Pipeline

log = logging.getLogger("yijian.processors")
settings = get_settings()

app = faust.App(
    "yijian-processors",
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="memory://",
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replication,
    web_port=settings.worker_web_port,
    web_host=settings.worker_web_host,
    web_bind=settings.worker_web_host,
    web_in_thread=False,
    broker_commit_every=1000,
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
    stream_recovery_delay=0,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    key_serializer="raw",
    value_serializer="raw",
    table_cleanup_interval=60,
)
app.conf.web_tables_enabled = False  # /table would serve table contents

raw_topics = app.topic(*(settings.topic(f"raw.{t}") for t in ("encounter", "prescription", "charge", "control")), value_type=bytes, key_type=bytes)
std_topic = app.topic(settings.topic("std.records"), value_type=bytes, key_type=bytes)
quality_topic = app.topic(settings.topic("quality.issues"), value_type=bytes, key_type=bytes)
rejected_topic = app.topic(settings.topic("rejected"), value_type=bytes, key_type=bytes)
findings_topic = app.topic(settings.topic("findings"), value_type=bytes, key_type=bytes)
keys_topic = app.topic(settings.topic("keys"), value_type=bytes, key_type=bytes)

# stream (institution|producer|type) -> next expected sequence number; changelog-backed
seq_table = app.Table("seq_state", default=None, key_type=str, value_type=int, partitions=settings.topic_partitions)

pipeline = Pipeline(settings, load_keyring(settings))


@app.agent(raw_topics)
async def ingest(stream):
    async for event in stream.events():
        msg = event.message
        lineage = Lineage(topic=msg.topic, partition=msg.partition, offset=msg.offset)
        received = datetime.fromtimestamp(msg.timestamp, tz=timezone.utc) if msg.timestamp else datetime.now(timezone.utc)
        try:
            out = pipeline.process(event.value, lineage, received, seq_table)
        except Exception:  # never crash on input; keep the message for inspection
            log.exception("unexpected error on %s:%s:%s", msg.topic, msg.partition, msg.offset)
            continue
        key = (out.institution_code or "").encode()
        if out.rejected:
            await rejected_topic.send(key=key, value=encode_batch("rejected", out.rejected))
        if out.std:
            await std_topic.send(key=key, value=encode_batch("std", out.std))
        if out.quality:
            await quality_topic.send(key=key, value=encode_batch("quality", out.quality))
        if out.findings:
            await findings_topic.send(key=key, value=encode_batch("finding", out.findings))


@app.agent(keys_topic)
async def key_events(stream):
    """Key status events: reload the key ring file and apply revocations immediately."""
    import json

    async for value in stream:
        try:
            ev = json.loads(value)
            fresh = load_keyring(settings)
            pipeline.keyring.merge(fresh)
            if ev.get("status") == "revoked":
                pipeline.keyring.apply_status(ev["key_id"], "revoked", datetime.fromisoformat(ev["revoked_at"]) if ev.get("revoked_at") else None)
        except Exception:
            log.exception("bad key event")
