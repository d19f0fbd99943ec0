"""Per-record data-quality checks (数据质量): completeness, validity, consistency, timeliness, mapping.

Each check yields :class:`QualityIssue` with a machine-readable ``code``, the ``field`` concerned and a
bilingual message an integrator can act on. The formulas that turn issues into institution scores are
in processors/README.md ("Quality metrics").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from yijian.crypto import sm3
from yijian.processors.contracts import Lineage, QualityIssue

TOLERANCE = Decimal("0.01")

MESSAGES = {
    "missing_field": ("条件必填字段缺失", "conditionally required field is missing"),
    "invalid_id_number": ("身份证号无效", "invalid resident ID number"),
    "sex_mismatch": ("性别与身份证号不符", "sex does not match the ID number"),
    "birth_mismatch": ("出生日期与身份证号不符", "birth date does not match the ID number"),
    "invalid_birth_date": ("出生日期晚于就诊时间", "birth date after the event"),
    "amount_mismatch": ("金额不等于数量×单价", "amount is not quantity × unit price"),
    "total_mismatch": ("费用合计不一致", "totals do not add up"),
    "discharge_before_admission": ("出院时间早于入院时间", "discharge before admission"),
    "main_diagnosis_count": ("主诊断数量不为1", "not exactly one primary diagnosis"),
    "late": ("上传不及时", "uploaded later than the SLA"),
    "future_event": ("业务时间晚于接收时间", "event time is in the future"),
    "unmapped_code": ("院内编码未对照国家标准编码", "local code has no national mapping"),
    "unknown_institution": ("机构未在注册表中", "institution not in the registry"),
    "seq_gap": ("记录序号不连续(疑似漏传)", "sequence gap: records never sent"),
    "encounter_missing": ("关联就诊记录未到达", "referenced encounter never arrived"),
}

SEVERITY = {
    "late": "提示",
    "unmapped_code": "提示",
    "future_event": "预警",
    "seq_gap": "预警",
    "encounter_missing": "预警",
}


def issue_id(*parts: object) -> str:
    return sm3("|".join(str(p) for p in parts).encode()).hex()[:32]


def make_issue(
    meta: dict, record: dict, dimension: str, code: str, field: str, detail: str, now: datetime, details: dict | None = None
) -> QualityIssue:
    zh, en = MESSAGES[code]
    return QualityIssue(
        issue_id=issue_id(meta["institution_code"], meta["record_type"], record.get("record_id", ""), record.get("version", 0), code, field),
        institution_code=meta["institution_code"],
        county_code=meta.get("county_code", ""),
        city_code=meta.get("city_code", ""),
        record_type=meta["record_type"],
        record_id=str(record.get("record_id", "")),
        record_version=int(record.get("version", 0)),
        dimension=dimension,
        code=code,
        field=field,
        message=f"{zh}：{detail} / {en}: {detail}",
        severity=SEVERITY.get(code, "违规" if dimension in ("validity", "consistency") else "预警"),
        event_time=meta.get("event_time"),
        detected_time=now,
        lineage=Lineage(**meta["lineage"]) if isinstance(meta.get("lineage"), dict) else meta.get("lineage"),
        details=details or {},
    )


def _amount_ok(cnt: Decimal, pric: Decimal, amount: Decimal) -> bool:
    return abs(cnt * pric - amount) <= TOLERANCE


def check_record(record_type: str, rec: dict, meta: dict, sla: timedelta, now: datetime) -> list[tuple[str, str, str, str]]:
    """(dimension, code, field, detail) for every problem of one decoded record."""
    out: list[tuple[str, str, str, str]] = []
    if record_type == "encounter":
        if rec["med_type"] == "internet" and rec.get("fst_visit_flag") is None:
            out.append(("completeness", "missing_field", "fst_visit_flag", "互联网就诊须填写初诊标志 fst_visit_flag"))
        if rec["med_type"] == "inpatient" and rec.get("rinp_plan_flag") is None:
            out.append(("completeness", "missing_field", "rinp_plan_flag", "住院须填写计划再住院标志 rinp_plan_flag"))
        if rec.get("endtime") and rec["endtime"] < rec["begntime"]:
            out.append(("consistency", "discharge_before_admission", "endtime", f"{rec['endtime']:%Y-%m-%d %H:%M} < {rec['begntime']:%Y-%m-%d %H:%M}"))
        mains = sum(1 for d in rec["diagnoses"] if d["maindiag_flag"])
        if mains != 1:
            out.append(("consistency", "main_diagnosis_count", "diagnoses", f"{mains} primary diagnoses"))
        if abs(rec["fund_pay_sumamt"] + rec["psn_selfpay_amt"] - rec["medfee_sumamt"]) > TOLERANCE:
            out.append(("consistency", "total_mismatch", "medfee_sumamt", f"{rec['fund_pay_sumamt']} + {rec['psn_selfpay_amt']} ≠ {rec['medfee_sumamt']}"))
    elif record_type == "prescription":
        if rec["online_flag"] and not rec.get("phar_code"):
            out.append(("completeness", "missing_field", "phar_code", "互联网处方须填写审核药师 phar_code"))
        if rec.get("chronic_flag") and not rec.get("long_rx_reason"):
            out.append(("completeness", "missing_field", "long_rx_reason", "慢病长处方须填写延长用量理由 long_rx_reason"))
        for i, item in enumerate(rec["items"]):
            if not _amount_ok(item["cnt"], item["pric"], item["det_item_fee_sumamt"]):
                out.append(("consistency", "amount_mismatch", f"items[{i}].det_item_fee_sumamt", f"{item['cnt']} × {item['pric']} ≠ {item['det_item_fee_sumamt']}"))
    elif record_type == "charge":
        if rec["item_type"] == "drug" and not rec.get("rxno"):
            out.append(("completeness", "missing_field", "rxno", "药品费用须填写处方号 rxno"))
        if not _amount_ok(rec["cnt"], rec["pric"], rec["det_item_fee_sumamt"]):
            out.append(("consistency", "amount_mismatch", "det_item_fee_sumamt", f"{rec['cnt']} × {rec['pric']} ≠ {rec['det_item_fee_sumamt']}"))
    event, received = meta["event_time"], meta["received_time"]
    if event - received > timedelta(minutes=10):
        out.append(("timeliness", "future_event", "event_time", f"event {event:%Y-%m-%d %H:%M} after receipt {received:%Y-%m-%d %H:%M}"))
    elif received - event > sla:
        hours = (received - event).total_seconds() / 3600
        out.append(("timeliness", "late", "event_time", f"{hours:.1f} h after the event (SLA {sla.total_seconds() / 3600:g} h)"))
    return out
