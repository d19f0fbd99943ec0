"""The work of the processors on one raw envelope, as plain Python (no Faust here).

decrypt + verify → decode → pseudonymize → standardize codes → quality checks (rules run after a repartition by
patient, see processors/rules_stage.py). The Faust agents (processors/app.py) call :meth:`Pipeline.process` once per Kafka
message, so the framework's per-message cost is paid once per batch of records; the benchmark's
baseline loop calls the same code from plain confluent-kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from yijian.config import Settings
from yijian.keyring import KeyRing
from yijian.processors import sequence
from yijian.processors.contracts import Lineage, QualityIssue, Rejected
from yijian.processors.pseudonym import pseudonym
from yijian.processors.quality import check_record, issue_id, make_issue
from yijian.refdata.identity import resident_id_problems
from yijian.producers.envelope import EnvelopeRejected, REASONS, open_envelope

BUSINESS = ("encounter", "prescription", "charge")


class ReferenceData(Protocol):
    version: str

    def institution(self, code: str) -> Any: ...

    def map_code(self, institution_code: str, kind: str, local_code: str) -> str | None: ...


@dataclass
class Outputs:
    record_type: str = ""
    institution_code: str = ""
    std: list[dict] = field(default_factory=list)
    quality: list[QualityIssue] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    findings: list = field(default_factory=list)
    control: dict | None = None  # decoded heartbeat / manifest records with their header


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def event_time_of(record_type: str, rec: dict) -> datetime:
    if record_type == "encounter":
        return rec.get("endtime") or rec["begntime"]
    if record_type == "prescription":
        return rec["rx_time"]
    return rec["fee_ocur_time"]


class Pipeline:
    def __init__(self, settings: Settings, keyring: KeyRing, refdata: ReferenceData | None = None) -> None:
        self.settings = settings
        self.keyring = keyring
        self.refdata = refdata
        self.pseudonym_key = settings.secret_bytes("pseudonym_key")
        self.sla = {
            "encounter": timedelta(hours=settings.sla_hours_encounter),
            "prescription": timedelta(hours=settings.sla_hours_prescription),
            "charge": timedelta(hours=settings.sla_hours_charge),
        }

    # --- reference data views used by the institution checks ---------------------------------------
    def known_producers(self, institution_code: str) -> set[str] | None:
        """Registered producer ids of an institution; None when the registry does not list them."""
        getter = getattr(self.refdata, "producers", None)
        return getter(institution_code) if getter else None

    def registered_institutions(self) -> list[str]:
        return [i.code for i in self.refdata.institutions()] if self.refdata is not None else []

    def regions(self) -> dict[str, tuple[str, str]]:
        return {i.code: self.refdata.region_of(i.code) for i in self.refdata.institutions()} if self.refdata is not None else {}

    # --- rejection ---------------------------------------------------------------------------------
    def _reject(self, exc: EnvelopeRejected, lineage: Lineage, size: int, now: datetime) -> Rejected:
        h = exc.header
        return Rejected(
            reject_id=f"{lineage.topic}:{lineage.partition}:{lineage.offset}",
            reason=exc.reason,
            message=str(exc),
            institution_code=str(h.get("institution_code", "")),
            record_type=str(h.get("record_type", "")),
            key_id=str(h.get("key_id", "")),
            producer_id=str(h.get("producer_id", "")),
            first_seq=int(h.get("first_seq", 0) or 0),
            record_count=int(h.get("record_count", 0) or 0),
            lineage=lineage,
            detected_time=now,
            original_size=size,
        )

    # --- institution attributes ---------------------------------------------------------------------
    def _institution(self, code: str) -> dict:
        inst = self.refdata.institution(code) if self.refdata else None
        if inst is None:
            region = code[1:7] if len(code) == 12 else ""
            return {"county_code": region, "city_code": region[:4] + "00" if region else "", "institution_level": 0, "institution_type": "", "known": False}
        county, city = self.refdata.region_of(code)
        return {
            "county_code": county,
            "city_code": city,
            "institution_level": int(inst.level),
            "institution_type": inst.type,
            "known": True,
        }

    def _map(self, institution: str, kind: str, local: str, field: str, unmapped: list[tuple[str, str, str]]) -> str | None:
        """National code of a local code; an unmapped one is noted as (kind, local code, field path)."""
        national = self.refdata.map_code(institution, kind, local) if self.refdata else None
        if national is None:
            unmapped.append((kind, local, field))
        return national

    # --- the stages ---------------------------------------------------------------------------------
    def process(self, value: bytes, lineage: Lineage, received_time: datetime, seq_state: Any | None = None) -> Outputs:
        now = datetime.now(timezone.utc)
        try:
            opened = open_envelope(value, self.keyring)
        except EnvelopeRejected as exc:
            return Outputs(rejected=[self._reject(exc, lineage, len(value or b""), now)])
        h = opened.header
        out = Outputs(record_type=opened.record_type, institution_code=h["institution_code"])
        if opened.record_type not in BUSINESS:
            out.control = {"header": h, "records": opened.records}
            return out
        inst = self._institution(h["institution_code"])
        base_meta = {
            "record_type": opened.record_type,
            "institution_code": h["institution_code"],
            "county_code": inst["county_code"],
            "city_code": inst["city_code"],
            "institution_level": inst["institution_level"],
            "institution_type": inst["institution_type"],
            "producer_id": h["producer_id"],
            "key_id": h["key_id"],
            "schema_fp": h["schema_fp"],
            "received_time": received_time,
            "processed_time": now,
            "refdata_version": getattr(self.refdata, "version", ""),
        }
        duplicates = 0
        if seq_state is not None:
            key = sequence.stream_key(h["institution_code"], h["producer_id"], opened.record_type)
            verdict = sequence.observe(seq_state, key, h["first_seq"], h["record_count"])
            duplicates = verdict.duplicate_count
            if verdict.gap:
                lo, hi = verdict.gap
                meta = {**base_meta, "event_time": received_time, "lineage": lineage}
                iss = make_issue(
                    meta, {"record_id": f"seq:{h['producer_id']}:{lo}-{hi}", "version": 1}, "integrity", "seq_gap", "first_seq",
                    f"{opened.record_type} 序号 {lo}–{hi} 缺失 ({hi - lo + 1} 条) / seq {lo}-{hi} missing", now,
                    {"producer_id": h["producer_id"], "first_missing": lo, "last_missing": hi, "count": hi - lo + 1},
                )
                iss.record_type = opened.record_type
                out.quality.append(iss)
        if not inst["known"]:
            meta = {**base_meta, "event_time": received_time, "lineage": lineage}
            out.quality.append(make_issue(meta, {"record_id": "", "version": 0}, "validity", "unknown_institution", "institution_code", h["institution_code"], now))
        for index, rec in enumerate(opened.records):
            self._standardize(opened.record_type, rec, index, h, base_meta, lineage, now, out)
            if index < duplicates:
                out.std[-1]["meta"]["duplicate"] = True  # re-delivered: output again (idempotent), count once
        return out

    def standardize_one(self, record_type: str, record, producer_id: str = "check") -> Outputs:
        """Standardize and quality-check one source record outside the stream (no envelope): what a
        hospital runs before submitting (事前, `yijian check --rules`)."""
        from yijian.schemas.codec import to_avro_dict

        now = datetime.now(timezone.utc)
        rec = to_avro_dict(record) if not isinstance(record, dict) else dict(record)
        inst = self._institution(rec["institution_code"])
        h = {"institution_code": rec["institution_code"], "producer_id": producer_id, "key_id": "", "schema_fp": "", "first_seq": 0}
        base_meta = {
            "record_type": record_type, "institution_code": rec["institution_code"], "county_code": inst["county_code"],
            "city_code": inst["city_code"], "institution_level": inst["institution_level"], "institution_type": inst["institution_type"],
            "producer_id": producer_id, "key_id": "", "schema_fp": "", "received_time": now, "processed_time": now,
            "refdata_version": getattr(self.refdata, "version", ""),
        }
        out = Outputs(record_type=record_type, institution_code=rec["institution_code"])
        self._standardize(record_type, rec, 0, h, base_meta, Lineage(topic="", partition=0, offset=0), now, out)
        return out

    def _standardize(self, record_type: str, rec: dict, index: int, h: dict, base_meta: dict, lineage: Lineage, now: datetime, out: Outputs) -> None:
        inst_code = h["institution_code"]
        meta = {
            **base_meta,
            "seq": h["first_seq"] + index,
            "event_time": event_time_of(record_type, rec),
            "lineage": Lineage(topic=lineage.topic, partition=lineage.partition, offset=lineage.offset, index=index),
        }
        problems = check_record(record_type, rec, meta, self.sla[record_type], now)
        patient = rec.pop("patient")
        std_patient = self._patient(patient, meta["event_time"].date(), problems)
        unmapped: list[tuple[str, str, str]] = []  # (code kind, local code, field path)
        if record_type == "encounter":
            for i, d in enumerate(rec["diagnoses"]):
                d["icd_code"] = self._map(inst_code, "diagnosis", d["diag_code"], f"diagnoses[{i}].diag_code", unmapped)
            for i, o in enumerate(rec["operations"]):
                o["icd9_code"] = self._map(inst_code, "operation", o["oprn_code"], f"operations[{i}].oprn_code", unmapped)
            rec["dept_std"] = self._map(inst_code, "department", rec["dept_code"], "dept_code", unmapped)
        elif record_type == "prescription":
            for i, item in enumerate(rec["items"]):
                item["med_list_codg"] = self._map(inst_code, "drug", item["medins_list_codg"], f"items[{i}].medins_list_codg", unmapped)
        else:
            rec["med_list_codg"] = self._map(inst_code, rec["item_type"], rec["medins_list_codg"], "medins_list_codg", unmapped)
        for kind, local, fld in unmapped:
            problems.append(("mapping", "unmapped_code", fld, f"{kind} {local}", {"code_kind": kind, "local_code": local}))
        meta["unmapped"] = [f"{kind}:{local}" for kind, local, _ in unmapped]
        rec["patient"] = std_patient
        rec["meta"] = meta
        out.std.append(rec)
        for dimension, code, fld, detail, *details in problems:
            out.quality.append(make_issue(meta, rec, dimension, code, fld, detail, now, details[0] if details else None))

    def _patient(self, p: dict, on: date, problems: list) -> dict:
        cert_type, certno = p["psn_cert_type"], p["certno"]
        id_valid = True
        region = ""
        if cert_type == "01":
            for code, dimension, fld, detail in resident_id_problems(certno, p["gend"], p["brdy"], on):
                problems.append((dimension, code, fld, detail))
                id_valid = False
            region = certno[:6] if len(certno) >= 6 else ""
        if p["brdy"] > on:
            problems.append(("validity", "invalid_birth_date", "patient.brdy", f"{p['brdy']} > {on}"))
        return {
            "pseudonym": pseudonym(self.pseudonym_key, cert_type, certno),
            "cert_type": cert_type,
            "sex": p["gend"],
            "birth_date": p["brdy"],
            "age": max(0, _age(p["brdy"], on)),
            "region_code": region,
            "id_valid": id_valid,
        }


__all__ = ["Pipeline", "Outputs", "REASONS", "issue_id"]
