"""Synthetic internal-topic traffic built with the contract models (tests, benchmarks, dashboard demo).

Everything here is made up and deterministic for a seed: institutions spread over the current
counties of the seeded regions, standardized encounters / prescriptions / charges (pseudonymized
patients), quality issues, findings, rejections and hospital handling. No real person is named.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from yijian.processors.contracts import Finding, FindingItem, Lineage, QualityIssue, Rejected, StdMeta, StdPatient
from yijian.schemas.models import Charge, Diagnosis, Encounter, FeedbackHandling, PatientIdentity, Prescription, PrescriptionItem

UTC = timezone.utc


def _h(*parts) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:24]


@dataclass
class Institution:
    code: str
    county: str
    city: str
    level: int
    type: str


def institutions(n: int, seed: int = 7) -> list[Institution]:
    """``n`` institutions over the current counties (round-robin, so every county gets one first)."""
    from yijian.sinks.migrate import read_regions

    rnd = random.Random(seed)
    current = [r for r in read_regions() if r["level"] == "county" and not r["valid_to"]]
    by_city: dict[str, list[dict]] = {}
    for r in current:
        by_city.setdefault(r["city_code"], []).append(r)
    # interleave the prefectures so that even a few institutions cover every city
    counties = [lst[i] for i in range(max(map(len, by_city.values()))) for lst in by_city.values() if i < len(lst)]
    out = []
    for i in range(n):
        c = counties[i % len(counties)]
        out.append(Institution(f"H{c['code']}{i:05d}", c["code"], c["city_code"], rnd.choice([1, 2, 2, 3]), rnd.choice(["general", "tcm", "specialty"])))
    return out


@dataclass
class Batch:
    topic: str  # logical topic name
    kind: str
    items: list
    key: str


@dataclass
class Province:
    """A generated day of traffic. ``expected`` counts what analytics must show (latest versions, no cancelled)."""

    batches: list[Batch] = field(default_factory=list)
    expected: dict = field(default_factory=dict)


def _meta(inst: Institution, rtype: str, event: datetime, delay_s: float, seq: int, i: int, unmapped: list[str]) -> StdMeta:
    received = event + timedelta(seconds=delay_s)
    return StdMeta(
        record_type=rtype, institution_code=inst.code, county_code=inst.county, city_code=inst.city,
        institution_level=inst.level, institution_type=inst.type, producer_id=f"his-{inst.code}", seq=seq,
        key_id=f"{inst.code}-k1", schema_fp="fp0001", event_time=event, received_time=received,
        processed_time=received + timedelta(milliseconds=40), lineage=Lineage(topic=f"raw.{rtype}", partition=0, offset=seq, index=i),
        unmapped=unmapped, refdata_version="r1",
    )


def _patient(rnd: random.Random, event: datetime) -> tuple[PatientIdentity, StdPatient]:
    birth = date(rnd.randint(1940, 2020), rnd.randint(1, 12), rnd.randint(1, 28))
    sex = rnd.choice(["1", "2"])
    ident = PatientIdentity(psn_cert_type="01", certno="000000000000000000", psn_name="测试", gend=sex, brdy=birth)
    std = StdPatient(pseudonym=_h("p", rnd.randint(1, 5000)), cert_type="01", sex=sex, birth_date=birth,
                     age=max(0, event.year - birth.year), region_code="520102", id_valid=True)
    return ident, std


def _std(model, std_patient: StdPatient, meta: StdMeta, national: dict | None = None) -> dict:
    d = model.model_dump(mode="json")
    d["patient"] = std_patient.model_dump(mode="json")
    d["meta"] = meta.model_dump(mode="json")
    for k, v in (national or {}).items():
        d[k] = v
    return d


def generate(n_institutions: int = 30, encounters_per_inst: int = 10, day: date | None = None, seed: int = 11, batch_size: int = 25) -> Province:
    """A day of traffic: per institution ``encounters_per_inst`` encounters, each with one
    prescription (1-3 items) and 2 charges; some late, some unmapped, some corrected (version 2) and
    some cancelled; quality issues, findings, rejections and handling on top."""
    rnd = random.Random(seed)
    day = day or (datetime.now(UTC) - timedelta(days=3)).date()
    insts = institutions(n_institutions, seed)
    std_items: dict[str, list[dict]] = {}
    quality: list[dict] = []
    findings: list[dict] = []
    rejected: list[dict] = []
    handling: list[dict] = []
    exp = {"encounters": 0, "prescriptions": 0, "prescription_items": 0, "charges": 0, "cancelled_encounters": 0,
           "corrected_encounters": 0, "medfee_sum": Decimal("0"), "quality_issues": 0, "findings": 0, "rejected": 0, "handling": 0,
           "by_institution": {}}
    for inst in insts:
        seq = 0
        rows = std_items.setdefault(inst.code, [])
        inst_enc = 0
        for e in range(encounters_per_inst):
            event = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC) + timedelta(minutes=rnd.randint(0, 900))
            late = rnd.random() < 0.1
            delay = rnd.uniform(90_000, 200_000) if late else rnd.uniform(1, 600)
            ident, sp = _patient(rnd, event)
            med_type = rnd.choice(["outpatient", "outpatient", "outpatient", "emergency", "inpatient"])
            rid = f"E{inst.code[-6:]}{e:05d}"
            total = Decimal(rnd.randint(50, 5000)).quantize(Decimal("0.01"))
            fund = (total * Decimal("0.6")).quantize(Decimal("0.01"))
            enc = Encounter(
                record_id=rid, version=1, status="normal", institution_code=inst.code, med_type=med_type, patient=ident,
                insutype="390", dept_code="D01", dept_name="内科", atddr_code="D520000001", begntime=event,
                endtime=event + timedelta(days=3) if med_type == "inpatient" else None,
                diagnoses=[Diagnosis(diag_code="J18.9", diag_name="肺炎", maindiag_flag=True)],
                rinp_plan_flag=False if med_type == "inpatient" else None,
                medfee_sumamt=total, fund_pay_sumamt=fund, psn_selfpay_amt=total - fund,
            )
            unmapped = ["diag:J18.9"] if rnd.random() < 0.1 else []
            seq += 1
            rows.append(_std(enc, sp, _meta(inst, "encounter", event, delay, seq, 0, unmapped),
                             {"diagnoses": [{**enc.diagnoses[0].model_dump(mode="json"), "icd_code": None if unmapped else "J18.900"}], "dept_std": "A03"}))
            final_total, status = total, "normal"
            r = rnd.random()
            if r < 0.08:  # correction: version 2 replaces version 1
                final_total = total + Decimal("10.00")
                enc2 = enc.model_copy(update={"version": 2, "status": "corrected", "medfee_sumamt": final_total, "psn_selfpay_amt": final_total - fund})
                seq += 1
                rows.append(_std(enc2, sp, _meta(inst, "encounter", event, delay + 60, seq, 0, unmapped), {"diagnoses": [{**enc.diagnoses[0].model_dump(mode="json"), "icd_code": "J18.900"}], "dept_std": "A03"}))
                exp["corrected_encounters"] += 1
            elif r < 0.12:  # cancellation
                enc2 = enc.model_copy(update={"version": 2, "status": "cancelled"})
                seq += 1
                rows.append(_std(enc2, sp, _meta(inst, "encounter", event, delay + 60, seq, 0, unmapped), {"diagnoses": [{**enc.diagnoses[0].model_dump(mode="json"), "icd_code": "J18.900"}], "dept_std": "A03"}))
                status = "cancelled"
                exp["cancelled_encounters"] += 1
            if status != "cancelled":
                exp["encounters"] += 1
                inst_enc += 1
                exp["medfee_sum"] += final_total
            # prescription with 1-3 items, some antibiotics
            n_items = rnd.randint(1, 3)
            items = []
            for k in range(n_items):
                price = Decimal(rnd.randint(1, 200)).quantize(Decimal("0.0001"))
                items.append(PrescriptionItem(
                    item_no=k + 1, medins_list_codg=f"L{rnd.randint(1, 50):04d}", drug_name="阿莫西林胶囊" if k == 0 and rnd.random() < 0.3 else "维生素C片",
                    sin_doscnt=Decimal("0.5"), dose_unit="g", used_frqu="tid", drug_route="po", prd_days=rnd.randint(1, 10),
                    cnt=Decimal("2"), cnt_unit="盒", pric=price, det_item_fee_sumamt=(price * 2).quantize(Decimal("0.01")),
                    antibiotic_tier="unrestricted" if k == 0 and rnd.random() < 0.3 else "none",
                ))
            rx = Prescription(record_id=f"R{rid[1:]}", version=1, status="normal", institution_code=inst.code, mdtrt_id=rid, med_type=med_type,
                              patient=ident, rx_kind="western", rx_time=event + timedelta(minutes=5), dept_code="D01", prsc_dr_code="D520000001",
                              online_flag=False, items=items)
            seq += 1
            rxd = _std(rx, sp, _meta(inst, "prescription", event + timedelta(minutes=5), delay, seq, 0, []))
            for it in rxd["items"]:
                it["med_list_codg"] = "XJ01CAA040A001010100001"
            rows.append(rxd)
            exp["prescriptions"] += 1
            exp["prescription_items"] += n_items
            for c in range(2):
                amt = Decimal(rnd.randint(5, 500)).quantize(Decimal("0.01"))
                ch = Charge(record_id=f"C{rid[1:]}{c}", version=1, status="normal", institution_code=inst.code, mdtrt_id=rid, med_type=med_type,
                            patient=ident, rxno=rx.record_id if c == 0 else None, item_type="drug" if c == 0 else "service",
                            medins_list_codg="L0001", item_name="药品" if c == 0 else "诊查费", cnt=Decimal("1"), pric=amt, det_item_fee_sumamt=amt,
                            fulamt_ownpay_amt=(amt * Decimal("0.1")).quantize(Decimal("0.01")), fund_pay_amt=(amt * Decimal("0.5")).quantize(Decimal("0.01")),
                            fee_ocur_time=event + timedelta(minutes=10), bilg_dept_codg="D01", bilg_dr_codg="D520000001")
                seq += 1
                rows.append(_std(ch, sp, _meta(inst, "charge", event + timedelta(minutes=10), delay, seq, 0, []), {"med_list_codg": "001102000010000"}))
                exp["charges"] += 1
            # quality issues: late records and a few completeness/consistency problems
            detected = event + timedelta(seconds=delay + 1)
            for dim, code, cond in (("timeliness", "late", late), ("completeness", "missing_field", rnd.random() < 0.1),
                                    ("consistency", "sex_mismatch", rnd.random() < 0.05), ("mapping", "unmapped_code", bool(unmapped))):
                if cond:
                    qi = QualityIssue(issue_id=_h("qi", inst.code, rid, dim), institution_code=inst.code, county_code=inst.county, city_code=inst.city,
                                      record_type="encounter", record_id=rid, record_version=1, dimension=dim, code=code, field="begntime",
                                      message="测试问题 / synthetic issue", severity="预警" if dim == "timeliness" else "提示", event_time=event,
                                      detected_time=detected, lineage=Lineage(topic="raw.encounter", partition=0, offset=seq, index=0))
                    quality.append(qi.model_dump(mode="json"))
                    exp["quality_issues"] += 1
            if rnd.random() < 0.15:
                amt = Decimal(rnd.randint(10, 300)).quantize(Decimal("0.01"))
                rule = rnd.choice([("R-A1", "药品区分性别使用", "政策", "违规", "明确"), ("R-B1", "重复收费", "管理", "预警", "可疑"), ("R-C2", "超量开药", "医疗", "提示", "可疑")])
                f = Finding(finding_id=_h("f", rule[0], inst.code, rid), rule_id=rule[0], rule_version=1, rule_name=rule[1], category=rule[2], severity=rule[3],
                            result_type=rule[4], warn_level=2, institution_code=inst.code, county_code=inst.county, city_code=inst.city,
                            record_type="encounter", record_id=rid, record_version=1, patient_pseudonym=sp.pseudonym, message="测试命中 / synthetic finding",
                            basis="《处方管理办法》", vola_amt=amt, items=[FindingItem(record_type="charge", record_id=f"C{rid[1:]}0", vola_item_type=1, vola_amt=amt)],
                            event_time=event, detected_time=detected)
                findings.append(f.model_dump(mode="json"))
                exp["findings"] += 1
                if rnd.random() < 0.5:
                    h = FeedbackHandling(feedback_id=f.finding_id, institution_code=inst.code, dspo_way=rnd.choice(["acknowledge", "explain"]),
                                         dspo_way_rea="已核实", handler_code="S001", handled_time=detected + timedelta(hours=1))
                    handling.append(h.model_dump(mode="json"))
                    exp["handling"] += 1
        exp["by_institution"][inst.code] = inst_enc
        if rnd.random() < 0.1:
            rj = Rejected(reject_id=f"raw.encounter:0:{rnd.randint(1, 10**9)}", reason="bad_tag", message="认证标签错误 / bad GCM tag",
                          institution_code=inst.code, record_type="encounter", key_id=f"{inst.code}-k1", producer_id=f"his-{inst.code}",
                          first_seq=1, record_count=5, lineage=Lineage(topic="raw.encounter", partition=0, offset=rnd.randint(1, 10**6)),
                          detected_time=datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
            rejected.append(rj.model_dump(mode="json"))
            exp["rejected"] += 1
        # a connection issue for some institutions
        if rnd.random() < 0.15:
            qi = QualityIssue(issue_id=_h("conn", inst.code, day), institution_code=inst.code, county_code=inst.county, city_code=inst.city,
                              record_type="institution", record_id="", record_version=0, dimension="connection", code="no_heartbeat", field="",
                              message="超过30分钟无心跳 / no heartbeat for 30 min", severity="预警",
                              detected_time=datetime(day.year, day.month, day.day, 13, tzinfo=UTC))
            quality.append(qi.model_dump(mode="json"))
            exp["quality_issues"] += 1

    prov = Province(expected=exp)
    for code, items in std_items.items():
        for i in range(0, len(items), batch_size):
            prov.batches.append(Batch("std.records", "std", items[i:i + batch_size], code))
    for topic, kind, items in (("quality.issues", "quality", quality), ("findings", "finding", findings), ("rejected", "rejected", rejected), ("handling.records", "handling", handling)):
        for i in range(0, len(items), batch_size):
            prov.batches.append(Batch(topic, kind, items[i:i + batch_size], items[i]["institution_code"] or "none"))
    return prov


def publish(settings, province: Province) -> int:
    """Produce every batch of ``province`` to its topic (idempotent producer); returns messages sent."""
    from yijian.kafka import producer
    from yijian.processors.contracts import encode_batch

    p = producer(settings)
    for b in province.batches:
        p.produce(settings.topic(b.topic), encode_batch(b.kind, b.items), key=b.key.encode())
    p.flush(30)
    return len(province.batches)
