"""Reference data on the compacted ``refdata`` topic (key ``<table>:<partition>``, value an
:class:`~yijian.refdata.catalog.Update`): code maps, institution and practitioner registries,
catalogues. Publishing changes every running processor without a restart; each update replaces one
partition of one table (e.g. one institution's code map).
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import TopicPartition

from yijian.config import Settings
from yijian.kafka import consumer, producer
from yijian.refdata.catalog import TABLES, RefData, Update, load_csv
from yijian.rules.model import DrugInfo, InstitutionInfo, Prescriber, RuleContext

INJECTION_ROUTES = {"iv", "im", "ih", "ivgtt", "inj"}


def updates_from_csv(path: Path, table: str, version: str = "") -> list[Update]:
    """The updates that make the platform's ``table`` equal to the CSV for the partitions it covers."""
    rows = load_csv(path, table)
    return RefData.from_rows({table: rows}, version=version).to_updates(version or None)


def updates_from_folder(folder: Path, version: str = "") -> list[Update]:
    """Every ``<table>.csv`` in a folder (table names: institutions, practitioners, code_maps, drugs, ...)."""
    out: list[Update] = []
    for table in TABLES:
        path = folder / f"{table}.csv"
        if path.exists():
            out += updates_from_csv(path, table, version)
    return out


def publish(settings: Settings, updates: list[Update]) -> int:
    p = producer(settings)
    for u in updates:
        p.produce(settings.topic("refdata"), key=u.key, value=u.to_json())
        p.poll(0)
    if p.flush(60):
        raise RuntimeError("Kafka did not acknowledge the reference data within 60 s")
    return len(updates)


def read_refdata(settings: Settings, timeout: float = 30.0) -> RefData:
    """The reference data in force: the refdata topic folded from the beginning to its current end."""
    rd = RefData()
    topic = settings.topic("refdata")
    c = consumer(settings, group_id=f"refdata-reader-{time.time_ns()}", **{"enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        ends = {}
        for p in (md.partitions if md else {}):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi > lo:
                ends[p] = hi
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for msg in c.consume(500, timeout=0.5):
                if msg.error():
                    continue
                if msg.value() is not None:
                    rd.apply(Update.from_json(msg.value()))
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
    finally:
        c.close()
    return rd


load_local_refdata = read_refdata


def drug_form(route: str, name: str, spec: str = "") -> str:
    """The dosage-form class the 麻精 limits use: injection, sustained (控缓释) or oral."""
    if route in INJECTION_ROUTES:
        return "injection"
    if any(w in name or w in spec for w in ("缓释", "控释")):
        return "sustained"
    return "oral"


def rule_context(rd: RefData) -> RuleContext:
    """What the rule templates need from the registries and the drug catalogue."""
    return RuleContext(
        prescribers={
            p.code: Prescriber(
                title=p.title, institutions=list(p.institutions), scopes=[p.scope],
                role="pharmacist" if p.pharmacist else "physician",
            )
            for p in rd.practitioners()
        },
        drugs={
            d.code: DrugInfo(
                name=d.generic_name, antibiotic_tier=d.antibiotic_tier, controlled_class=d.controlled_class,
                form=drug_form(d.route, d.generic_name, d.spec),
            )
            for d in rd.rows("drugs")
        },
        institutions={i.code: InstitutionInfo(level=i.level, type=i.type, internet=i.type == "internet") for i in rd.institutions()},
        version=rd.version,
    )
