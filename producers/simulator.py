"""Simulator of a province's hospitals, with injected faults and a ground-truth file.

:func:`simulate` builds N institutions over the province's prefectures and counties (from the region
table; Guizhou is the shipped one), each with its own local code maps, practitioners and prices, then
generates encounters, prescriptions and charge lines inside the window ``[now - hours, now]`` with
realistic lags, injects the configured faults, and returns a :class:`SimResult`:

- ``result.refdata``: the :class:`~yijian.refdata.RefData` the platform must load (registries,
  catalogues, code maps — the deliberately unmapped local codes are left out);
- ``result.events``: every record in emit-time order as :class:`SimEvent` (``emit_time``,
  ``institution_code``, ``record_type``, ``record``, ``skip``, ``seq``); ``result.by_institution``
  groups them by institution; ``iter(result)`` yields ``(institution_code, record_type, record, skip)``;
- ``result.ground_truth``: what the platform must find (see README.md), written by
  :meth:`SimResult.write_ground_truth` or ``simulate(ground_truth_path=...)``.

Sequence numbers: per (institution, record type), 1, 2, 3 ... in emit order, *counting skipped
records*. A producer that sends the events in order must number them the same way (``event.seq``) and
simply not send the ones with ``skip=True``: those are the sequence gaps of the ground truth.

Timeliness: ``late`` records have an event time more than ``sla_hours`` before their emit time; every
other record's event time is inside the window. Publishing in real time right after ``now`` keeps the
ground truth exact as long as publishing ends before ``now + sla_hours - hours``; a replay that stamps
each envelope's sent time with ``event.emit_time`` is exact regardless.

Every fault rate is the fraction of *encounters* (an encounter with all its prescriptions and charge
lines) that carry that fault; an encounter carries at most one fault, so rates must sum to <= 1.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from yijian.refdata.catalog import (
    CodeMapEntry,
    Institution,
    Practitioner,
    RefData,
    Update,
)
from yijian.refdata.formats import generic_key
from yijian.refdata.identity import corrupt_check_digit, make_resident_id, make_uscc
from yijian.refdata.regions import RegionTable, load_regions
from yijian.schemas.models import (
    HOSPITAL_TZ,
    Charge,
    Diagnosis,
    Encounter,
    Operation,
    PatientIdentity,
    Prescription,
    PrescriptionItem,
)

GROUND_TRUTH_FORMAT = "yijian.simulator.ground_truth/1"

# fault name -> (category, expected outcome code, dimension / subject description)
QUALITY_FAULTS: dict[str, tuple[str, str]] = {
    "invalid_id_number": ("validity", "patient.certno"),
    "sex_mismatch": ("consistency", "patient.gend"),
    "discharge_before_admission": ("consistency", "endtime"),
    "amount_mismatch": ("consistency", "det_item_fee_sumamt"),
    "missing_field": ("completeness", ""),
    "late": ("timeliness", "event_time"),
    "unmapped_code": ("mapping", ""),
    "seq_gap": ("integrity", ""),
}
VERSION_FAULTS = ("correction", "cancellation")
RULE_FAULTS: dict[str, str] = {
    "drug_sex_restriction": "药品区分性别使用 / drug restricted to the other sex",
    "special_antibiotic_outpatient": "特殊使用级抗菌药物门诊使用 / special-tier antibiotic in outpatient",
    "too_many_drugs": "每张处方超过5种药品 / more than 5 drugs on one prescription",
    "outpatient_days_exceeded": "门诊处方超过7日用量且未注明慢病 / outpatient days supplied > 7 without chronic flag",
    "readmission_15d": "出院15日内再住院(非计划) / unplanned readmission within 15 days",
    "duplicate_prescription": "跨机构重复开药 / same drug at two institutions within the days supplied",
    "internet_first_visit_rx": "互联网首诊开具处方 / prescription at an internet first visit",
    "online_rx_no_pharmacist": "互联网处方无药师审核 / online prescription without pharmacist review",
}
# the rule (rules/packs/*.yaml) that must find each injected violation; ground truth names it as ``rule_id``
RULE_IDS: dict[str, str] = {
    "special_antibiotic_outpatient": "AB-002",
    "too_many_drugs": "RX-003",
    "outpatient_days_exceeded": "RX-001",
    "readmission_15d": "BH-009",
    "duplicate_prescription": "BH-003",
    "internet_first_visit_rx": "IH-001",
    "online_rx_no_pharmacist": "IH-002",
}
SEX_RULE_IDS: dict[str, str] = {"1": "NH-A01", "2": "NH-A01B"}  # drug_sex_restriction: by the drug's sex
FAULTS: tuple[str, ...] = tuple(QUALITY_FAULTS) + VERSION_FAULTS + tuple(RULE_FAULTS)
DEFAULT_FAULT_RATE = 0.01

MED_TYPE_MIX = {"outpatient": 0.78, "emergency": 0.07, "inpatient": 0.11, "internet": 0.04}
FAULT_MED_TYPE = {
    "discharge_before_admission": "inpatient",
    "drug_sex_restriction": "outpatient",
    "special_antibiotic_outpatient": "outpatient",
    "too_many_drugs": "outpatient",
    "outpatient_days_exceeded": "outpatient",
    "readmission_15d": "inpatient",
    "duplicate_prescription": "outpatient",
    "internet_first_visit_rx": "internet",
    "online_rx_no_pharmacist": "internet",
    "amount_mismatch": "outpatient",
    "seq_gap": "outpatient",
    "correction": "outpatient",
    "cancellation": "outpatient",
}
CENT = Decimal("0.01")
OTHER_PROVINCE_REGIONS = ("510104", "530102", "430102", "440106", "500103", "450103", "330106", "110105")
PREFECTURE_WEIGHT = {"520100": 6, "520300": 6, "520500": 6, "522600": 4, "522700": 3, "520600": 3, "522300": 3, "520400": 2, "520200": 3}


class SimEvent(NamedTuple):
    emit_time: datetime
    institution_code: str
    record_type: str
    record: Any
    skip: bool
    seq: int


@dataclass
class SimResult:
    events: list[SimEvent]
    refdata: RefData
    ground_truth: dict[str, Any]
    seconds: float = 0.0

    def __iter__(self) -> Iterator[tuple[str, str, Any, bool]]:
        """(institution_code, record_type, record, skip) in emit-time order."""
        for e in self.events:
            yield e.institution_code, e.record_type, e.record, e.skip

    def iter_timed(self) -> Iterator[SimEvent]:
        return iter(self.events)

    @property
    def by_institution(self) -> dict[str, list[SimEvent]]:
        out: dict[str, list[SimEvent]] = {}
        for e in self.events:
            out.setdefault(e.institution_code, []).append(e)
        return out

    def refdata_updates(self) -> list[Update]:
        return self.refdata.to_updates()

    def write_ground_truth(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.ground_truth, ensure_ascii=False, indent=1))
        return path


def _money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class _Inst:
    row: Institution
    weight: float
    doctors: dict[str, list[Practitioner]] = field(default_factory=dict)  # scope -> doctors
    pharmacists: list[Practitioner] = field(default_factory=list)
    local: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> national -> local
    names: dict[str, str] = field(default_factory=dict)
    price: dict[str, Decimal] = field(default_factory=dict)  # national code -> unit price
    fund_ratio: Decimal = Decimal("0.7")
    unmapped_n: int = 0


class _Sim:
    def __init__(self, institutions: int, encounters: int, seed: int, now: datetime, hours: float, sla_hours: float,
                 faults: dict[str, float], regions: RegionTable, readmission_days: int):
        self.rng = random.Random(seed)
        self.n_inst = institutions
        self.n_enc = encounters
        self.seed = seed
        self.now = now
        self.start = now - timedelta(hours=hours)
        self.hours = hours
        self.sla = timedelta(hours=sla_hours)
        self.faults = faults
        self.regions = regions
        self.readmission_days = readmission_days
        self.cat = RefData.fixtures()
        self.catalogue_drugs = self.cat.rows("drugs")
        # the simulated prescribers keep to drugs without a 限定支付范围/使用限制 (rule knowledge points)
        self.drugs = [d for d in self.catalogue_drugs if not d.restriction]
        self.diags = self.cat.rows("diagnoses")
        self.services = {r.code: r for r in self.cat.rows("services")}
        self.consumables = self.cat.rows("consumables")
        self.depts = {r.code: r for r in self.cat.rows("departments")}
        self.events: list[list] = []  # [emit, order, inst, rtype, record, skip]
        self.gt: list[dict] = []
        self.unmapped: list[dict] = []
        self.counter = 0
        self.fault_units = {f: 0 for f in FAULTS}
        self.skip_ids: set[tuple[str, str]] = set()
        self._ids: dict[str, int] = {}

    # --- world -------------------------------------------------------------------------------------
    def build_world(self) -> None:
        rng = self.rng
        prefs = sorted(r.code for r in self.regions.prefectures())
        counties = sorted(self.regions.counties(), key=lambda r: r.code)
        seat = {p: min((c for c in counties if c.parent == p), key=lambda c: c.code) for p in prefs}
        county_seq: dict[str, int] = {}
        self.insts: list[_Inst] = []
        n_internet = max(1, self.n_inst // 60)
        pref_w = [PREFECTURE_WEIGHT.get(p, 3) for p in prefs]
        for i in range(self.n_inst):
            internet = i >= self.n_inst - n_internet
            if internet:
                pref = prefs[0]
                county = seat[pref]
            elif i < len(counties):
                county = counties[i]
                pref = county.parent
            else:
                pref = rng.choices(prefs, pref_w)[0]
                county = rng.choice([c for c in counties if c.parent == pref])
            at_seat = county.code == seat[pref].code
            if internet:
                level, typ = 3, "internet"
            else:
                r = rng.random()
                if i < len(counties):  # every county has a county hospital (二级) at least
                    level = 3 if at_seat and rng.random() < 0.6 else 2
                else:
                    level = 3 if (at_seat and r < 0.2) else (2 if r < 0.45 else 1)
                t = rng.random()
                typ = "tcm" if t < 0.15 else ("specialty" if t < 0.22 and level >= 2 else "general")
            seq = county_seq[county.code] = county_seq.get(county.code, 0) + 1
            code = f"H{county.code}{seq:05d}"
            suffix = {"general": ["人民医院", "第二人民医院", "中心医院", "乡镇卫生院"][min(3, 3 - level) if level < 3 else rng.randrange(3)],
                      "tcm": "中医院", "specialty": "妇幼保健院", "internet": "互联网医院"}[typ]
            name = f"{county.name}{suffix}" if typ != "internet" else f"贵州{['云医', '黔康', '筑医', '健康'][i % 4]}{suffix}{i}"
            connected = (self.now - timedelta(days=rng.randrange(30, 900))).date()
            row = Institution(code=code, name=name, county_code=county.code, city_code=pref, level=level, type=typ,
                              connected_since=connected, uscc=make_uscc(county.code, rng))
            weight = {3: 10.0, 2: 4.0, 1: 1.0}[level] * (0.5 + rng.random())
            inst = _Inst(row, weight, fund_ratio=Decimal({3: "0.65", 2: "0.75", 1: "0.85"}[level]))
            self.insts.append(inst)
        self._practitioners()
        self._code_maps()
        self.by_type = {
            mt: [x for x in self.insts if (x.row.type == "internet") == (mt == "internet") or (mt == "internet" and x.row.level == 3 and x.row.type == "general")]
            for mt in MED_TYPE_MIX
        }
        self.by_type_w = {mt: list(accumulate(x.weight for x in v)) for mt, v in self.by_type.items()}

    def _practitioners(self) -> None:
        rng = self.rng
        n = 0
        self.pracs: list[Practitioner] = []
        for inst in self.insts:
            region = inst.row.code[1:7]
            k = {3: 24, 2: 12, 1: 5}[inst.row.level]
            specs: list[tuple[str, str]] = [("临床", "senior"), ("中医", "intermediate"), ("口腔", "intermediate")]
            for _ in range(k - 3):
                scope = "中医" if (inst.row.type == "tcm" and rng.random() < 0.5) else "临床"
                specs.append((scope, rng.choices(["senior", "intermediate", "junior"], [3, 4, 3])[0]))
            for scope, title in specs:
                n += 1
                tier = {"senior": "special", "intermediate": "restricted", "junior": "unrestricted"}[title]
                p = Practitioner(code=f"D{region}{n:05d}", name=f"医师{n}", title=title, institutions=(inst.row.code,),
                                 scope=scope, antibiotic_tier=tier, controlled_right=title == "senior", pharmacist=False)
                inst.doctors.setdefault(scope, []).append(p)
                self.pracs.append(p)
            for _ in range(1 + (inst.row.level >= 2) + (inst.row.type == "internet")):
                n += 1
                p = Practitioner(code=f"Y{region}{n:05d}", name=f"药师{n}", title="intermediate", institutions=(inst.row.code,),
                                 scope="药学", antibiotic_tier="none", controlled_right=False, pharmacist=True)
                inst.pharmacists.append(p)
                self.pracs.append(p)
        # 多点执业: some doctors also registered at a second institution of the same city
        by_city: dict[str, list[_Inst]] = {}
        for inst in self.insts:
            by_city.setdefault(inst.row.city_code, []).append(inst)
        for inst in self.insts:
            others = [o for o in by_city[inst.row.city_code] if o is not inst and o.row.type != "internet"]
            if not others:
                continue
            for scope, docs in inst.doctors.items():
                for j, d in enumerate(docs):
                    if rng.random() < 0.05:
                        second = rng.choice(others)
                        d2 = d.model_copy(update={"institutions": d.institutions + (second.row.code,)})
                        docs[j] = d2
                        self.pracs[self.pracs.index(d)] = d2
                        second.doctors.setdefault(scope, []).append(d2)

    def _code_maps(self) -> None:
        rng = self.rng
        self.map_rows: list[CodeMapEntry] = []
        kinds = {
            "diagnosis": [(r.code, r.name) for r in self.diags],
            "operation": [(r.code, r.name) for r in self.cat.rows("operations")],
            "drug": [(r.code, r.generic_name) for r in self.catalogue_drugs],
            "service": [(r.code, r.name) for r in self.services.values()],
            "consumable": [(r.code, r.name) for r in self.consumables],
            "department": [(r.code, r.name) for r in self.depts.values()],
        }
        prefix = {"diagnosis": "ZD", "operation": "SS", "drug": "YP", "service": "XM", "consumable": "HC", "department": "KS"}
        prices = {r.code: r.price_ceiling for r in self.catalogue_drugs}
        prices.update({r.code: r.price_ceiling for r in self.services.values()})
        prices.update({r.code: r.price_ceiling for r in self.consumables})
        for idx, inst in enumerate(self.insts):
            style = rng.choices(["national", "prefix", "his", "short"], [15, 40, 30, 15])[0]
            level_factor = {3: 1.0, 2: 0.92, 1: 0.85}[inst.row.level]
            for kind, entries in kinds.items():
                order = list(range(len(entries)))
                rng.shuffle(order)
                m: dict[str, str] = {}
                for pos, j in enumerate(order):
                    nat, name = entries[j]
                    if style == "national" and kind != "department":
                        loc = nat
                    elif style == "prefix":
                        loc = f"{prefix[kind]}{pos + 1:05d}"
                    elif style == "his":
                        loc = f"{idx % 97:02d}{kind[0].upper()}{pos * 7 + 1003:06d}"
                    else:
                        loc = f"{kind[:2]}{pos + 11}"
                    m[nat] = loc
                    inst.names[loc] = name
                    self.map_rows.append(CodeMapEntry(institution_code=inst.row.code, kind=kind, local_code=loc,
                                                      national_code=nat, local_name=name))
                inst.local[kind] = m
            for code, ceiling in prices.items():
                if ceiling is not None:
                    f = Decimal(str(round(level_factor * (0.9 + 0.1 * rng.random()), 3)))
                    inst.price[code] = min(Decimal(str(ceiling)), (Decimal(str(ceiling)) * f).quantize(CENT))

    def refdata(self) -> RefData:
        tables = {t: self.cat.rows(t) for t in ("drugs", "diagnoses", "operations", "services", "consumables", "departments")}
        tables["institutions"] = [i.row for i in self.insts]
        tables["practitioners"] = self.pracs
        tables["code_maps"] = self.map_rows
        return RefData.from_rows(tables, self.regions, version=f"sim-{self.seed}-{self.n_inst}")

    # --- helpers -----------------------------------------------------------------------------------
    def next_id(self, inst: _Inst, kind: str) -> str:
        key = f"{inst.row.code}:{kind}"
        n = self._ids[key] = self._ids.get(key, 0) + 1
        return f"{kind}{inst.row.code[-5:]}{n:07d}"

    def ts(self, t: datetime) -> datetime:
        return t.replace(microsecond=0)

    def rand_time(self, lo: datetime, hi: datetime) -> datetime:
        span = max(1, int((hi - lo).total_seconds()))
        return self.ts(lo + timedelta(seconds=self.rng.randrange(span)))

    def pick_inst(self, med_type: str, exclude: _Inst | None = None) -> _Inst:
        pool, cum = self.by_type[med_type], self.by_type_w[med_type]
        while True:
            inst = pool[min(len(pool) - 1, bisect(cum, self.rng.random() * cum[-1]))]
            if inst is not exclude:
                return inst

    def emit(self, emit_time: datetime, inst: _Inst, rtype: str, record: Any, skip: bool = False) -> None:
        self.counter += 1
        self.events.append([min(emit_time, self.now), self.counter, inst.row.code, rtype, record, skip])

    def fault(self, name: str, unit: str, inst: _Inst, rtype: str, rid: str, version: int, *expect: dict) -> None:
        self.gt.append({"fault": name, "unit": unit, "institution_code": inst.row.code, "record_type": rtype,
                        "record_id": rid, "version": version, "expect": list(expect)})

    def quality(self, code: str, field_: str = "", **extra: Any) -> dict:
        dim = QUALITY_FAULTS.get(code, ("completeness", ""))[0]
        d = {"kind": "quality", "code": code, "dimension": dim, "field": field_ or QUALITY_FAULTS.get(code, ("", ""))[1]}
        d.update(extra)
        return d

    # --- patients ----------------------------------------------------------------------------------
    def patient(self, inst: _Inst, diag, event: datetime, sex: str | None = None, age: int | None = None) -> PatientIdentity:
        rng = self.rng
        if sex is None:
            sex = diag.sex or rng.choice("12")
        if age is None:
            lo = diag.age_min if diag.age_min is not None else 0
            hi = diag.age_max if diag.age_max is not None else 90
            if diag.age_min is None and diag.age_max is None:
                age = min(95, max(0, int(rng.gauss(45, 20))))
            else:
                age = rng.randint(lo, min(hi, 90))
        ev = event.date()
        # exact age at the event: birth in (anchor - 360 days, anchor], anchor = same day ``age`` years earlier
        anchor = date(ev.year - age, ev.month, min(ev.day, 28))
        birth = anchor - timedelta(days=rng.randrange(0, 360))
        r = rng.random()
        county = inst.row.county_code
        if r < 0.80:
            region = county
        elif r < 0.90:
            region = rng.choice(self._current_counties)
        elif r < 0.96 and birth.year < 2000:
            region = rng.choice(self._historic_counties)
        else:
            region = rng.choice(OTHER_PROVINCE_REGIONS)
        certno = make_resident_id(region, birth, sex, rng)
        insu = rng.choices(["310", "390", "999"], [35, 60, 5])[0]
        name = rng.choice("王李张刘陈杨黄赵吴周") + rng.choice(["芳", "伟", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰"])
        return PatientIdentity(psn_cert_type="01", certno=certno, psn_name=name, gend=sex, brdy=birth,
                               psn_no=None if insu == "999" else f"52{rng.randrange(10**14):014d}"), insu

    # --- drugs -------------------------------------------------------------------------------------
    def pick_drugs(self, n: int, sex: str, prescriber: Practitioner, med_type: str, chronic: bool, kind: str = "western",
                   exclude: set[str] = frozenset()) -> list:
        tier_rank = {"none": 0, "unrestricted": 1, "restricted": 2, "special": 3}
        grant = tier_rank[prescriber.antibiotic_tier]
        pool = [d for d in self.drugs if d.kind == kind and d.sex in ("", sex) and tier_rank[d.antibiotic_tier] <= grant
                and generic_key(d.code) not in exclude
                and (med_type == "inpatient" or (d.scene == "any" and d.controlled_class == "none" and d.antibiotic_tier != "special"))
                and (chronic or not d.chronic or med_type == "inpatient")]
        if med_type == "inpatient" and kind == "western":
            pool = [d for d in pool if d.controlled_class == "none" or prescriber.controlled_right]
        out, seen = [], set(exclude)
        self.rng.shuffle(pool)
        for d in pool:
            g = generic_key(d.code)
            if g not in seen:
                seen.add(g)
                out.append(d)
            if len(out) == n:
                break
        return out

    def rx_item(self, inst: _Inst, no: int, d, days: int, local: str | None = None) -> PrescriptionItem:
        rng = self.rng
        price = inst.price[d.code]
        if d.kind == "tcm_decoction":
            dose = Decimal(rng.choice([6, 9, 10, 12, 15]))
            cnt = dose * days
        elif d.cnt_unit in ("支", "袋"):
            per_day = {"qd": 1, "bid": 2, "q12h": 2, "tid": 3, "q8h": 3, "st": 1}.get(d.frequency, 1)
            cnt = Decimal(per_day * max(1, days))
            dose = Decimal(d.dose)
        else:
            cnt = Decimal(rng.randint(1, 2) if days <= 7 else max(2, days // 7))
            dose = Decimal(d.dose)
        amount = _money(cnt * price)
        return PrescriptionItem(item_no=no, medins_list_codg=local or inst.local["drug"][d.code], drug_name=d.generic_name,
                                spec=d.spec, sin_doscnt=dose, dose_unit=d.dose_unit or "g", used_frqu=d.frequency,
                                drug_route=d.route, prd_days=days, cnt=cnt, cnt_unit=d.cnt_unit or "g", pric=price,
                                det_item_fee_sumamt=amount, antibiotic_tier=d.antibiotic_tier, controlled_class=d.controlled_class)

    # --- encounters --------------------------------------------------------------------------------
    def choose_fault(self) -> str | None:
        u = self.rng.random()
        acc = 0.0
        for name in FAULTS:
            acc += self.faults.get(name, 0.0)
            if u < acc:
                return name
        return None

    def run(self) -> None:
        self._current_counties = [r.code for r in self.regions.counties()]
        self._historic_counties = [r.code for r in self.regions.counties(current=False) if not r.current] or self._current_counties
        mts, mtw = list(MED_TYPE_MIX), list(MED_TYPE_MIX.values())
        for _ in range(self.n_enc):
            f = self.choose_fault()
            if f == "missing_field":
                mt = self.rng.choice(["inpatient", "outpatient"])
            elif f in FAULT_MED_TYPE:
                mt = FAULT_MED_TYPE[f]
            else:
                mt = self.rng.choices(mts, mtw)[0]
            if f:
                self.fault_units[f] += 1
            if f == "readmission_15d":
                self.readmission()
            elif f == "duplicate_prescription":
                self.duplicate_rx()
            else:
                self.encounter(mt, f)

    def pick_diag(self, med_type: str, sex_free: bool = False, chronic: bool | None = None, inst: _Inst | None = None,
                  patient: PatientIdentity | None = None, when: datetime | None = None, exclude: tuple = ()):
        scenes = {"outpatient": ("outpatient", "any"), "emergency": ("emergency", "any"), "inpatient": ("inpatient", "any"),
                  "internet": ("any", "outpatient")}[med_type]
        pool = [d for d in self.diags if d.scene in scenes and (not sex_free or not d.sex) and d.code not in exclude
                and (chronic is None or d.chronic == chronic)]
        if patient is not None and when is not None:
            ev = when.date()
            age = ev.year - patient.brdy.year - ((ev.month, ev.day) < (patient.brdy.month, patient.brdy.day))
            pool = [d for d in pool if d.sex in ("", patient.gend) and (d.age_min is None or age >= d.age_min)
                    and (d.age_max is None or age <= d.age_max)]
        if inst is not None and inst.row.type != "tcm":
            pool = [d for d in pool if d.department != "A50"] or pool
        if med_type == "internet":
            pool = [d for d in pool if d.chronic] or pool
        return self.rng.choice(pool)

    def encounter(self, med_type: str, fault: str | None, *, inst: _Inst | None = None, patient=None,
                  begin: datetime | None = None, force_drug=None, discharge: datetime | None = None,
                  rinp_plan: bool | None = None, unit: str | None = None, want_rx: bool = True,
                  exclude_drugs: frozenset[str] = frozenset()) -> dict:
        rng = self.rng
        inst = inst or self.pick_inst(med_type)
        sex_free = fault in ("sex_mismatch", "drug_sex_restriction", "duplicate_prescription")
        diag = self.pick_diag(med_type, sex_free=sex_free, inst=inst,
                              chronic=False if fault == "outpatient_days_exceeded" else None,
                              patient=patient[0] if patient else None, when=begin,
                              exclude=("Z51.100",) if rinp_plan is False else ())
        dept_nat = diag.department
        scope = self.depts[dept_nat].scope if dept_nat in self.depts else "临床"
        docs = inst.doctors.get(scope) or inst.doctors["临床"]
        doctor = rng.choice(docs)
        if fault == "special_antibiotic_outpatient":
            doctor = next(d for d in inst.doctors["临床"] if d.antibiotic_tier == "special")
            scope = "临床"
        enc_id = self.next_id(inst, "MZ" if med_type != "inpatient" else "ZY")
        unit = unit or f"{inst.row.code}:{enc_id}"
        # times
        still_in = False
        if med_type == "inpatient":
            if discharge is not None or (begin is None and (rng.random() < 0.7 or fault == "discharge_before_admission")):
                dis = discharge or self.rand_time(self.start, self.now - timedelta(hours=2))
                los = max(1, min(30, int(rng.expovariate(1 / 7)) + 1))
                adm = self.ts(dis - timedelta(days=los, hours=rng.uniform(-4, 4)))
            else:
                adm = begin or self.rand_time(self.start, self.now - timedelta(hours=3))
                dis = None
                still_in = True
            begntime, endtime = adm, dis
        else:
            begntime = begin or self.rand_time(self.start, self.now - timedelta(hours=2))
            endtime = self.ts(begntime + timedelta(minutes=rng.randint(5, 40)))
        late_shift = timedelta(0)
        if fault == "late":
            late_shift = self.sla + timedelta(hours=rng.uniform(1, 48))
        if patient is None:  # born before the (possibly shifted) event: ages and birth dates stay consistent
            patient, insu = self.patient(inst, diag, begntime - late_shift, sex=None)
        else:
            patient, insu = patient
        certno_fault = None
        if fault == "invalid_id_number":
            patient = patient.model_copy(update={"certno": corrupt_check_digit(patient.certno)})
        elif fault == "sex_mismatch":
            patient = patient.model_copy(update={"gend": "2" if patient.gend == "1" else "1"})
        sex = patient.gend
        drug_sex = "" if fault == "sex_mismatch" else sex  # only sex-neutral drugs when the declared sex is wrong
        loc_dept = inst.local["department"][dept_nat]
        dept_name = self.depts[dept_nat].name

        def T(t: datetime) -> datetime:
            return self.ts(t - late_shift)

        records: list[tuple[datetime, str, Any, bool]] = []  # (emit, type, record, skip)
        charges: list[Charge] = []
        rx_list: list[Prescription] = []
        faults_here: list[tuple] = []
        skip_charge_ids: set[str] = set()
        prior: list[Charge] = []

        def charge(item_type: str, nat: str, cnt: Decimal, when: datetime, rxno: str | None = None, local: str | None = None,
                   price: Decimal | None = None, name: str | None = None) -> Charge:
            price = inst.price[nat] if price is None else price
            amount = _money(cnt * price)
            fund = Decimal(0) if insu == "999" else _money(amount * inst.fund_ratio)
            own = amount if insu == "999" else Decimal(0)
            kind = {"drug": "drug", "service": "service", "consumable": "consumable"}[item_type]
            loc = local or inst.local[kind][nat]
            return Charge(record_id=self.next_id(inst, "FY"), version=1, status="normal", institution_code=inst.row.code,
                          mdtrt_id=enc_id, med_type=med_type, patient=patient, rxno=rxno, item_type=item_type,
                          medins_list_codg=loc, item_name=name or inst.names[loc] if loc in inst.names else (name or nat),
                          cnt=cnt, pric=price, det_item_fee_sumamt=amount, fulamt_ownpay_amt=own, fund_pay_amt=fund,
                          fee_ocur_time=T(when), bilg_dept_codg=loc_dept, bilg_dr_codg=doctor.code)

        def in_window(t: datetime) -> bool:
            return self.start <= t <= self.now - timedelta(minutes=30)

        # --- prescriptions ------------------------------------------------------------------------
        rx_specs: list[tuple[datetime, list, int, str, bool]] = []  # time, drugs, days, kind, chronic_flag
        if med_type == "inpatient":
            stay_end = endtime or self.now
            used: set[str] = set(exclude_drugs)
            for _ in range(rng.randint(1, 3)):
                t = self.rand_time(begntime, stay_end)
                if not in_window(t):
                    continue
                ds = self.pick_drugs(rng.randint(1, 4), drug_sex, doctor, "inpatient", True, exclude=used)
                used |= {generic_key(d.code) for d in ds}
                if ds:
                    days = rng.randint(1, 3)
                    if any(d.controlled_class in ("narcotic", "psychotropic1") for d in ds):
                        days = 1  # 麻醉药品、第一类精神药品: inpatients get one day per prescription (处方管理办法 第二十六条)
                    rx_specs.append((t, ds, days, "western", False))
        elif want_rx and (med_type == "internet" or rng.random() < 0.8 or fault in RULE_FAULTS):
            t = self.ts(begntime + timedelta(minutes=rng.randint(3, 25)))
            if scope == "中医" and rng.random() < 0.6 and fault not in RULE_FAULTS:
                ds = self.pick_herbs(rng.randint(4, 9))
                rx_specs.append((t, ds, rng.randint(3, 7), "tcm_decoction", False))
            else:
                kind = "tcm_patent" if (inst.row.type == "tcm" and rng.random() < 0.5 and fault not in RULE_FAULTS) else "western"
                n = rng.randint(6, 7) if fault == "too_many_drugs" else rng.randint(1, 4)
                chronic_flag = diag.chronic and med_type in ("outpatient", "internet") and rng.random() < 0.5
                ds = self.pick_drugs(n, drug_sex, doctor, med_type, diag.chronic, kind=kind, exclude=exclude_drugs)
                if fault == "drug_sex_restriction":
                    other = "2" if sex == "1" else "1"
                    ds = ds[:3] + [rng.choice([d for d in self.drugs if d.sex == other])]
                    chronic_flag = False
                if fault == "special_antibiotic_outpatient":
                    ds = [d for d in ds if d.antibiotic_tier == "none"][:3] + [rng.choice([d for d in self.drugs if d.antibiotic_tier == "special"])]
                    chronic_flag = False
                if force_drug is not None:
                    ds = [d for d in ds if generic_key(d.code) != generic_key(force_drug.code)][:3] + [force_drug]
                    chronic_flag = False
                if fault == "outpatient_days_exceeded":
                    days, chronic_flag = rng.randint(10, 30), False
                elif chronic_flag:
                    days = rng.choice([14, 28, 30])
                elif force_drug is not None:
                    days = 7
                else:
                    days = rng.randint(1, 3) if med_type == "emergency" else rng.randint(1, 7)
                if ds:
                    rx_specs.append((t, ds, days, kind, chronic_flag))
        unmapped_target = rng.choice(["diagnosis", "drug", "service"]) if fault == "unmapped_code" else None
        if unmapped_target == "drug" and not rx_specs:
            unmapped_target = "diagnosis"
        for (t, ds, days, kind, chronic_flag) in rx_specs:
            rxno = self.next_id(inst, "CF")
            items, locals_ = [], []
            for no, d in enumerate(ds, start=1):
                loc = None
                if unmapped_target == "drug" and no == 1:
                    loc = self.new_unmapped(inst, "drug", d.generic_name)
                    faults_here.append(("drug_unmapped", loc, rxno))
                    unmapped_target = "done"
                items.append(self.rx_item(inst, no, d, days, local=loc))
                locals_.append(loc)
            online = med_type == "internet"
            phar = rng.choice(inst.pharmacists).code if online and fault != "online_rx_no_pharmacist" else None
            rx = Prescription(record_id=rxno, version=1, status="normal", institution_code=inst.row.code, mdtrt_id=enc_id,
                              med_type=med_type, patient=patient, rx_kind=kind, rx_time=T(t), dept_code=loc_dept,
                              prsc_dr_code=doctor.code, phar_code=phar, online_flag=online, chronic_flag=chronic_flag,
                              long_rx_reason="慢性病长期用药, 病情稳定" if chronic_flag else None, items=items)
            rx_list.append(rx)
            records.append((t + timedelta(seconds=rng.randint(5, 300)), "prescription", rx, False))
            for it, loc in zip(items, locals_):
                ct = t + timedelta(minutes=rng.randint(2, 20))
                c = charge("drug", ds[it.item_no - 1].code, it.cnt, ct, rxno=rxno, local=loc or it.medins_list_codg,
                           price=it.pric, name=it.drug_name)
                charges.append(c)
        # --- services and consumables -------------------------------------------------------------
        svc: list[tuple[str, Decimal, datetime, str]] = []  # (national, cnt, time, type)
        if med_type == "outpatient":
            consult = {"senior": "001102000010200", "intermediate": "001102000010100", "junior": "001102000010000"}[doctor.title]
            svc.append((consult, Decimal(1), begntime + timedelta(minutes=2), "service"))
            for code in rng.sample(["002501010010000", "002501020010000", "003101000010000", "002101030010000", "002504010010000", "002503020010000", "002102010010000"], rng.choice([0, 0, 1, 1, 2])):
                svc.append((code, Decimal(1), begntime + timedelta(minutes=rng.randint(5, 30)), "service"))
        elif med_type == "emergency":
            svc.append(("001102000030000", Decimal(1), begntime + timedelta(minutes=1), "service"))
            for code in rng.sample(["002501010010000", "003101000010000", "002103010010000", "001206000010000", "001211000010000"], rng.randint(1, 3)):
                svc.append((code, Decimal(1), begntime + timedelta(minutes=rng.randint(5, 30)), "service"))
            if rng.random() < 0.5:
                svc.append(("C0101020010200413561", Decimal(rng.randint(1, 3)), begntime + timedelta(minutes=10), "consumable"))
        elif med_type == "internet":
            svc.append(("001102000090000", Decimal(1), begntime + timedelta(minutes=1), "service"))
        else:
            day = begntime.date()
            last = (endtime or self.now).date()
            nursing = rng.choice(["001201000030000", "001201000040000", "001201000050000"])
            bed = rng.choice(["001109000010000", "001109000010000", "001109000010100"])
            d = day
            while d <= last:
                if endtime is not None and d == last and d != day:
                    break  # discharge day is not billed (LOS = discharge - admission)
                base = datetime(d.year, d.month, d.day, 9, 0, tzinfo=HOSPITAL_TZ)
                if d == day:
                    base = max(base, begntime + timedelta(minutes=30))
                for code in (bed, nursing, "001102000050000"):
                    svc.append((code, Decimal(1), base + timedelta(minutes=rng.randint(0, 90)), "service"))
                if rng.random() < 0.4:
                    svc.append(("003107010220000", Decimal(rng.randint(4, 24)), base + timedelta(hours=2), "service"))
                if rng.random() < 0.5:
                    svc.append(("C0101010011303807555", Decimal(rng.randint(1, 2)), base + timedelta(hours=1), "consumable"))
                    svc.append(("001206000010000", Decimal(1), base + timedelta(hours=1), "service"))
                if rng.random() < 0.3:
                    svc.append((rng.choice(["002501010010000", "002503010010000", "002503010020000", "002504010010000"]), Decimal(1), base + timedelta(hours=3), "service"))
                d += timedelta(days=1)
        for nat, cnt, when, typ in svc:
            when = self.ts(when)
            if med_type == "inpatient" and endtime is not None and when > endtime:
                continue
            if med_type == "inpatient" and not in_window(when):
                prior.append(charge(typ, nat, cnt, when))  # sent before the simulated window: in the totals only
                continue
            loc = None
            if unmapped_target == "service" and typ == "service":
                loc = self.new_unmapped(inst, "service", self.services[nat].name)
                unmapped_target = "done"
                c = charge(typ, nat, cnt, when, local=loc, name=self.services[nat].name)
                faults_here.append(("service_unmapped", loc, c.record_id))
            else:
                c = charge(typ, nat, cnt, when)
            charges.append(c)
        if unmapped_target in ("service", "drug"):  # no eligible line in the window: fall back to the diagnosis
            unmapped_target = "diagnosis"
        # --- charge-level faults ------------------------------------------------------------------
        svc_charges = [c for c in charges if c.item_type == "service"]
        target = rng.choice(svc_charges) if svc_charges else None
        versions: list[tuple[datetime, Charge]] = []
        if fault == "amount_mismatch" and target is not None:
            wrong = target.det_item_fee_sumamt + Decimal(rng.choice([1, 2, 5, 10, 20])) * rng.choice([1, -1])
            if wrong < 0:
                wrong = target.det_item_fee_sumamt + Decimal(10)
            target.det_item_fee_sumamt = wrong
            target.fund_pay_amt = Decimal(0) if insu == "999" else _money(wrong * inst.fund_ratio)
            if insu == "999":
                target.fulamt_ownpay_amt = wrong
            faults_here.append(("amount_mismatch", target.record_id))
        if fault == "seq_gap" and target is not None:
            skip_charge_ids.add(target.record_id)
            faults_here.append(("seq_gap", target.record_id))
        if fault == "correction" and target is not None:
            v1 = target.model_copy(update={"cnt": target.cnt + 1, "det_item_fee_sumamt": _money((target.cnt + 1) * target.pric)})
            v1.fund_pay_amt = Decimal(0) if insu == "999" else _money(v1.det_item_fee_sumamt * inst.fund_ratio)
            v1.fulamt_ownpay_amt = v1.det_item_fee_sumamt if insu == "999" else Decimal(0)
            v2 = target.model_copy(update={"version": 2, "status": "corrected"})
            charges.remove(target)
            charges.append(v2)
            versions.append((target.fee_ocur_time + late_shift + timedelta(seconds=rng.randint(5, 600)), v1))
            faults_here.append(("correction", v2.record_id))
        if fault == "cancellation" and target is not None:
            extra = charge("service", "003101000010000", Decimal(1), target.fee_ocur_time + late_shift)
            v2 = extra.model_copy(update={"version": 2, "status": "cancelled"})
            versions.append((extra.fee_ocur_time + late_shift + timedelta(seconds=rng.randint(5, 600)), extra))
            cancelled = v2
            faults_here.append(("cancellation", v2.record_id))
        else:
            cancelled = None
        if fault in ("amount_mismatch", "seq_gap", "correction", "cancellation") and target is None:
            self.fault_units[fault] -= 1
            fault = None
        # --- encounter ----------------------------------------------------------------------------
        counted = [c for c in charges if c.record_id not in skip_charge_ids] + prior
        total = sum((c.det_item_fee_sumamt for c in counted), Decimal(0))
        fund = sum((c.fund_pay_amt for c in counted), Decimal(0))
        diags = [Diagnosis(diag_code=inst.local["diagnosis"][diag.code], diag_name=diag.name, maindiag_flag=True)]
        if unmapped_target == "diagnosis":
            loc = self.new_unmapped(inst, "diagnosis", diag.name)
            diags = [Diagnosis(diag_code=loc, diag_name=diag.name, maindiag_flag=True)]
            faults_here.append(("diag_unmapped", loc))
        ops = []
        op_code = {"K35.800": "47.0100", "K80.100": "51.2300", "O82.000": "74.1x00", "S72.000": "79.3500", "H25.900": "13.4100x001", "N40.x00": "60.2900"}.get(diag.code)
        if med_type == "inpatient" and op_code and (diag.code != "N40.x00" or sex == "1"):
            ops = [Operation(oprn_code=inst.local["operation"][op_code], oprn_name=self.cat.operation(op_code).name,
                             oprn_time=T(begntime + timedelta(hours=20)) if endtime is None or begntime + timedelta(hours=20) < endtime else None)]
        fst = None
        if med_type == "internet":
            fst = fault == "internet_first_visit_rx" and bool(rx_list)  # the first visit is the violation only with a prescription
        rinp = None
        if med_type == "inpatient":
            rinp = (diag.code == "Z51.100") if rinp_plan is None else rinp_plan
            if fault == "missing_field":
                rinp = None
        beg_out, end_out = T(begntime), (T(endtime) if endtime is not None else None)
        if fault == "discharge_before_admission":
            beg_out = self.ts(end_out + timedelta(hours=rng.uniform(0.5, 1.5)))
        enc = Encounter(record_id=enc_id, version=1, status="normal", institution_code=inst.row.code, med_type=med_type,
                        patient=patient, insutype=insu, dept_code=loc_dept, dept_name=dept_name, atddr_code=doctor.code,
                        begntime=beg_out, endtime=end_out if med_type != "inpatient" or not still_in else None,
                        diagnoses=diags, operations=ops, fst_visit_flag=fst, rinp_plan_flag=rinp,
                        medfee_sumamt=total, fund_pay_sumamt=fund, psn_selfpay_amt=total - fund)
        enc_emit = (endtime if endtime is not None and med_type == "inpatient" else begntime if still_in else endtime)
        records.append((enc_emit + timedelta(seconds=rng.randint(5, 600)), "encounter", enc, False))
        missing_charge = None
        if fault == "missing_field" and med_type == "outpatient":
            drug_charges = [c for c in charges if c.item_type == "drug"]
            if drug_charges:
                missing_charge = rng.choice(drug_charges)
                missing_charge.rxno = None
            else:
                self.fault_units[fault] -= 1
                fault = None
        for t, v1 in versions:
            records.append((t, "charge", v1, False))
        for c in charges:
            ct = c.fee_ocur_time + late_shift
            records.append((ct + timedelta(seconds=rng.randint(5, 1800)), "charge", c, c.record_id in skip_charge_ids))
        if cancelled is not None:
            records.append((versions[-1][0] + timedelta(seconds=rng.randint(60, 900)), "charge", cancelled, False))
        for t, rtype, rec, skip in records:
            if rtype == "charge" and rec.version == 2 and rec.status == "corrected":
                t = max(t, versions[0][0] + timedelta(seconds=rng.randint(60, 900)))
            self.emit(t, inst, rtype, rec, skip)
        # --- ground truth --------------------------------------------------------------------------
        all_recs = [("encounter", enc)] + [("prescription", r) for r in rx_list] + [("charge", c) for c in charges if c.record_id not in skip_charge_ids] + [("charge", v1) for _, v1 in versions]
        if cancelled is not None:
            all_recs.append(("charge", cancelled))
        if fault in ("invalid_id_number", "sex_mismatch", "late"):
            field_ = {"invalid_id_number": "patient.certno", "sex_mismatch": "patient.gend", "late": "event_time"}[fault]
            for rtype, rec in all_recs:
                extra = {"reason": "invalid_check_digit"} if fault == "invalid_id_number" else {}
                self.fault(fault, unit, inst, rtype, rec.record_id, rec.version, self.quality(fault, field_, **extra))
        elif fault == "discharge_before_admission":
            self.fault(fault, unit, inst, "encounter", enc_id, 1, self.quality(fault, "endtime"))
        elif fault == "missing_field":
            if med_type == "inpatient":
                self.fault(fault, unit, inst, "encounter", enc_id, 1, self.quality("missing_field", "rinp_plan_flag"))
            else:
                self.fault(fault, unit, inst, "charge", missing_charge.record_id, 1, self.quality("missing_field", "rxno"))
        for fh in faults_here:
            kind = fh[0]
            if kind == "drug_unmapped":
                loc, rxno = fh[1], fh[2]
                self.fault("unmapped_code", unit, inst, "prescription", rxno, 1,
                           self.quality("unmapped_code", "items[0].medins_list_codg", code_kind="drug", local_code=loc))
                for c in charges:
                    if c.medins_list_codg == loc:
                        self.fault("unmapped_code", unit, inst, "charge", c.record_id, c.version,
                                   self.quality("unmapped_code", "medins_list_codg", code_kind="drug", local_code=loc))
            elif kind == "service_unmapped":
                self.fault("unmapped_code", unit, inst, "charge", fh[2], 1,
                           self.quality("unmapped_code", "medins_list_codg", code_kind="service", local_code=fh[1]))
            elif kind == "diag_unmapped":
                self.fault("unmapped_code", unit, inst, "encounter", enc_id, 1,
                           self.quality("unmapped_code", "diagnoses[0].diag_code", code_kind="diagnosis", local_code=fh[1]))
            elif kind == "amount_mismatch":
                self.fault(kind, unit, inst, "charge", fh[1], 1, self.quality("amount_mismatch", "det_item_fee_sumamt"))
            elif kind == "seq_gap":
                self.fault(kind, unit, inst, "charge", fh[1], 1, {"kind": "seq_gap"})  # seq filled in later
                self.skip_ids.add((inst.row.code, fh[1]))
            elif kind in ("correction", "cancellation"):
                self.fault(kind, unit, inst, "charge", fh[1], 2,
                           {"kind": "version", "status": "corrected" if kind == "correction" else "cancelled", "supersedes": 1})
        if fault in RULE_FAULTS and fault not in ("readmission_15d", "duplicate_prescription") and not rx_list:
            self.fault_units[fault] -= 1
        if fault in RULE_FAULTS and fault not in ("readmission_15d", "duplicate_prescription") and rx_list:
            rx = rx_list[0]
            related = [{"record_type": "encounter", "record_id": enc_id}] + [
                {"record_type": "charge", "record_id": c.record_id} for c in charges if c.rxno == rx.record_id]
            rule_id = RULE_IDS.get(fault) or SEX_RULE_IDS["2" if sex == "1" else "1"]
            exp = [{"kind": "rule", "subject": fault, "rule_id": rule_id, "related": related}]
            if fault == "online_rx_no_pharmacist":
                exp.append(self.quality("missing_field", "phar_code"))
            self.fault(fault, unit, inst, "prescription", rx.record_id, 1, *exp)
            if fault == "internet_first_visit_rx":  # 首诊 itself: the rule also fires on the encounter
                self.fault(fault, unit, inst, "encounter", enc_id, 1, {
                    "kind": "rule", "subject": fault, "rule_id": rule_id,
                    "related": [{"record_type": "prescription", "record_id": r.record_id} for r in rx_list]})
            if fault == "drug_sex_restriction":  # the charge line of the restricted drug is a violation too
                restricted = {i.medins_list_codg for i in rx.items
                              if self.cat.drug(self._national(inst, "drug", i.medins_list_codg)).sex not in ("", sex)}
                for c in charges:
                    if c.rxno == rx.record_id and c.medins_list_codg in restricted:
                        self.fault(fault, unit, inst, "charge", c.record_id, c.version, {
                            "kind": "rule", "subject": fault, "rule_id": rule_id,
                            "related": [{"record_type": "prescription", "record_id": rx.record_id}]})
        return {"inst": inst, "enc": enc, "rx": rx_list, "patient": (patient, insu), "diag": diag, "charges": charges}

    def pick_herbs(self, n: int) -> list:
        herbs = [d for d in self.drugs if d.kind == "tcm_decoction"]
        self.rng.shuffle(herbs)
        out: list = []
        for h in herbs:
            if any(h.generic_name in o.incompatible_with or o.generic_name in h.incompatible_with for o in out):
                continue
            out.append(h)
            if len(out) == n:
                break
        return out

    def new_unmapped(self, inst: _Inst, kind: str, name: str) -> str:
        inst.unmapped_n += 1
        loc = f"NEW{kind[:2].upper()}{inst.unmapped_n:04d}"
        assert loc not in inst.names
        self.unmapped.append({"institution_code": inst.row.code, "kind": kind, "local_code": loc})
        return loc

    def readmission(self) -> None:
        rng = self.rng
        inst = self.pick_inst("inpatient")
        dis = self.rand_time(self.start, self.start + (self.now - self.start) / 2)
        first = self.encounter("inpatient", None, inst=inst, discharge=dis)
        inst2 = inst if rng.random() < 0.6 else self.pick_inst("inpatient")
        adm = self.ts(dis + timedelta(hours=rng.uniform(1, 4)))
        unit = f"{inst.row.code}:{first['enc'].record_id}"
        used = frozenset(generic_key(c) for c in self._drug_codes(first))
        second = self.encounter("inpatient", None, inst=inst2, patient=first["patient"], begin=adm, unit=unit,
                                exclude_drugs=used, rinp_plan=False)
        self.fault("readmission_15d", unit, inst2, "encounter", second["enc"].record_id, 1,
                   {"kind": "rule", "subject": "readmission_15d", "rule_id": RULE_IDS["readmission_15d"],
                    "related": [{"institution_code": inst.row.code, "record_type": "encounter", "record_id": first["enc"].record_id}]})

    def duplicate_rx(self) -> None:
        rng = self.rng
        inst = self.pick_inst("outpatient")
        drug = rng.choice([d for d in self.drugs if d.kind == "western" and d.scene == "any" and d.sex == ""
                           and d.antibiotic_tier in ("none", "unrestricted") and d.controlled_class == "none" and not d.chronic])
        t1 = self.rand_time(self.start, self.start + (self.now - self.start) / 2)
        first = self.encounter("outpatient", "duplicate_prescription", inst=inst, begin=t1, force_drug=drug)
        inst2 = self.pick_inst("outpatient", exclude=inst)
        t2 = self.ts(t1 + timedelta(hours=rng.uniform(1, 4)))
        unit = f"{inst.row.code}:{first['enc'].record_id}"
        used = frozenset(generic_key(c) for c in self._drug_codes(first)) - {generic_key(drug.code)}
        second = self.encounter("outpatient", "duplicate_prescription", inst=inst2, patient=first["patient"], begin=t2,
                                force_drug=drug, unit=unit, exclude_drugs=used)
        rx1, rx2 = first["rx"][0], second["rx"][0]
        self.fault("duplicate_prescription", unit, inst2, "prescription", rx2.record_id, 1,
                   {"kind": "rule", "subject": "duplicate_prescription", "rule_id": RULE_IDS["duplicate_prescription"], "drug_code": drug.code,
                    "related": [{"institution_code": inst.row.code, "record_type": "prescription", "record_id": rx1.record_id}]})

    def _national(self, inst: _Inst, kind: str, local: str) -> str:
        return next(n for n, loc in inst.local[kind].items() if loc == local)

    def _drug_codes(self, enc: dict) -> list[str]:
        inst = enc["inst"]
        back = {v: k for k, v in inst.local["drug"].items()}
        return [back[i.medins_list_codg] for r in enc["rx"] for i in r.items if i.medins_list_codg in back]

    # --- finish ------------------------------------------------------------------------------------
    def finish(self) -> tuple[list[SimEvent], dict]:
        self.events.sort(key=lambda e: (e[0], e[1]))
        seqs: dict[tuple[str, str], int] = {}
        out: list[SimEvent] = []
        gaps: dict[tuple[str, str], list[tuple[int, str]]] = {}
        last_sent: dict[tuple[str, str], int] = {}
        seq_of: dict[tuple[str, str], int] = {}
        for emit, _, inst, rtype, rec, skip in self.events:
            k = (inst, rtype)
            s = seqs[k] = seqs.get(k, 0) + 1
            out.append(SimEvent(emit, inst, rtype, rec, skip, s))
            if skip:
                gaps.setdefault(k, []).append((s, rec.record_id))
                seq_of[(inst, rec.record_id)] = s
            else:
                last_sent[k] = s
        ranges = []
        for (inst, rtype), lst in sorted(gaps.items()):
            cur: list[tuple[int, str]] = []
            for s, rid in lst + [(10**12, "")]:
                if cur and s != cur[-1][0] + 1:
                    ranges.append({"institution_code": inst, "record_type": rtype, "first_seq": cur[0][0], "last_seq": cur[-1][0],
                                   "record_ids": [r for _, r in cur], "trailing": cur[-1][0] > last_sent.get((inst, rtype), 0)})
                    cur = []
                cur.append((s, rid))
        for f in self.gt:
            for e in f["expect"]:
                if e["kind"] == "seq_gap":
                    s = seq_of[(f["institution_code"], f["record_id"])]
                    rng_ = next(r for r in ranges if r["institution_code"] == f["institution_code"] and r["record_type"] == f["record_type"] and r["first_seq"] <= s <= r["last_seq"])
                    e.update(seq=s, first_seq=rng_["first_seq"], last_seq=rng_["last_seq"], trailing=rng_["trailing"])
        faulty = {(f["institution_code"], f["record_type"], f["record_id"], f["version"]) for f in self.gt}
        totals: dict[str, Any] = {"institutions": len(self.insts), "practitioners": len(self.pracs), "events": len(out),
                                  "records": {}, "sent": {}, "skipped": {}, "clean_records": {}, "faulty_records": {}}
        for e in out:
            t = e.record_type
            for key in ("records", "sent" if not e.skip else "skipped"):
                totals[key][t] = totals[key].get(t, 0) + 1
            bucket = "faulty_records" if (e.institution_code, t, e.record.record_id, e.record.version) in faulty else "clean_records"
            totals[bucket][t] = totals[bucket].get(t, 0) + 1
        gt = {
            "format": GROUND_TRUTH_FORMAT,
            "seed": self.seed,
            "now": self.now.isoformat(),
            "window_start": self.start.isoformat(),
            "sla_hours": self.sla.total_seconds() / 3600,
            "readmission_days": self.readmission_days,
            "config": {"institutions": self.n_inst, "encounters": self.n_enc, "faults": dict(self.faults)},
            "totals": totals,
            "fault_units": {k: v for k, v in self.fault_units.items()},
            "faults": self.gt,
            "seq_gaps": ranges,
            "unmapped_codes": self.unmapped,
        }
        return out, gt


def simulate(
    institutions: int = 200,
    encounters: int = 5000,
    seed: int = 1,
    now: datetime | None = None,
    hours: float = 12.0,
    sla_hours: float = 24.0,
    faults: dict[str, float] | None = None,
    fault_rate: float | None = None,
    regions: RegionTable | None = None,
    readmission_days: int = 15,
    ground_truth_path: str | Path | None = None,
) -> SimResult:
    """Simulate ``institutions`` hospitals producing ``encounters`` encounters (≈6 records each) in the
    window ``[now - hours, now]``. ``faults`` maps fault names (:data:`FAULTS`) to rates (fraction of
    encounters); names not given use ``fault_rate`` (default :data:`DEFAULT_FAULT_RATE`; pass
    ``fault_rate=0`` for clean data plus only the faults named). Same arguments → same output."""
    import time

    t0 = time.perf_counter()
    rates = {f: DEFAULT_FAULT_RATE if fault_rate is None else fault_rate for f in FAULTS}
    for k, v in (faults or {}).items():
        if k not in FAULTS:
            raise ValueError(f"未知故障类型 {k!r} / unknown fault {k!r}; known: {', '.join(FAULTS)}")
        rates[k] = v
    if sum(rates.values()) > 1:
        raise ValueError("故障比例之和须<=1 / fault rates must sum to at most 1 (one fault per encounter)")
    if now is None:
        now = datetime.now(HOSPITAL_TZ)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=HOSPITAL_TZ)
    now = now.replace(microsecond=0)
    regions = regions or load_regions()
    sim = _Sim(institutions, encounters, seed, now, hours, sla_hours, rates, regions, readmission_days)
    sim.build_world()
    sim.run()
    events, gt = sim.finish()
    refdata = sim.refdata()
    gt["refdata_version"] = refdata.version
    res = SimResult(events, refdata, gt, time.perf_counter() - t0)
    gt["generation_seconds"] = round(res.seconds, 3)
    if ground_truth_path:
        res.write_ground_truth(ground_truth_path)
    return res
