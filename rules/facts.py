"""What the templates see of one standardized record: :class:`Facts` and its :class:`Line` items.

A standardized record (processors/contracts.py) arrives as a dict (JSON from the internal topic:
times as ISO strings, money as strings) or as already-typed values. Prescriptions and charges do
not carry the encounter's insurance type, diagnoses or operations; they come from an optional
``encounter`` context on the record (added by the processor or the hospital SDK) or, failing that,
from the patient's history (the encounter with the same ``mdtrt_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from yijian.rules.model import RuleContext

UTC = timezone.utc
HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")  # a naive time from a HIS is Beijing time (as in schemas/models.py)


def as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=HOSPITAL_TZ)
    return dt


def as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def as_decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


@dataclass(slots=True)
class Line:
    """One drug, service item or consumable of a record (prescription item or charge line)."""

    code: str  # national code (med_list_codg); "" if unmapped
    kind: str  # drug / service / consumable
    record_type: str  # prescription_item / charge
    record_id: str
    name: str = ""
    qty: Decimal = Decimal(0)
    price: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    days: int = 0
    sin_dos: Decimal = Decimal(0)
    route: str = ""
    freq: str = ""
    antibiotic_tier: str = "none"
    controlled_class: str = "none"
    form: str = ""

    def as_dict(self) -> dict:
        return {
            "code": self.code, "kind": self.kind, "name": self.name, "qty": self.qty, "price": self.price,
            "amount": self.amount, "days": self.days, "sin_dos": self.sin_dos, "route": self.route,
            "freq": self.freq, "antibiotic_tier": self.antibiotic_tier, "controlled_class": self.controlled_class,
            "form": self.form,
        }


@dataclass
class Facts:
    raw: dict
    record_type: str
    record_id: str
    version: int
    status: str
    institution: str
    county: str
    city: str
    level: int
    inst_type: str
    med_type: str
    event_time: datetime
    pseudonym: str
    sex: str
    age: int
    birth_date: date | None
    mdtrt_id: str
    insutype: str | None = None
    diagnoses: list[str] | None = None  # ICD-10 codes; None = unknown
    operations: list[str] | None = None
    dept: str = ""
    practitioner: str = ""
    pharmacist: str | None = None
    rx_kind: str = ""
    online: bool = False
    chronic: bool = False
    long_rx_reason: str | None = None
    first_visit: bool | None = None
    planned_readmission: bool | None = None
    begntime: datetime | None = None
    endtime: datetime | None = None
    amount: Decimal = Decimal(0)
    lines: list[Line] = field(default_factory=list)

    @property
    def event_date(self) -> date:
        return self.event_time.date()

    @property
    def age_days(self) -> int | None:
        if self.birth_date is None:
            return None
        return (self.event_date - self.birth_date).days

    def los(self) -> int | None:
        """住院天数 (HQMS 病案首页 B20): same day = 1, else discharge date − admission date."""
        if self.begntime is None or self.endtime is None:
            return None
        return max(1, (self.endtime.date() - self.begntime.date()).days)

    def env(self) -> dict[str, Any]:
        """Names the expression template can read."""
        return {
            "record_type": self.record_type, "med_type": self.med_type, "sex": self.sex, "age": self.age,
            "age_days": self.age_days, "insutype": self.insutype, "level": self.level, "inst_type": self.inst_type,
            "dept": self.dept, "diagnoses": self.diagnoses or [], "operations": self.operations or [],
            "rx_kind": self.rx_kind, "online": self.online, "chronic": self.chronic, "first_visit": self.first_visit,
            "planned_readmission": self.planned_readmission, "los": self.los(), "amount": self.amount,
            "items": [ln.as_dict() for ln in self.lines], "n_items": len(self.lines),
            "fund_pay": as_decimal(self.raw.get("fund_pay_sumamt", self.raw.get("fund_pay_amt"))),
            "selfpay": as_decimal(self.raw.get("psn_selfpay_amt", self.raw.get("fulamt_ownpay_amt"))),
        }


def _encounter_context(record: dict, history: Any) -> dict | None:
    ctx = record.get("encounter")
    if isinstance(ctx, dict):
        return ctx
    if history is not None and record.get("mdtrt_id"):
        return history.encounter(record.get("institution_code") or record["meta"]["institution_code"], record["mdtrt_id"])
    return None


def build_facts(record: dict, context: RuleContext, history: Any = None) -> Facts:
    """Turn a standardized record (dict) into :class:`Facts`."""
    meta = record["meta"]
    patient = record.get("patient") or {}
    rtype = meta["record_type"]
    inst = record.get("institution_code") or meta["institution_code"]
    f = Facts(
        raw=record,
        record_type=rtype,
        record_id=str(record.get("record_id", "")),
        version=int(record.get("version", 1)),
        status=record.get("status", "normal"),
        institution=inst,
        county=meta.get("county_code", ""),
        city=meta.get("city_code", ""),
        level=int(meta.get("institution_level") or 0),
        inst_type=meta.get("institution_type", ""),
        med_type=record.get("med_type", ""),
        event_time=as_datetime(meta["event_time"]),
        pseudonym=patient.get("pseudonym", ""),
        sex=str(patient.get("sex", "0")),
        age=int(patient.get("age", 0)),
        birth_date=as_date(patient.get("birth_date")),
        mdtrt_id=str(record.get("mdtrt_id") or record.get("record_id", "")),
    )
    if not f.level and inst in context.institutions:
        f.level = context.institutions[inst].level
    if rtype == "encounter":
        f.insutype = record.get("insutype")
        f.diagnoses = [d.get("icd_code") or "" for d in record.get("diagnoses") or []]
        f.operations = [o.get("icd9_code") or "" for o in record.get("operations") or []]
        f.dept = record.get("dept_std") or record.get("dept_code", "")
        f.practitioner = record.get("atddr_code", "")
        f.first_visit = record.get("fst_visit_flag")
        f.planned_readmission = record.get("rinp_plan_flag")
        f.begntime = as_datetime(record.get("begntime"))
        f.endtime = as_datetime(record.get("endtime"))
        f.amount = as_decimal(record.get("medfee_sumamt"))
        return f
    ctx = _encounter_context(record, history)
    if ctx:
        f.insutype = ctx.get("insutype")
        if ctx.get("diagnoses") is not None:
            f.diagnoses = [d if isinstance(d, str) else (d.get("icd_code") or "") for d in ctx["diagnoses"]]
        if ctx.get("operations") is not None:
            f.operations = [o if isinstance(o, str) else (o.get("icd9_code") or "") for o in ctx["operations"]]
        f.first_visit = ctx.get("fst_visit_flag", ctx.get("first_visit"))
        f.begntime = as_datetime(ctx.get("begntime"))
        f.endtime = as_datetime(ctx.get("endtime"))
    drugs = context.drugs
    if rtype == "prescription":
        f.dept = record.get("dept_std") or record.get("dept_code", "")
        f.practitioner = record.get("prsc_dr_code", "")
        f.pharmacist = record.get("phar_code")
        f.rx_kind = record.get("rx_kind", "")
        f.online = bool(record.get("online_flag"))
        f.chronic = bool(record.get("chronic_flag"))
        f.long_rx_reason = record.get("long_rx_reason")
        total = Decimal(0)
        for it in record.get("items") or []:
            code = it.get("med_list_codg") or ""
            info = drugs.get(code)
            amt = as_decimal(it.get("det_item_fee_sumamt"))
            total += amt
            tier = it.get("antibiotic_tier", "none")
            ctrl = it.get("controlled_class", "none")
            f.lines.append(Line(
                code=code, kind="drug", record_type="prescription_item", record_id=f"{f.record_id}#{it.get('item_no', 0)}",
                name=it.get("drug_name", ""), qty=as_decimal(it.get("cnt")), price=as_decimal(it.get("pric")), amount=amt,
                days=int(it.get("prd_days") or 0), sin_dos=as_decimal(it.get("sin_doscnt")), route=it.get("drug_route", ""),
                freq=it.get("used_frqu", ""),
                antibiotic_tier=info.antibiotic_tier if info and info.antibiotic_tier != "none" else tier,
                controlled_class=info.controlled_class if info and info.controlled_class != "none" else ctrl,
                form=info.form if info else "",
            ))
        f.amount = total
    elif rtype == "charge":
        f.dept = record.get("dept_std") or record.get("bilg_dept_codg", "")
        f.practitioner = record.get("bilg_dr_codg", "")
        code = record.get("med_list_codg") or ""
        info = drugs.get(code)
        amt = as_decimal(record.get("det_item_fee_sumamt"))
        f.amount = amt
        f.lines.append(Line(
            code=code, kind=record.get("item_type", "service"), record_type="charge", record_id=f.record_id,
            name=record.get("item_name", ""), qty=as_decimal(record.get("cnt")), price=as_decimal(record.get("pric")),
            amount=amt, antibiotic_tier=info.antibiotic_tier if info else "none",
            controlled_class=info.controlled_class if info else "none", form=info.form if info else "",
        ))
    return f
