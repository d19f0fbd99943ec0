"""The reference data the processors use: registries, catalogues and per-institution code maps.

Tables (one CSV each, columns documented in README.md): ``institutions``, ``practitioners``,
``code_maps``, ``drugs``, ``diagnoses``, ``operations``, ``services``, ``consumables``, ``departments``.

Rows are grouped in *partitions*: code maps and institution-bound rows by institution code, national
catalogues in the single partition ``*``. An :class:`Update` replaces (or deletes) one partition of one
table, so it can travel on the compacted ``refdata`` topic with key ``<table>:<partition>`` and the
latest message per key is the full state of that partition. :meth:`RefData.apply` applies it in place.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yijian.refdata.regions import RegionTable, load_regions

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"

CodeKind = Literal["diagnosis", "operation", "drug", "service", "consumable", "department"]
CODE_KINDS: tuple[str, ...] = ("diagnosis", "operation", "drug", "service", "consumable", "department")


class Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_default(cls, v: Any, info) -> Any:
        if v == "" and info.field_name in cls.model_fields and cls.model_fields[info.field_name].annotation not in (str,):
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return v


def _split(v: Any) -> Any:
    if isinstance(v, str):
        return tuple(x.strip() for x in v.split(";") if x.strip())
    return v


class Institution(Row):
    code: str = Field(pattern=r"^[HP]\d{11}$")
    name: str
    county_code: str
    city_code: str = ""
    level: int = Field(ge=0, le=3)  # 1 一级, 2 二级, 3 三级; 0 未定级
    type: Literal["general", "tcm", "specialty", "internet", "maternal_child", "community", "pharmacy"] = "general"
    connected_since: date | None = None
    uscc: str = ""


class Practitioner(Row):
    code: str
    name: str = ""
    title: Literal["senior", "intermediate", "junior"] = "junior"
    institutions: tuple[str, ...] = ()
    scope: Literal["临床", "中医", "口腔", "公卫", "药学", "护理"] = "临床"
    antibiotic_tier: Literal["none", "unrestricted", "restricted", "special"] = "unrestricted"
    controlled_right: bool = False
    pharmacist: bool = False

    _inst = field_validator("institutions", mode="before")(lambda cls, v: _split(v))


class CodeMapEntry(Row):
    institution_code: str
    kind: CodeKind
    local_code: str
    national_code: str
    local_name: str = ""


class Drug(Row):
    code: str
    generic_name: str
    kind: Literal["western", "tcm_patent", "tcm_decoction"]
    antibiotic_tier: Literal["none", "unrestricted", "restricted", "special"] = "none"
    controlled_class: Literal["none", "narcotic", "psychotropic1", "psychotropic2"] = "none"
    sex: Literal["", "1", "2"] = ""  # restricted to this sex (药品区分性别使用)
    chronic: bool = False
    route: str = "po"
    spec: str = ""
    dose: str = "1"
    dose_unit: str = ""
    cnt_unit: str = ""
    price_ceiling: float | None = None
    frequency: str = "tid"
    scene: str = "any"  # any / inpatient (限住院)
    incompatible_with: tuple[str, ...] = ()  # generic names (十八反/十九畏)
    restriction: str = ""  # 限定支付范围/使用限制 (e.g. 限儿童, 限工伤保险, 妊娠期禁用): rule packs hold the logic


    _inc = field_validator("incompatible_with", mode="before")(lambda cls, v: _split(v))


class DiagnosisEntry(Row):
    code: str
    name: str
    sex: Literal["", "1", "2"] = ""
    age_min: int | None = None
    age_max: int | None = None
    chronic: bool = False
    scene: str = "any"
    department: str = ""


class OperationEntry(Row):
    code: str
    name: str
    sex: Literal["", "1", "2"] = ""


class ServiceItem(Row):
    code: str
    name: str
    category: str = ""
    unit: str = "次"
    price_ceiling: float | None = None
    daily_limit: int | None = None
    scene: str = "any"


class Consumable(Row):
    code: str
    name: str
    unit: str = ""
    price_ceiling: float | None = None


class Department(Row):
    code: str
    name: str
    scope: str = "临床"


TABLES: dict[str, type[Row]] = {
    "institutions": Institution,
    "practitioners": Practitioner,
    "code_maps": CodeMapEntry,
    "drugs": Drug,
    "diagnoses": DiagnosisEntry,
    "operations": OperationEntry,
    "services": ServiceItem,
    "consumables": Consumable,
    "departments": Department,
}
CATALOGUES = ("drugs", "diagnoses", "operations", "services", "consumables", "departments")


def row_key(table: str, row: Row) -> str:
    if table == "code_maps":
        return f"{row.kind}:{row.local_code}"  # type: ignore[attr-defined]
    return row.code  # type: ignore[attr-defined]


def row_partition(table: str, row: Row) -> str:
    """Default partition of a row: the institution for institution-bound tables, ``*`` otherwise."""
    if table == "code_maps":
        return row.institution_code  # type: ignore[attr-defined]
    if table == "institutions":
        return row.code  # type: ignore[attr-defined]
    if table == "practitioners":
        return row.institutions[0] if row.institutions else "*"  # type: ignore[attr-defined]
    return "*"


def load_csv(path: str | Path, table: str) -> list[Row]:
    """Rows of ``table`` from a CSV file (UTF-8, header row; multi-valued cells separated by ``;``)."""
    model = TABLES.get(table)
    if model is None:
        raise ValueError(f"未知参考数据表 {table!r} / unknown reference table {table!r}; known: {', '.join(TABLES)}")
    rows: list[Row] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for n, rec in enumerate(csv.DictReader(f), start=2):
            try:
                rows.append(model.model_validate(rec))
            except Exception as exc:
                raise ValueError(f"{path}:{n}: 第{n}行无效 / invalid row {n} of table {table}: {exc}") from exc
    return rows


class Update(BaseModel):
    """A full replacement (``op=replace``) or removal (``op=delete``) of one partition of one table."""

    table: str
    partition: str = "*"
    op: Literal["replace", "delete"] = "replace"
    version: str = ""
    rows: list[dict[str, Any]] = []

    @property
    def key(self) -> str:
        """Kafka key on the compacted ``refdata`` topic."""
        return f"{self.table}:{self.partition}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Update":
        return cls.model_validate(d)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "Update":
        return cls.model_validate_json(data)


class RefData:
    """All reference tables with fast lookups. Build with :meth:`from_rows`, :meth:`from_csv_dir` or
    :meth:`fixtures`; change with :meth:`apply`."""

    def __init__(self, regions: RegionTable | None = None, version: str = ""):
        self.regions = regions or load_regions()
        self.version = version
        self._parts: dict[str, dict[str, dict[str, Row]]] = {t: {} for t in TABLES}
        self._index: dict[str, dict[str, Row]] = {t: {} for t in TABLES}
        # code maps: institution -> kind -> local -> national
        self._maps: dict[str, dict[str, dict[str, str]]] = {}
        self._prac_at: dict[str, set[str]] = {}

    # --- building ----------------------------------------------------------------------------------
    @classmethod
    def from_rows(cls, tables: dict[str, Iterable[Row]], regions: RegionTable | None = None, version: str = "") -> "RefData":
        rd = cls(regions, version)
        for table, rows in tables.items():
            by_part: dict[str, dict[str, Row]] = {}
            for row in rows:
                by_part.setdefault(row_partition(table, row), {})[row_key(table, row)] = row
            rd._parts[table].update(by_part)
            rd._reindex(table, list(by_part))
        if not version:
            rd.version = rd.fingerprint()
        return rd

    @classmethod
    def from_csv_dir(cls, folder: str | Path, regions: RegionTable | None = None, version: str = "") -> "RefData":
        """Load every ``<table>.csv`` present in ``folder``."""
        folder = Path(folder)
        tables = {t: load_csv(folder / f"{t}.csv", t) for t in TABLES if (folder / f"{t}.csv").exists()}
        return cls.from_rows(tables, regions, version)

    @classmethod
    def fixtures(cls) -> "RefData":
        """The shipped synthetic national catalogues (no institutions, practitioners or code maps)."""
        return cls.from_csv_dir(FIXTURES)

    def apply(self, update: Update | dict[str, Any]) -> None:
        """Apply one update in place (replace or delete one partition of one table)."""
        if isinstance(update, dict):
            update = Update.from_dict(update)
        model = TABLES.get(update.table)
        if model is None:
            raise ValueError(f"未知参考数据表 {update.table!r} / unknown reference table {update.table!r}")
        if update.op == "delete":
            self._parts[update.table].pop(update.partition, None)
        else:
            rows = [model.model_validate(r) for r in update.rows]
            self._parts[update.table][update.partition] = {row_key(update.table, r): r for r in rows}
        self._reindex(update.table, [update.partition])
        if update.version:
            self.version = update.version

    def _reindex(self, table: str, partitions: list[str]) -> None:
        if table == "code_maps":
            for p in partitions:
                part = self._parts[table].get(p)
                if part is None:
                    self._maps.pop(p, None)
                    continue
                m: dict[str, dict[str, str]] = {k: {} for k in CODE_KINDS}
                for row in part.values():
                    m[row.kind][row.local_code] = row.national_code  # type: ignore[attr-defined]
                self._maps[p] = m
            return
        idx: dict[str, Row] = {}
        for part in self._parts[table].values():
            idx.update(part)
        self._index[table] = idx
        if table == "practitioners":
            self._prac_at = {code: set(r.institutions) for code, r in idx.items()}  # type: ignore[attr-defined]

    # --- export ------------------------------------------------------------------------------------
    def to_updates(self, version: str | None = None) -> list[Update]:
        """One update per (table, partition): what to publish to the compacted ``refdata`` topic."""
        v = self.version if version is None else version
        out = []
        for table, parts in self._parts.items():
            for p, rows in sorted(parts.items()):
                out.append(Update(table=table, partition=p, version=v,
                                  rows=[r.model_dump(mode="json") for r in rows.values()]))
        return out

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for table, parts in sorted(self._parts.items()):
            for p, rows in sorted(parts.items()):
                for k in sorted(rows):
                    h.update(f"{table}|{p}|{rows[k].model_dump_json()}\n".encode())
        return h.hexdigest()[:16]

    def rows(self, table: str) -> list[Row]:
        return list(self._index[table].values())

    # --- lookups -----------------------------------------------------------------------------------
    def map_code(self, institution: str, kind: str, local_code: str) -> str | None:
        """National code for an institution's local code, None if unmapped."""
        m = self._maps.get(institution)
        return m[kind].get(local_code) if m else None

    def code_map(self, institution: str, kind: str) -> dict[str, str]:
        m = self._maps.get(institution)
        return dict(m[kind]) if m else {}

    def institution(self, code: str) -> Institution | None:
        return self._index["institutions"].get(code)  # type: ignore[return-value]

    def practitioner(self, code: str) -> Practitioner | None:
        return self._index["practitioners"].get(code)  # type: ignore[return-value]

    def registered_at(self, practitioner: str, institution: str) -> bool:
        return institution in self._prac_at.get(practitioner, ())

    def drug(self, code: str) -> Drug | None:
        return self._index["drugs"].get(code)  # type: ignore[return-value]

    def diagnosis(self, code: str) -> DiagnosisEntry | None:
        return self._index["diagnoses"].get(code)  # type: ignore[return-value]

    def operation(self, code: str) -> OperationEntry | None:
        return self._index["operations"].get(code)  # type: ignore[return-value]

    def service(self, code: str) -> ServiceItem | None:
        return self._index["services"].get(code)  # type: ignore[return-value]

    def consumable(self, code: str) -> Consumable | None:
        return self._index["consumables"].get(code)  # type: ignore[return-value]

    def department(self, code: str) -> Department | None:
        return self._index["departments"].get(code)  # type: ignore[return-value]

    def institutions(self) -> list[Institution]:
        return list(self._index["institutions"].values())  # type: ignore[return-value]

    def practitioners(self) -> list[Practitioner]:
        return list(self._index["practitioners"].values())  # type: ignore[return-value]

    def region_of(self, institution: str) -> tuple[str, str]:
        """(current county code, current prefecture code) of an institution ('' when unknown).
        Uses the registry when present, else the region digits of the institution code."""
        inst = self.institution(institution)
        county = inst.county_code if inst else institution[1:7]
        cur = self.regions.county_of(county)
        return cur, self.regions.city_of(county)
