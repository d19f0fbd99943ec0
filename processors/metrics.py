"""Prometheus metrics of the processors (served at /metrics by the worker's web server)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

ENVELOPES = Counter("yijian_envelopes_total", "Raw envelopes processed", ["topic"], registry=REGISTRY)
RECORDS_IN = Counter("yijian_records_in_total", "Records decoded from envelopes", ["record_type"], registry=REGISTRY)
RECORDS_OUT = Counter("yijian_records_out_total", "Records written per output stage", ["stage"], registry=REGISTRY)
REJECTED = Counter("yijian_rejected_total", "Envelopes rejected, by reason", ["reason"], registry=REGISTRY)
QUALITY = Counter("yijian_quality_issues_total", "Quality issues raised", ["dimension", "code"], registry=REGISTRY)
RULE_RECORDS = Counter("yijian_rule_records_total", "Records evaluated by the rules stage", registry=REGISTRY)
FINDINGS = Counter("yijian_findings_total", "Rule findings", ["severity"], registry=REGISTRY)
ERRORS = Counter("yijian_processing_errors_total", "Unexpected errors (message kept, see logs)", registry=REGISTRY)
LATENCY = Histogram(
    "yijian_event_to_processed_seconds",
    "Seconds from the record's event time to the end of processing",
    ["record_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram("yijian_batch_processing_seconds", "Pipeline time per envelope", buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5), registry=REGISTRY)
LAG = Gauge("yijian_consumer_lag", "End offset minus committed offset per raw partition", ["topic", "partition"], registry=REGISTRY)
