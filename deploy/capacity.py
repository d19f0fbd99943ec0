"""Capacity model: how many partitions, processor and sink replicas, brokers and ClickHouse shards.

Run it:  python deploy/capacity.py            (or: python -m yijian.deploy.capacity)
         python deploy/capacity.py --json     (machine-readable)
         python deploy/capacity.py --visits-per-day 1500000 --records-per-visit 25   (your own province)

Pure Python (standard library only), so ops can run it anywhere. Every number comes from the inputs
below; each input says where it comes from. The processor worker's rates are MEASURED by the benchmark
(`make bench`, on a 2-core machine), and they show that a worker pays per Kafka message (envelope) more
than per record: one worker (≈ 1 core) with all rule packs on does 2,308 records/s when envelopes carry
100 records (section `processors`), but only ≈ 200 envelopes/s when they carry 1–3 records (sections
`latency_250rps`, `latency_5000rps`: 2 replicas reached ≈ 375–395 envelopes/s together). Hospitals send
records as they happen, so at a province's peak an envelope carries about one record. A worker's
capacity is therefore the smaller of its records/s and its envelopes/s × records per envelope. Re-run
with --worker-records-per-s / --worker-envelopes-per-s / --records-per-envelope when the benchmark or
the traffic changes. The sink's figure is still an assumption.

How the numbers follow from the inputs (one line each, the same order as the table):

    peak records/s   = peak visits/day × records/visit × peak-hour share / 3600
    per-worker rate  = min(worker records/s, worker envelopes/s × records/envelope)   (records/s)
    processors       = ceil(peak records/s / (per-worker rate × target utilisation)), at least 2
    processors (max) = ceil(peak records/s × catch-up factor / per-worker rate)  (autoscaler ceiling)
    sinks            = same two formulas with the sink's per-replica rate
    partitions       = max(min partitions, max replicas × growth factor, brokers), rounded up to a power of two
                       (monotone in the load — a topic's partitions can never be reduced — and spread over the
                       brokers evenly to within one partition each)
                       (never fewer than the largest replica ceiling: a replica without a partition idles,
                       and a Faust table's changelog cannot be repartitioned later, so size for growth now)
    Kafka bytes/day  = average records/day × record size × topic amplification
    brokers          = max(replication factor, disk need / usable disk per broker,
                           peak ingress × replication / per-broker write budget)
    ClickHouse TB    = records/day × stored bytes per row × 365 × retention years
    shards           = ceil(ClickHouse TB / usable disk per shard); each shard has `ch_replicas` replicas
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class Inputs:
    """Documented inputs of the model. Each field's metadata holds the unit and where it comes from."""

    name: str = field(default="province", metadata={"doc": "scenario name"})
    institutions: int = field(default=2_000, metadata={"unit": "", "doc": "institutions that stream (context only; the arithmetic uses visits). Guizhou: ~2,000"})
    visits_per_day: float = field(
        default=1_000_000,
        metadata={"unit": "/day", "doc": "visits (settlements) on a PEAK day. Guizhou: ~38.6M people × ~5 visits/yr ≈ 0.53M/day on average; peak day ≈ 2× (assumption)"},
    )
    avg_visits_per_day: float = field(default=530_000, metadata={"unit": "/day", "doc": "visits on an average day (drives storage)"})
    records_per_visit: float = field(
        default=20,
        metadata={"unit": "", "doc": "records per visit: 1 encounter + ~4 prescription items + ~15 charge lines (assumption; inpatient stays have many more, outpatient fewer)"},
    )
    peak_hour_share: float = field(
        default=0.15,
        metadata={"unit": "", "doc": "share of a day's records arriving in the busiest hour (morning clinics; assumption)"},
    )
    catchup_factor: float = field(
        default=3.0,
        metadata={"unit": "×", "doc": "after an outage the backlog must drain while live traffic continues: autoscaler ceiling = peak × this"},
    )
    worker_records_per_s: float = field(
        default=2_000,
        metadata={
            "unit": "rec/s",
            "doc": "measured (`make bench`, section processors): one processor worker ≈ 1 core, all rule packs on, 100-record envelopes: 2,308 records/s, rounded down",
        },
    )
    worker_envelopes_per_s: float = field(
        default=200.0,
        metadata={
            "unit": "env/s",
            "doc": "measured (`make bench`): the whole platform (2 workers + broker + sink + publisher on 2 cores, sections latency_*) reached ≈375–395 envelopes/s of 1–2.8 records, ≈200 per worker; one worker alone, rules on, one-record envelopes: 866/s (section worker_envelopes). Conservative: the platform figure carries the broker's and sink's per-message cost. Faust pays per Kafka message (one envelope fans out into several sends)",
        },
    )
    records_per_envelope: float = field(
        default=1.0,
        metadata={
            "unit": "",
            "doc": "records per envelope at peak: hospitals send records as they happen (≈0.4 records/s per institution at Guizhou's peak, SDK linger 20 ms); a backfill or batch upload carries up to 500",
        },
    )
    sink_records_per_s: float = field(
        default=50_000,
        metadata={
            "unit": "rec/s",
            "doc": "ASSUMPTION: one sink replica (1 core) ≈ 50k rows/s (Kafka consume + Arrow batch insert; chdb measured 400k rows/s insert-only); not measured with one-row messages (the processors write one message per envelope)",
        },
    )
    target_utilisation: float = field(
        default=0.5,
        metadata={"unit": "", "doc": "run at most at this share of capacity at peak (headroom for one lost node and rebalances)"},
    )
    min_replicas: int = field(default=2, metadata={"unit": "", "doc": "never fewer replicas than this (one can be drained or crash)"})
    min_partitions: int = field(default=16, metadata={"unit": "", "doc": "never fewer partitions per data topic (cheap; leaves room to scale out without repartitioning)"})
    growth_factor: float = field(
        default=2.0,
        metadata={"unit": "×", "doc": "partitions sized for this much growth: a Faust table's topic cannot be repartitioned later"},
    )
    record_bytes: float = field(default=1_000, metadata={"unit": "B", "doc": "bytes per record on Kafka (Avro + SM4-GCM envelope share + headers; ~600-1,000 B)"})
    topic_amplification: float = field(
        default=2.5,
        metadata={"unit": "×", "doc": "bytes written to Kafka per raw byte: raw + std.records + std.by_patient + quality/findings/feedback"},
    )
    retention_days: float = field(default=7, metadata={"unit": "d", "doc": "Kafka retention of data topics (replay window after a fix)"})
    replication: int = field(default=3, metadata={"unit": "", "doc": "Kafka replication factor (min.insync.replicas = 2)"})
    broker_disk_tb: float = field(default=4.0, metadata={"unit": "TB", "doc": "data disk per broker"})
    broker_write_mb_s: float = field(
        default=50.0,
        metadata={"unit": "MB/s", "doc": "sustained write budget per broker incl. replication traffic (conservative for SSD + 10 GbE)"},
    )
    disk_fill: float = field(default=0.7, metadata={"unit": "", "doc": "fill disks to at most this share"})
    ch_bytes_per_row: float = field(
        default=120,
        metadata={"unit": "B", "doc": "compressed bytes per fact row in ClickHouse incl. rollups and quality/findings (assumption; measure with system.parts)"},
    )
    ch_retention_years: float = field(default=3, metadata={"unit": "y", "doc": "years of facts kept in ClickHouse (older: BACKUP to object storage)"})
    ch_shard_disk_tb: float = field(default=8.0, metadata={"unit": "TB", "doc": "data disk per ClickHouse replica"})
    ch_replicas: int = field(default=2, metadata={"unit": "", "doc": "replicas per ClickHouse shard"})


@dataclass(frozen=True)
class Plan:
    peak_records_per_s: float
    avg_records_per_day: float
    worker_effective_records_per_s: float
    processor_replicas: int
    processor_max_replicas: int
    sink_replicas: int
    sink_max_replicas: int
    partitions: int
    kafka_tb: float
    peak_ingress_mb_s: float
    brokers: int
    clickhouse_tb: float
    clickhouse_shards: int
    clickhouse_replicas: int


def _ceil(x: float) -> int:
    # guard against 2.0000000001 from float arithmetic turning into 3
    return math.ceil(round(x, 9))


def plan(i: Inputs) -> Plan:
    """The arithmetic. Pure function of the inputs; see the module docstring for each formula."""
    rates = (i.worker_records_per_s, i.worker_envelopes_per_s, i.records_per_envelope, i.sink_records_per_s)
    if min(*rates, i.target_utilisation, i.replication) <= 0:
        raise ValueError("per-replica rates, records per envelope, utilisation and replication must be positive")
    peak = i.visits_per_day * i.records_per_visit * i.peak_hour_share / 3600.0
    avg_day = i.avg_visits_per_day * i.records_per_visit

    # a worker is limited by records (decode, rules) or by Kafka messages (Faust's per-message cost)
    worker_rate = min(i.worker_records_per_s, i.worker_envelopes_per_s * i.records_per_envelope)
    proc = max(i.min_replicas, _ceil(peak / (worker_rate * i.target_utilisation)))
    proc_max = max(proc, _ceil(peak * i.catchup_factor / worker_rate))
    sink = max(i.min_replicas, _ceil(peak / (i.sink_records_per_s * i.target_utilisation)))
    sink_max = max(sink, _ceil(peak * i.catchup_factor / i.sink_records_per_s))

    kafka_bytes = avg_day * i.record_bytes * i.topic_amplification * i.retention_days * i.replication
    kafka_tb = kafka_bytes / 1e12
    ingress = peak * i.catchup_factor * i.record_bytes * i.topic_amplification / 1e6  # MB/s, leader writes
    brokers = max(
        i.replication,
        _ceil(kafka_tb / (i.broker_disk_tb * i.disk_fill)),
        _ceil(ingress * i.replication / i.broker_write_mb_s),
    )

    widest = max(proc_max, sink_max)
    needed = max(i.min_partitions, _ceil(widest * i.growth_factor), brokers)
    partitions = 1 << (needed - 1).bit_length()

    ch_tb = avg_day * i.ch_bytes_per_row * 365 * i.ch_retention_years / 1e12
    shards = max(1, _ceil(ch_tb / (i.ch_shard_disk_tb * i.disk_fill)))
    return Plan(
        peak_records_per_s=peak,
        avg_records_per_day=avg_day,
        worker_effective_records_per_s=worker_rate,
        processor_replicas=proc,
        processor_max_replicas=proc_max,
        sink_replicas=sink,
        sink_max_replicas=sink_max,
        partitions=partitions,
        kafka_tb=kafka_tb,
        peak_ingress_mb_s=ingress,
        brokers=brokers,
        clickhouse_tb=ch_tb,
        clickhouse_shards=shards,
        clickhouse_replicas=i.ch_replicas,
    )


# --- scenarios ---------------------------------------------------------------------------------------
GUIZHOU = Inputs(name="Guizhou (province 52)")

# National Healthcare Security Administration scale: ~18M settlements/day on average, ~35M on a peak day.
# One settlement ≈ one visit here. The country runs as one platform instance for this estimate (in
# practice each province runs its own; divide by the province's share).
NATION = Inputs(
    name="Nation (NHSA scale)",
    institutions=800_000,
    visits_per_day=35_000_000,
    avg_visits_per_day=18_000_000,
    peak_hour_share=0.12,  # a country-wide mix of hospitals smooths the busiest hour a little (assumption)
)

SCENARIOS = (GUIZHOU, NATION)

ROWS: tuple[tuple[str, str, str], ...] = (
    ("peak_records_per_s", "peak records/s", "visits/day × records/visit × peak-hour share / 3600"),
    ("avg_records_per_day", "records on an average day", "avg visits/day × records/visit"),
    ("worker_effective_records_per_s", "per-worker records/s (effective)", "min(worker rec/s, worker envelopes/s × records/envelope)"),
    ("processor_replicas", "processor replicas (steady peak)", "peak / (per-worker rate × utilisation), ≥ min"),
    ("processor_max_replicas", "processor replicas (autoscale max)", "peak × catch-up / per-worker rate"),
    ("sink_replicas", "sink replicas (steady peak)", "peak / (per-sink rate × utilisation), ≥ min"),
    ("sink_max_replicas", "sink replicas (autoscale max)", "peak × catch-up / per-sink rate"),
    ("partitions", "partitions per data topic", "max(min, max replicas × growth, brokers), next power of two"),
    ("kafka_tb", "Kafka disk, TB (all replicas)", "records/day × size × amplification × retention × RF"),
    ("peak_ingress_mb_s", "Kafka peak ingress, MB/s", "peak × catch-up × size × amplification"),
    ("brokers", "Kafka brokers", "max(RF, disk, write bandwidth)"),
    ("clickhouse_tb", "ClickHouse data, TB (one replica)", "records/day × bytes/row × 365 × years"),
    ("clickhouse_shards", "ClickHouse shards", "TB / (disk per replica × fill)"),
    ("clickhouse_replicas", "ClickHouse replicas per shard", "input"),
)


def _fmt(v: float | int) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"


def render_table(scenarios: tuple[Inputs, ...] = SCENARIOS) -> str:
    plans = [(s, plan(s)) for s in scenarios]
    w0 = max(len(r[1]) for r in ROWS)
    widths = [max(14, len(s.name)) for s, _ in plans]
    out = []
    head = f"{'':{w0}}  " + "  ".join(f"{s.name:>{w}}" for (s, _), w in zip(plans, widths)) + "  how"
    out.append(head)
    out.append("-" * len(head))
    for key, label, how in ROWS:
        cells = "  ".join(f"{_fmt(getattr(p, key)):>{w}}" for (_, p), w in zip(plans, widths))
        out.append(f"{label:{w0}}  {cells}  {how}")
    out.append("")
    out.append("Inputs (assumptions are marked; change them with --<name>):")
    names = [f.name for f in fields(Inputs) if f.name != "name"]
    wn = max(len(n) for n in names)
    for n in names:
        meta = Inputs.__dataclass_fields__[n].metadata
        vals = "  ".join(f"{_fmt(getattr(s, n)):>{w}}" for (s, _), w in zip(plans, widths))
        out.append(f"  {n:{wn}}  {vals}  {meta.get('unit', ''):>5}  {meta.get('doc', '')}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="yijian capacity model (see the module docstring for the formulas).")
    ap.add_argument("--json", action="store_true", help="print inputs and results as JSON")
    for f in fields(Inputs):
        if f.name == "name":
            continue
        ap.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(f.default),
            default=None,
            help=f"{f.metadata.get('doc', '')} (province default {f.default})",
        )
    args = ap.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(Inputs) if f.name != "name" and getattr(args, f.name) is not None}
    scenarios = SCENARIOS
    if overrides:
        scenarios = (replace(GUIZHOU, name="custom (Guizhou defaults + your inputs)", **overrides),)
    if args.json:
        print(json.dumps([{"inputs": asdict(s), "plan": asdict(plan(s))} for s in scenarios], indent=2, ensure_ascii=False))
    else:
        print(render_table(scenarios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
