"""Reference data on the compacted ``refdata`` topic (key ``<table>:<partition>``, value an
:class:`~yijian.refdata.catalog.Update`): code maps, institution and practitioner registries,
catalogues. Publishing changes every running processor without a restart; each update replaces one
partition of one table (e.g. one institution's code map).
"""

from __future__ import annotations

from pathlib import Path

from yijian.config import Settings
from yijian.kafka import producer, read_to_end
from yijian.refdata.catalog import TABLES, RefData, Update, load_csv
from yijian.rules.model import DrugInfo, InstitutionInfo, Prescriber, RuleContext

INJECTION_ROUTES = {"iv", "im", "ih", "ivgtt", "inj"}
RULE_CONTEXT_TABLES = {"practitioners", "drugs", "institutions"}  # what rule_context() reads


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

    def fold(msg) -> None:
        if msg.value() is not None:
            rd.apply(Update.from_json(msg.value()))

    read_to_end(settings, settings.topic("refdata"), fold, timeout)
    return rd


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
