"""Internal-topic batches (processors/contracts.py) → rows of the ClickHouse tables → Arrow tables.

One function per batch kind turns an item (a dict as decoded by ``contracts.decode_batch``) into
rows keyed by table. Arrow schemas are derived from the live table definitions (``DESCRIBE``), so
the migrations stay the single source of column types.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

TABLE_OF_RECORD = {"encounter": "encounters", "prescription": "prescription_items", "charge": "charges"}
SINK_TABLES = ("encounters", "prescription_items", "charges", "quality_issues", "findings", "rejected", "finding_handling", "institutions")


def ts(value: Any) -> datetime | None:
    """ISO-8601 text (or datetime) → aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:  # contracts carry zones; a naive time is Beijing time like in the SDK
        from zoneinfo import ZoneInfo

        dt = dt.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return dt.astimezone(timezone.utc)


def region_of(institution_code: str) -> tuple[str, str]:
    """(county, city) from an institution code H + 6-digit region + 5 digits ("" if malformed)."""
    if re.match(r"^[HP]\d{11}$", institution_code or ""):
        county = institution_code[1:7]
        return county, county[:4] + "00"
    return "", ""


def _meta_cols(meta: dict, msg_ts: datetime) -> dict:
    lin = meta.get("lineage") or {}
    return {
        "institution_code": meta["institution_code"],
        "county_code": meta.get("county_code", ""),
        "city_code": meta.get("city_code", ""),
        "institution_level": int(meta.get("institution_level") or 0),
        "institution_type": meta.get("institution_type", ""),
        "unmapped": list(meta.get("unmapped") or []),
        "producer_id": meta.get("producer_id", ""),
        "seq": int(meta.get("seq") or 0),
        "key_id": meta.get("key_id", ""),
        "schema_fp": meta.get("schema_fp", ""),
        "refdata_version": meta.get("refdata_version", ""),
        "event_time": ts(meta["event_time"]),
        "received_time": ts(meta.get("received_time")) or msg_ts,
        "processed_time": ts(meta.get("processed_time")) or msg_ts,
        "src_topic": lin.get("topic", ""),
        "src_partition": int(lin.get("partition", 0)),
        "src_offset": int(lin.get("offset", 0)),
        "src_index": int(lin.get("index", 0)),
    }


def _lineage_cols(lin: dict | None) -> dict:
    lin = lin or {}
    return {
        "src_topic": lin.get("topic", ""),
        "src_partition": int(lin.get("partition", 0)),
        "src_offset": int(lin.get("offset", 0)),
        "src_index": int(lin.get("index", 0)),
    }


def _patient(p: dict) -> dict:
    return {
        "patient_pseudonym": p.get("pseudonym", ""),
        "patient_sex": p.get("sex", ""),
        "patient_age": max(0, min(255, int(p.get("age") or 0))),
    }


def std_rows(item: dict, msg_ts: datetime) -> dict[str, list[dict]]:
    meta = item["meta"]
    rtype = meta["record_type"]
    common = _meta_cols(meta, msg_ts)
    patient = _patient(item.get("patient") or {})
    base = {**common, **patient, "record_id": item["record_id"], "version": int(item["version"]), "status": item["status"], "med_type": item.get("med_type", "")}
    out: dict[str, list[dict]] = {}
    if rtype == "encounter":
        diags = item.get("diagnoses") or []
        main = next((d for d in diags if d.get("maindiag_flag")), diags[0] if diags else {})
        p = item.get("patient") or {}
        out["encounters"] = [
            {
                **base,
                "insutype": item.get("insutype", ""),
                "patient_region_code": p.get("region_code", ""),
                "patient_id_valid": bool(p.get("id_valid", False)),
                "dept_code": item.get("dept_code", ""),
                "dept_std": item.get("dept_std") or "",
                "atddr_code": item.get("atddr_code", ""),
                "begntime": ts(item["begntime"]),
                "endtime": ts(item.get("endtime")),
                "main_diag_code": main.get("diag_code", ""),
                "main_diag_icd": main.get("icd_code") or "",
                "diag_icd": [d.get("icd_code") or "" for d in diags],
                "oprn_icd9": [o.get("icd9_code") or "" for o in item.get("operations") or []],
                "fst_visit_flag": item.get("fst_visit_flag"),
                "rinp_plan_flag": item.get("rinp_plan_flag"),
                "medfee_sumamt": item["medfee_sumamt"],
                "fund_pay_sumamt": item["fund_pay_sumamt"],
                "psn_selfpay_amt": item["psn_selfpay_amt"],
            }
        ]
    elif rtype == "prescription":
        items = item.get("items") or []
        head = {
            **base,
            "item_count": len(items),
            "mdtrt_id": item.get("mdtrt_id", ""),
            "rx_kind": item.get("rx_kind", ""),
            "rx_time": ts(item["rx_time"]),
            "dept_code": item.get("dept_code", ""),
            "prsc_dr_code": item.get("prsc_dr_code", ""),
            "phar_code": item.get("phar_code") or "",
            "online_flag": bool(item.get("online_flag")),
            "chronic_flag": bool(item.get("chronic_flag")),
        }
        out["prescription_items"] = [
            {
                **head,
                "item_no": int(it["item_no"]),
                "medins_list_codg": it.get("medins_list_codg", ""),
                "med_list_codg": it.get("med_list_codg") or "",
                "drug_name": it.get("drug_name", ""),
                "sin_doscnt": it["sin_doscnt"],
                "dose_unit": it.get("dose_unit", ""),
                "used_frqu": it.get("used_frqu", ""),
                "drug_route": it.get("drug_route", ""),
                "prd_days": int(it.get("prd_days") or 0),
                "cnt": it["cnt"],
                "pric": it["pric"],
                "det_item_fee_sumamt": it["det_item_fee_sumamt"],
                "antibiotic_tier": it.get("antibiotic_tier", "none"),
                "controlled_class": it.get("controlled_class", "none"),
            }
            for it in items
        ]
    elif rtype == "charge":
        out["charges"] = [
            {
                **base,
                "mdtrt_id": item.get("mdtrt_id", ""),
                "rxno": item.get("rxno") or "",
                "item_type": item.get("item_type", ""),
                "medins_list_codg": item.get("medins_list_codg", ""),
                "med_list_codg": item.get("med_list_codg") or "",
                "item_name": item.get("item_name", ""),
                "cnt": item["cnt"],
                "pric": item["pric"],
                "det_item_fee_sumamt": item["det_item_fee_sumamt"],
                "fulamt_ownpay_amt": item["fulamt_ownpay_amt"],
                "fund_pay_amt": item["fund_pay_amt"],
                "fee_ocur_time": ts(item["fee_ocur_time"]),
                "bilg_dept_codg": item.get("bilg_dept_codg", ""),
                "bilg_dr_codg": item.get("bilg_dr_codg", ""),
            }
        ]
    else:
        raise ValueError(f"unknown record_type {rtype!r}")
    out["institutions"] = [
        {
            "institution_code": common["institution_code"],
            "name": meta.get("institution_name", "") or "",
            "county_code": common["county_code"],
            "city_code": common["city_code"],
            "institution_level": common["institution_level"],
            "institution_type": common["institution_type"],
            "first_seen": common["received_time"],
            "updated_time": common["processed_time"],
        }
    ]
    return out


def quality_rows(item: dict, msg_ts: datetime) -> dict[str, list[dict]]:
    detected = ts(item["detected_time"])
    return {
        "quality_issues": [
            {
                "issue_id": item["issue_id"],
                "institution_code": item["institution_code"],
                "county_code": item.get("county_code", ""),
                "city_code": item.get("city_code", ""),
                "record_type": item.get("record_type", ""),
                "record_id": item.get("record_id", ""),
                "version": int(item.get("record_version") or 0),
                "dimension": item["dimension"],
                "code": item["code"],
                "field": item.get("field", ""),
                "message": item.get("message", ""),
                "severity": item["severity"],
                "details": json.dumps(item.get("details") or {}, ensure_ascii=False, sort_keys=True),
                "event_time": ts(item.get("event_time")) or detected,
                "received_time": msg_ts,
                "processed_time": detected,
                **_lineage_cols(item.get("lineage")),
            }
        ]
    }


def finding_rows(item: dict, msg_ts: datetime) -> dict[str, list[dict]]:
    items = item.get("items") or []
    return {
        "findings": [
            {
                "finding_id": item["finding_id"],
                "rule_id": item["rule_id"],
                "rule_version": int(item["rule_version"]),
                "rule_name": item.get("rule_name", ""),
                "category": item.get("category", ""),
                "severity": item["severity"],
                "result_type": item["result_type"],
                "warn_level": int(item.get("warn_level") or 0),
                "institution_code": item["institution_code"],
                "county_code": item.get("county_code", ""),
                "city_code": item.get("city_code", ""),
                "record_type": item.get("record_type", ""),
                "record_id": item.get("record_id", ""),
                "version": int(item.get("record_version") or 0),
                "patient_pseudonym": item.get("patient_pseudonym", ""),
                "message": item.get("message", ""),
                "basis": item.get("basis", ""),
                "vola_amt": item.get("vola_amt", "0"),
                "item_record_type": [i.get("record_type", "") for i in items],
                "item_record_id": [i.get("record_id", "") for i in items],
                "item_vola_type": [int(i.get("vola_item_type", 1)) for i in items],
                "item_vola_amt": [i.get("vola_amt", "0") for i in items],
                "pack_version": item.get("pack_version", ""),
                "event_time": ts(item["event_time"]),
                "received_time": msg_ts,
                "processed_time": ts(item["detected_time"]),
                **_lineage_cols(item.get("lineage")),
            }
        ]
    }


def rejected_rows(item: dict, msg_ts: datetime) -> dict[str, list[dict]]:
    county, city = region_of(item.get("institution_code", ""))
    detected = ts(item["detected_time"])
    return {
        "rejected": [
            {
                "reject_id": item["reject_id"],
                "reason": item["reason"],
                "message": item.get("message", ""),
                "institution_code": item.get("institution_code", ""),
                "county_code": county,
                "city_code": city,
                "record_type": item.get("record_type", ""),
                "record_id": "",
                "version": 0,
                "key_id": item.get("key_id", ""),
                "producer_id": item.get("producer_id", ""),
                "first_seq": int(item.get("first_seq") or 0),
                "record_count": int(item.get("record_count") or 0),
                "record_index": int(item.get("record_index", -1)),
                "original_size": int(item.get("original_size") or 0),
                "event_time": detected,
                "received_time": msg_ts,
                "processed_time": detected,
                **_lineage_cols(item.get("lineage")),
            }
        ]
    }


def handling_rows(item: dict, msg_ts: datetime) -> dict[str, list[dict]]:
    county, city = region_of(item.get("institution_code", ""))
    handled = ts(item["handled_time"])
    return {
        "finding_handling": [
            {
                "feedback_id": item["feedback_id"],
                "institution_code": item["institution_code"],
                "county_code": county,
                "city_code": city,
                "record_id": item["feedback_id"],
                "version": 1,
                "dspo_way": item["dspo_way"],
                "dspo_way_rea": item.get("dspo_way_rea", ""),
                "handler_code": item.get("handler_code", ""),
                "event_time": handled,
                "received_time": msg_ts,
                "processed_time": msg_ts,
                **_lineage_cols(item.get("lineage")),
            }
        ]
    }


CONVERTERS = {"std": std_rows, "quality": quality_rows, "finding": finding_rows, "rejected": rejected_rows, "handling": handling_rows}


def undecodable_row(topic: str, partition: int, offset: int, error: str, size: int, msg_ts: datetime) -> dict[str, list[dict]]:
    """A message the sink cannot read is stored in ``rejected`` (reason sink_decode_error), never dropped."""
    now = datetime.now(timezone.utc)
    return {
        "rejected": [
            {
                "reject_id": f"{topic}:{partition}:{offset}",
                "reason": "sink_decode_error",
                "message": f"入库程序无法解析该消息 / the sink could not decode this message: {error[:300]}",
                "institution_code": "",
                "county_code": "",
                "city_code": "",
                "record_type": "",
                "record_id": "",
                "version": 0,
                "key_id": "",
                "producer_id": "",
                "first_seq": 0,
                "record_count": 0,
                "record_index": -1,
                "original_size": size,
                "event_time": msg_ts,
                "received_time": msg_ts,
                "processed_time": now,
                "src_topic": topic,
                "src_partition": partition,
                "src_offset": offset,
                "src_index": 0,
            }
        ]
    }


# --- Arrow ----------------------------------------------------------------------------------------------


def arrow_type(ch_type: str):
    """ClickHouse column type → pyarrow type (the subset used by the migrations)."""
    import pyarrow as pa

    t = ch_type.strip()
    m = re.match(r"^(Nullable|LowCardinality)\((.*)\)$", t)
    if m:
        return arrow_type(m.group(2))
    m = re.match(r"^Array\((.*)\)$", t)
    if m:
        return pa.list_(arrow_type(m.group(1)))
    m = re.match(r"^Decimal\((\d+),\s*(\d+)\)$", t)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    if t.startswith("DateTime64"):
        return pa.timestamp("ms", tz="UTC")
    if t.startswith("DateTime"):
        return pa.timestamp("s", tz="UTC")
    simple = {
        "String": pa.string(), "Bool": pa.bool_(), "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(),
        "UInt64": pa.uint64(), "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
        "Float32": pa.float32(), "Float64": pa.float64(), "Date": pa.date32(), "Date32": pa.date32(),
    }
    if t in simple:
        return simple[t]
    raise TypeError(f"no Arrow mapping for ClickHouse type {ch_type}")


def _coerce(value: Any, pa_type):
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_decimal(pa_type):
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-pa_type.scale))
    if pa.types.is_list(pa_type):
        return [_coerce(v, pa_type.value_type) for v in value]
    if pa.types.is_date32(pa_type) and isinstance(value, str):
        return date.fromisoformat(value)
    return value


class ArrowSchemas:
    """Arrow schemas of the sink's tables, read once from ``DESCRIBE TABLE`` (DEFAULT columns omitted)."""

    def __init__(self, client, database: str):
        import pyarrow as pa

        self.schemas: dict[str, pa.Schema] = {}
        for table in SINK_TABLES:
            rows = client.query(f"DESCRIBE TABLE {database}.{table}").result_rows
            fields = [pa.field(r[0], arrow_type(r[1]), nullable=r[1].startswith("Nullable")) for r in rows if r[2] not in ("DEFAULT", "MATERIALIZED", "ALIAS")]
            self.schemas[table] = pa.schema(fields)

    def table(self, name: str, rows: list[dict]):
        import pyarrow as pa

        schema = self.schemas[name]
        cols = []
        for f in schema:
            values = [r.get(f.name) for r in rows]
            if pa.types.is_decimal(f.type):
                # decimals travel as strings: let Arrow parse and rescale them (exact, fast)
                strs = pa.array([None if v is None else str(v) for v in values], pa.string())
                import pyarrow.compute as pc

                wide = strs.cast(pa.decimal128(38, 12))
                cols.append(pc.round(wide, ndigits=f.type.scale, round_mode="half_to_even").cast(f.type))
            elif pa.types.is_list(f.type) and pa.types.is_decimal(f.type.value_type):
                cols.append(pa.array([_coerce(v, f.type) for v in values], type=f.type))
            else:
                cols.append(pa.array(values, type=f.type))
        return pa.Table.from_arrays(cols, schema=schema)
