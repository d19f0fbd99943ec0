"""Rules as data: packs, rules, test cases and the reference-data context (pydantic, YAML/JSON).

A *pack* is one YAML file in rules/packs/ (or a message on the compacted ``rules`` topic):
``id``, ``version``, optional ``defaults`` merged into every rule, and ``rules``. A *rule* names a
logic template (rules/templates/) and gives it ``params`` (knowledge points: national codes,
limits) plus metadata in the shape of the NHSA 两库 framework (category, result type, severity,
stages, scenes, time window, institution levels/types, insurance types, legal basis, validity).
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

PACKS_DIR = Path(__file__).resolve().parent / "packs"

Category = Literal["政策", "管理", "医疗"]
Stage = Literal["事前", "事中", "事后"]
MedType = Literal["outpatient", "emergency", "inpatient", "internet"]


class Case(BaseModel):
    """One test record: overrides (``set``, dotted paths like ``items.0.med_list_codg``) on a base
    standardized record, optional prior records for the patient's history, optional context
    overrides."""

    model_config = ConfigDict(extra="forbid")

    base: Literal["encounter", "prescription", "charge"] | None = None
    set: dict[str, Any] = {}
    history: list["Case"] = []
    note: str = ""


class Cases(BaseModel):
    fire: list[Case] = []
    pass_: list[Case] = Field(default=[], alias="pass")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z][A-Z0-9_-]{2,40}$")
    version: int = Field(ge=1)
    name: str
    category: Category
    subject: str
    template: str
    result_type: Literal["明确", "可疑"]
    severity: Literal["提示", "预警", "违规"]
    warn_level: int = Field(default=2, ge=1, le=5)
    stages: list[Stage] = ["事前", "事中", "事后"]
    scenes: list[MedType] = []  # empty: every scene
    window: str = "encounter"  # 时间区间: encounter / day / hours:N / days:N / month / year (informative; templates read params)
    institution_levels: list[int] = []  # empty: every level
    institution_types: list[str] = []
    insutypes: list[str] = []
    basis: str
    effective_from: date = date(2000, 1, 1)
    effective_to: date | None = None
    message: str = ""  # 中文 summary; the template adds the specifics
    params: dict[str, Any] = {}
    cases: Cases = Cases()

    def effective_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


class Pack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,60}$")
    version: str
    name: str = ""
    description: str = ""
    rules: list[Rule]
    source: str = Field(default="", exclude=True)  # file it was loaded from (not published)

    def to_json(self) -> bytes:
        """The pack as one JSON message (for the compacted ``rules`` topic, key = pack id)."""
        return self.model_dump_json(by_alias=True, exclude={"source"}).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "Pack":
        return cls.model_validate_json(data)


class Prescriber(BaseModel):
    title: Literal["senior", "intermediate", "junior"]
    institutions: list[str] = []
    scopes: list[str] = []  # 执业范围, e.g. 内科, 外科, 中医, 全科
    role: Literal["physician", "pharmacist", "nurse"] = "physician"
    status: Literal["active", "suspended"] = "active"


class DrugInfo(BaseModel):
    name: str = ""
    antibiotic_tier: Literal["none", "unrestricted", "restricted", "special"] = "none"
    controlled_class: Literal["none", "narcotic", "psychotropic1", "psychotropic2"] = "none"
    form: str = ""  # injection / sustained (控缓释) / oral / ...


class InstitutionInfo(BaseModel):
    level: int = 0
    type: str = ""
    internet: bool = False


class RuleContext(BaseModel):
    """Reference data the templates need, filled from the ``refdata`` topic by the processor (or
    from rules/packs/_context.yaml for ``yijian rules test``)."""

    prescribers: dict[str, Prescriber] = {}
    drugs: dict[str, DrugInfo] = {}
    institutions: dict[str, InstitutionInfo] = {}
    version: str = ""


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def pack_from_data(data: dict, source: str = "") -> Pack:
    """Build a pack from its YAML/JSON data, merging ``defaults`` into each rule."""
    data = dict(data)
    defaults = data.pop("defaults", {}) or {}
    rules = []
    for raw in data.get("rules", []) or []:
        merged = copy.deepcopy(defaults)
        merged.update(raw)
        rules.append(merged)
    data["rules"] = rules
    return Pack.model_validate({**data, "source": source})


def load_pack(path: str | Path) -> Pack:
    """Load one pack file (YAML or JSON)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return pack_from_data(data, source=str(path))


def pack_files(folder: str | Path = PACKS_DIR) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.yaml") if not p.name.startswith("_"))


def load_packs(folder: str | Path = PACKS_DIR) -> list[Pack]:
    """Every pack in a folder (files starting with ``_`` are fixtures, not packs)."""
    return [load_pack(p) for p in pack_files(folder)]


def load_fixture(folder: str | Path = PACKS_DIR) -> tuple[RuleContext, dict[str, dict]]:
    """The synthetic reference data and base standardized records of ``_context.yaml``."""
    data = load_yaml(Path(folder) / "_context.yaml")
    return RuleContext.model_validate(data.get("context", {})), data.get("bases", {})
