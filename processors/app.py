"""The Faust app of the processors: ``yijian worker`` or ``faust -A yijian.processors.app worker``.

Agents
- ``ingest`` on raw.encounter / raw.prescription / raw.charge / raw.control: one Kafka message = one
  envelope = a batch of records, processed together by :class:`Pipeline` (Faust's per-message cost is
  paid once per batch); outputs go to std.records, quality.issues, rejected, findings, and — encrypted
  to the hospital's own key — feedback.
- ``key_events`` on the compacted keys topic: revocations take effect in every replica at once.
- a timer evaluates connection status and pending cross-record checks.

Scaling: run more workers with the same app id; partitions of the raw topics ≥ replicas. Delivery is
at-least-once; every output carries a deterministic id, so the sink's ReplacingMergeTree and insert
tokens make re-processing invisible. Agent concurrency stays 1 (faust-streaming #606).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta, timezone

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from yijian.config import get_settings
from yijian.keyring import load_keyring
from yijian.processors import control, metrics
from yijian.processors.contracts import Lineage, encode_batch
from yijian.processors.feedback import from_finding, from_issue, seal_feedback
from yijian.processors.partitioning import partition_of as _partition_of
from yijian.processors.pipeline import Outputs, Pipeline
from yijian.processors.refdata_state import RULE_CONTEXT_TABLES, rule_context
from yijian.processors.rules_stage import RulesStage, stale
from yijian.refdata.catalog import RefData, Update
from yijian.processors.tablebuffer import TableBuffer
from yijian.processors.watchdog import StallWatch

log = logging.getLogger("yijian.processors")
settings = get_settings()
settings.processor_data_dir.mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.processor_app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store=settings.processor_store,
    datadir=str(settings.processor_data_dir),
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replication,
    web_port=settings.worker_web_port,
    web_host=settings.worker_web_host,
    web_bind=settings.worker_web_host,
    broker_commit_every=1000,
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
    stream_recovery_delay=0,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    # one envelope fans out into several sends (std, by-patient, quality, findings, feedback): 5 ms of
    # linger lets them share produce requests instead of one request each
    producer_linger=0.005,
    key_serializer="raw",
    value_serializer="raw",
    web_tables_enabled=False,  # /table would serve table contents (patient-related state)
)

RAW_INPUTS = [settings.topic(f"raw.{t}") for t in ("encounter", "prescription", "charge", "control")] + [settings.topic("feedback.handling")]
raw_topics = app.topic(*RAW_INPUTS, value_type=bytes, key_type=bytes)
handling_topic = app.topic(settings.topic("handling.records"), value_type=bytes, key_type=bytes)
std_topic = app.topic(settings.topic("std.records"), value_type=bytes, key_type=bytes)
quality_topic = app.topic(settings.topic("quality.issues"), value_type=bytes, key_type=bytes)
rejected_topic = app.topic(settings.topic("rejected"), value_type=bytes, key_type=bytes)
findings_topic = app.topic(settings.topic("findings"), value_type=bytes, key_type=bytes)
feedback_topic = app.topic(settings.topic("feedback"), value_type=bytes, key_type=bytes)
keys_topic = app.topic(settings.topic("keys"), value_type=bytes, key_type=bytes)
ticks_topic = app.topic(settings.topic("control.ticks"), value_type=bytes, key_type=bytes)
by_patient_topic = app.topic(settings.topic("std.by_patient"), value_type=bytes, key_type=bytes)
rules_topic = app.topic(settings.topic("rules"), value_type=bytes, key_type=bytes)
refdata_topic = app.topic(settings.topic("refdata"), value_type=bytes, key_type=bytes)

# stream (institution|producer|type) → next expected sequence number
seq_table = app.Table("seq_state", default=None, key_type=str, value_type=int)  # json changelog, string keys
# institution-scoped state: connection, received counts per business day, encounter ids, orphans
inst_table = app.Table("inst_state", default=None, key_type=str)
# patient pseudonym → history of the patient's encounters, prescriptions and charges (stateful rules)
patient_table = app.Table("patients", default=None, key_type=str)

pipeline = Pipeline(settings, load_keyring(settings), RefData())
rules_stage = RulesStage(cache_size=settings.patient_cache_size)
watch = StallWatch(settings.stall_after_s)
RAW_NAMES = set(RAW_INPUTS)


_reference_loaded = asyncio.Event()
_reference_loading = asyncio.Lock()


async def reference_state_loaded() -> None:
    """Before the first envelope: fold the refdata, rules and keys topics to their current end, so no
    record is standardized with missing maps or evaluated without the rules in force. (The agents
    below then follow those topics for changes.)"""
    if _reference_loaded.is_set():
        return
    async with _reference_loading:
        if _reference_loaded.is_set():
            return
        from yijian.processors.refdata_state import read_refdata
        from yijian.rules.deployment import read_deployed

        loop = asyncio.get_running_loop()
        rd = await loop.run_in_executor(None, read_refdata, settings)
        deployed = await loop.run_in_executor(None, read_deployed, settings)
        pipeline.refdata = rd
        rules_stage.state = deployed
        rules_stage.set_context(rule_context(rd))
        log.warning("reference data %s (%d institutions) and %d rule packs loaded", rd.version or "—", len(rd.institutions()), len(deployed.in_force))
        _reference_loaded.set()


async def emit(out: Outputs) -> None:
    key = (out.institution_code or "").encode()
    if out.rejected:
        for r in out.rejected:
            metrics.REJECTED.labels(r.reason).inc()
        await rejected_topic.send(key=key, value=encode_batch("rejected", out.rejected))
    if out.std:
        metrics.RECORDS_OUT.labels("std").inc(len(out.std))
        await std_topic.send(key=key, value=encode_batch("std", out.std))
        by_partition: dict[int, list] = {}
        for rec in out.std:
            by_partition.setdefault(partition_of(rec["patient"]["pseudonym"]), []).append(rec)
        for partition, recs in by_partition.items():  # one message per partition, not per patient
            await by_patient_topic.send(key=b"patients", value=encode_batch("std", recs), partition=partition)
    if out.quality:
        for q in out.quality:
            metrics.QUALITY.labels(q.dimension, q.code).inc()
        await quality_topic.send(key=key, value=encode_batch("quality", out.quality))
    by_inst: dict[str, list] = {}
    for q in out.quality:
        if q.institution_code:
            by_inst.setdefault(q.institution_code, []).append(from_issue(q))
    for inst, items in by_inst.items():
        envelope = seal_feedback(pipeline.keyring, inst, items)
        if envelope is not None:
            await feedback_topic.send(key=inst.encode(), value=envelope)


def institution_checks(out: Outputs, now: datetime) -> None:
    """Connection, key usage, manifest and cross-record state for one processed envelope (table
    writes coalesced: one changelog message per changed key)."""
    state = TableBuffer(inst_table)
    _institution_checks(state, out, now)
    state.flush()


def _institution_checks(inst_table, out: Outputs, now: datetime) -> None:
    if out.control is not None and out.control["header"]["record_type"] == "feedback_handling":
        return
    if out.control is not None:
        h = out.control["header"]
        inst = h["institution_code"]
        out.quality.extend(control.observe_traffic(inst_table, inst, h["producer_id"], h["sent_time"], now, pipeline.known_producers(inst)))
        for rec in out.control["records"]:
            if h["record_type"] == "heartbeat":
                control.observe_heartbeat(inst_table, inst, rec)
            elif h["record_type"] == "manifest":
                control.hold_manifest(inst_table, rec, now)
        return
    if not out.std:
        return
    meta0 = out.std[0]["meta"]
    inst = out.institution_code
    out.quality.extend(control.observe_traffic(inst_table, inst, meta0["producer_id"], meta0["received_time"], now, pipeline.known_producers(inst)))
    for rec in out.std:
        if not rec["meta"].get("duplicate"):
            control.count_received(inst_table, inst, out.record_type, rec)
        control.observe_reference(inst_table, inst, out.record_type, rec, now)


@app.agent(raw_topics)
async def ingest(stream):
    await reference_state_loaded()
    async for event in stream.events():
        msg = event.message
        lineage = Lineage(topic=msg.topic, partition=msg.partition, offset=msg.offset)
        received = datetime.fromtimestamp(msg.timestamp, tz=timezone.utc) if msg.timestamp else datetime.now(timezone.utc)
        metrics.ENVELOPES.labels(msg.topic).inc()
        watch.processed(msg.topic, msg.partition, msg.offset)
        t0 = time.perf_counter()
        try:
            seq_state = TableBuffer(seq_table)
            out = pipeline.process(event.value, lineage, received, seq_state)
            seq_state.flush()
            institution_checks(out, datetime.now(timezone.utc))
        except Exception:  # never crash on input: count it, log it, keep going (the offset stays in Kafka)
            metrics.ERRORS.inc()
            log.exception("unexpected error on %s:%s:%s", msg.topic, msg.partition, msg.offset)
            continue
        metrics.BATCH_SECONDS.observe(time.perf_counter() - t0)
        if out.control is not None and out.record_type == "feedback_handling":
            await emit_handling(out, lineage)
            continue
        if out.std:
            metrics.RECORDS_IN.labels(out.record_type).inc(len(out.std))
            done = time.time()
            for rec in out.std:
                metrics.LATENCY.labels(out.record_type).observe(max(0.0, done - rec["meta"]["event_time"].timestamp()))
        await emit(out)


@app.agent(by_patient_topic)
async def patient_rules(stream):
    """Rule evaluation with each patient's history (records of one patient meet in one partition)."""
    from yijian.processors.contracts import decode_batch

    await reference_state_loaded()
    async for event in stream.events():
        try:
            _, records = decode_batch(event.value)
            out = Outputs()
            findings, histories = rules_stage.evaluate_batch(records, patient_table.get)
            for pseudo, history in histories.items():
                if history is None:
                    patient_table.pop(pseudo, None)
                else:
                    patient_table[pseudo] = history
            out.findings.extend(findings)
            metrics.RULE_RECORDS.inc(len(records))
            if out.findings:
                out.institution_code = out.findings[0].institution_code
                await emit_findings(out)
        except Exception:
            metrics.ERRORS.inc()
            log.exception("rule evaluation failed on %s:%s", event.message.partition, event.message.offset)


async def emit_handling(out: Outputs, lineage: Lineage) -> None:
    """A hospital's acknowledgements and explanations of findings, for the sink (table finding_handling).
    The institution is the one the envelope's key authenticates, whatever the record claims."""
    inst = out.control["header"]["institution_code"]
    items = []
    for index, rec in enumerate(out.control["records"]):
        if rec["institution_code"] != inst:
            log.warning("handling for another institution (%s) in an envelope of %s: ignored", rec["institution_code"], inst)
            continue
        items.append({**rec, "lineage": Lineage(topic=lineage.topic, partition=lineage.partition, offset=lineage.offset, index=index)})
    if items:
        metrics.RECORDS_OUT.labels("handling").inc(len(items))
        await handling_topic.send(key=inst.encode(), value=encode_batch("handling", items))


async def emit_findings(out: Outputs) -> None:
    by_inst: dict[str, list] = {}
    for f in out.findings:
        metrics.FINDINGS.labels(f.severity).inc()
        by_inst.setdefault(f.institution_code, []).append(f)
    for inst, findings in by_inst.items():
        await findings_topic.send(key=inst.encode(), value=encode_batch("finding", findings))
        envelope = seal_feedback(pipeline.keyring, inst, [from_finding(f) for f in findings])
        if envelope is not None:
            await feedback_topic.send(key=inst.encode(), value=envelope)


@app.on_partitions_revoked.connect
async def on_revoked(app, revoked, **kwargs):
    """Patients may move to another replica: drop the in-process history cache (the table stays)."""
    rules_stage.forget_all()


@app.agent(rules_topic)
async def rule_packs(stream):
    """Rule packs in force: every replica reads the compacted topic and follows it (hot deployment)."""
    async for event in stream.events():
        try:
            key = (event.key or b"").decode()
            rules_stage.on_message(key, event.value)
        except Exception:
            log.exception("unreadable rule pack message %r", event.key)


@app.agent(refdata_topic)
async def reference_data(stream):
    """Code maps, registries and catalogues: every replica folds the compacted topic and follows it."""
    async for event in stream.events():
        try:
            if event.value is None:
                continue
            update = Update.from_json(event.value)
            pipeline.refdata.apply(update)
            if update.table in RULE_CONTEXT_TABLES:  # code maps (most updates) do not change the rules
                rules_stage.set_context(rule_context(pipeline.refdata))
        except Exception:
            metrics.ERRORS.inc()
            log.exception("unreadable reference data message %r", event.key)


@app.agent(keys_topic)
async def key_events(stream):
    """Key status events: reload the key ring file and apply revocations at once."""
    async for value in stream:
        try:
            ev = json.loads(value)
            pipeline.keyring.merge(load_keyring(settings))
            if ev.get("status") == "revoked":
                revoked_at = datetime.fromisoformat(ev["revoked_at"]) if ev.get("revoked_at") else None
                pipeline.keyring.apply_status(ev["key_id"], "revoked", revoked_at)
                log.warning("key %s revoked: envelopes under it are refused from now on", ev["key_id"])
        except Exception:
            log.exception("unreadable key event")


def partition_of(key: str) -> int:
    """An institution's raw partition, or a patient's partition of std.by_patient (same partition
    count, so one tick reaches both)."""
    return _partition_of(key, settings.topic_partitions)


@app.timer(interval=settings.control_interval_s)
async def clock():
    """Faust tables can only change inside stream iteration: tick every raw partition this worker owns;
    the ``periodic_checks`` agent does the work in that partition's context."""
    try:
        raw = settings.topic("raw.encounter")
        mine = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == raw)
        for partition in mine:
            await ticks_topic.send(key=b"tick", value=datetime.now(timezone.utc).isoformat().encode(), partition=partition)
    except Exception:
        log.exception("clock tick failed")


@app.agent(ticks_topic)
async def periodic_checks(stream):
    """Connection status and pending cross-record checks for the institutions of the ticked partition."""
    async for event in stream.events():
        try:
            now = datetime.now(timezone.utc)
            if now - datetime.fromisoformat(event.value.decode()) > timedelta(seconds=5 * settings.control_interval_s):
                continue  # stale tick (e.g. after downtime); a fresh one follows
            p = event.message.partition

            def owns(inst: str) -> bool:
                return partition_of(inst) == p

            state = TableBuffer(inst_table)
            known = {k.split("|", 1)[0] for k in list(inst_table.keys()) if k.endswith("|conn") and not k.endswith("|conn_reported")}
            institutions = sorted(i for i in known | set(pipeline.registered_institutions()) if owns(i))
            conn = control.connection_issues(state, institutions, now, timedelta(minutes=settings.silent_after_minutes), pipeline.regions())
            orphans = control.orphan_issues(
                state, now, timedelta(minutes=settings.orphan_grace_minutes), timedelta(days=settings.encounter_retention_days), owns
            )
            orphans += control.due_manifests(state, now, timedelta(seconds=settings.manifest_grace_s), owns)
            state.flush()
            if conn or orphans:
                await emit(Outputs(quality=conn + orphans))
            for pseudo in [k for k in list(patient_table.keys()) if owns(k)]:
                stored = patient_table.get(pseudo)
                if stored is not None and stale(stored, rules_stage.history_days):
                    patient_table.pop(pseudo, None)
        except Exception:
            metrics.ERRORS.inc()
            log.exception("periodic checks failed")


@app.page("/metrics")
async def metrics_page(web, request):
    return web.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def stalled_partitions() -> dict[str, dict]:
    owned = {}
    for tp in app.consumer.assignment() if app.consumer else set():
        if tp.topic in RAW_NAMES:
            try:
                owned[(tp.topic, tp.partition)] = app.consumer.highwater(tp)
            except Exception:  # no fetch yet for this partition
                continue
    try:  # Faust's own record of the partitions it fetches (private; without it, every partition is judged)
        fetching = {(tp.topic, tp.partition) for tp in app.consumer._get_active_partitions()}
    except Exception:
        fetching = None
    return watch.stalled(owned, fetching=fetching)


@app.page("/health")
async def health_page(web, request):
    assigned = app.consumer.assignment() if app.consumer else set()
    stalled = stalled_partitions()
    if stalled:
        log.error("stalled partitions (waiting messages, no progress for %ss): %s", settings.stall_after_s, stalled)
        return web.json({"status": "stalled", "stalled": stalled, "partitions_assigned": len(assigned)}, status=503)
    return web.json({
        "status": "ok",
        "partitions_assigned": len(assigned),
        "keys": len(pipeline.keyring.entries()),
        "refdata_version": getattr(pipeline.refdata, "version", ""),
        "rules_version": rules_stage.version,
        "rules": len(rules_stage.engine.rules),
    })
