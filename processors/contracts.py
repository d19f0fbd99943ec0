"""Messages on the platform's internal topics (contracts between processors, rules and the sink).

Internal topics carry *batches*: one Kafka message holds the records of one envelope (or one
processing step), as JSON ``{"kind": ..., "items": [...]}`` encoded by :func:`encode_batch`. Decimals
travel as strings, times as ISO-8601 with zone, dates as ISO dates. Key = institution code
(``std.by_patient``: patient pseudonym).

A **standardized record** (topic ``std.records``) is the decoded source record (schemas/models.py,
current version) with these changes:
- ``patient`` is replaced by :class:`StdPatient` (pseudonym, sex, birth date, age, region): no name,
  no ID number;
- national codes are added next to the local ones: ``diagnoses[i].icd_code`` (ICD-10 医保版),
  ``operations[i].icd9_code`` (ICD-9-CM-3), prescription ``items[i].med_list_codg`` and charge
  ``med_list_codg`` (医保药品/服务项目/耗材 code), ``dept_std`` (科别); ``None`` where no mapping exists;
- ``meta`` (:class:`StdMeta`) carries lineage, times and institution attributes.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

BatchKind = Literal["std", "quality", "finding", "rejected", "handling"]


class Lineage(BaseModel):
    """Where a record came from: the raw envelope's Kafka coordinates (R17 traceability)."""

    topic: str
    partition: int
    offset: int
    index: int = 0  # position of the record inside the envelope


class StdMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    record_type: Literal["encounter", "prescription", "charge"]
    institution_code: str
    county_code: str  # GB/T 2260 county of the institution ("" if the institution is unknown)
    city_code: str  # prefecture (地级) code, e.g. 520100
    institution_level: int  # 1, 2, 3 (一级/二级/三级); 0 unknown
    institution_type: str  # general 综合 / tcm 中医 / specialty 专科 / internet 互联网医院 / ... ; "" unknown
    producer_id: str
    seq: int  # producer sequence number of this record (per institution, producer and record type)
    key_id: str
    schema_fp: str
    event_time: datetime  # business time: encounter begntime (endtime once discharged), rx_time, fee_ocur_time
    received_time: datetime  # envelope sent_time as accepted by Kafka (message timestamp)
    processed_time: datetime
    lineage: Lineage
    unmapped: list[str] = []  # "diag:J18.9", "drug:LOCAL123" ... codes without a national mapping
    refdata_version: str = ""


class StdPatient(BaseModel):
    pseudonym: str  # hex HMAC-SM3(pseudonym key, cert type + ":" + cert number)
    cert_type: str
    sex: str  # GB/T 2261.1
    birth_date: date
    age: int  # whole years at event time
    region_code: str  # first 6 digits of a resident ID ("" for other documents)
    id_valid: bool  # passed GB 11643 checks (check digit, birth date, region, sex digit)


class QualityIssue(BaseModel):
    """One data-quality problem; per record (record_id set) or per institution (record_id "")."""

    issue_id: str  # deterministic: sha/sm3 of (institution, record type, record id, version, code, field)
    institution_code: str
    county_code: str
    city_code: str
    record_type: str  # encounter / prescription / charge / institution
    record_id: str
    record_version: int
    dimension: Literal["completeness", "validity", "consistency", "timeliness", "mapping", "integrity", "connection", "security"]
    code: str  # machine-readable, e.g. missing_field, invalid_id_number, unmapped_code, late, seq_gap
    field: str
    message: str  # 中文 / English, actionable by the integrator
    severity: Literal["提示", "预警", "违规"]
    event_time: datetime | None = None
    detected_time: datetime
    lineage: Lineage | None = None
    details: dict[str, Any] = {}


class FindingItem(BaseModel):
    record_type: str
    record_id: str
    vola_item_type: Literal[1, 2]  # 1 违规项 / 2 涉及项
    vola_amt: Decimal


class Finding(BaseModel):
    """A rule hit, in the shape of the national 3101 result."""

    finding_id: str  # deterministic: hash of (rule id, rule version, institution, record type, record id, record version)
    rule_id: str
    rule_version: int
    rule_name: str
    category: str  # 政策 / 管理 / 医疗
    severity: Literal["提示", "预警", "违规"]
    result_type: Literal["明确", "可疑"]
    warn_level: int
    institution_code: str
    county_code: str
    city_code: str
    record_type: str
    record_id: str
    record_version: int
    patient_pseudonym: str
    message: str  # vola_cont
    basis: str  # vola_evid (legal basis)
    vola_amt: Decimal
    items: list[FindingItem]
    event_time: datetime
    detected_time: datetime
    lineage: Lineage | None = None
    pack_version: str = ""


class Rejected(BaseModel):
    """Something that could not be accepted, with a reason an integrator can act on."""

    reject_id: str  # deterministic: topic:partition:offset[:index]
    reason: str  # machine-readable code, e.g. bad_envelope, unknown_key, revoked_key, bad_tag, unknown_schema, decode_error, invalid_record
    message: str  # 中文 / English
    institution_code: str  # as claimed by the envelope header ("" if unreadable)
    record_type: str
    key_id: str
    producer_id: str
    first_seq: int
    record_count: int
    lineage: Lineage
    detected_time: datetime
    record_index: int = -1  # -1: the whole envelope
    original_size: int = 0


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, (bytes, bytearray)):
        return obj.hex()
    raise TypeError(f"not JSON-serializable: {type(obj).__name__}")


def encode_batch(kind: BatchKind, items: list[Any]) -> bytes:
    """One Kafka message for an internal topic."""
    return json.dumps({"kind": kind, "items": items}, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def decode_batch(value: bytes) -> tuple[BatchKind, list[dict]]:
    msg = json.loads(value)
    return msg["kind"], msg["items"]
