"""Per-institution checks: connection status (heartbeats and traffic), daily manifest reconciliation
(全量汇聚 对账), cross-record consistency (charges and prescriptions whose encounter never arrives) and
key-usage anomalies (unknown producer ids, activity at unusual hours).

State lives in plain dicts (Faust tables in the worker, keyed by strings that start with the
institution code so they are co-partitioned with the raw topics). All times are UTC; business dates
and "unusual hours" are Beijing time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from yijian.processors.contracts import QualityIssue
from yijian.schemas.models import business_amount, business_date
from yijian.processors.quality import issue_id

BEIJING = ZoneInfo("Asia/Shanghai")
OFF_HOURS = range(1, 5)  # 01:00–04:59 Beijing time


def _issue(inst: str, record_type: str, record_id: str, dimension: str, code: str, field: str, message: str, severity: str, now: datetime, details: dict, region: tuple[str, str] = ("", "")) -> QualityIssue:
    return QualityIssue(
        issue_id=issue_id(inst, record_type, record_id, 0, code, field),
        institution_code=inst,
        county_code=region[0],
        city_code=region[1],
        record_type=record_type,
        record_id=record_id,
        record_version=0,
        dimension=dimension,
        code=code,
        field=field,
        message=message,
        severity=severity,
        detected_time=now,
        details=details,
    )




# --- traffic, connection, key usage ------------------------------------------------------------------
def observe_traffic(state, inst: str, producer_id: str, when: datetime, now: datetime, known_producers: set[str] | None) -> list[QualityIssue]:
    """Record activity of an institution; returns key-usage anomaly issues."""
    key = f"{inst}|conn"
    entry = dict(state.get(key) or {"producers": [], "first_seen": now.isoformat()})
    issues = []
    producers = set(entry["producers"])
    if producer_id not in producers:
        if known_producers is not None and producer_id not in known_producers:
            issues.append(_issue(
                inst, "institution", f"producer:{producer_id}", "security", "unknown_producer", "producer_id",
                f"未登记的上报程序使用了本机构密钥：{producer_id} / an unregistered producer used this institution's key: {producer_id}",
                "预警", now, {"producer_id": producer_id},
            ))
        producers.add(producer_id)
    local = when.astimezone(BEIJING)
    if local.hour in OFF_HOURS:
        issues.append(_issue(
            inst, "institution", f"offhours:{local:%Y-%m-%d}", "security", "off_hours_activity", "sent_time",
            f"非工作时段({local:%H:%M})有密钥使用 / key used at an unusual hour ({local:%H:%M} Beijing time)",
            "提示", now, {"sent_time": when.isoformat(), "producer_id": producer_id},
        ))
    entry["producers"] = sorted(producers)
    entry["last_traffic"] = when.isoformat()
    state[key] = entry
    return issues


def observe_heartbeat(state, inst: str, hb: dict) -> None:
    key = f"{inst}|conn"
    entry = dict(state.get(key) or {"producers": [], "first_seen": hb["sent_time"].isoformat()})
    entry["last_heartbeat"] = hb["sent_time"].isoformat()
    entry["outbox_depth"] = hb["outbox_depth"]
    entry["producers"] = sorted(set(entry["producers"]) | {hb["producer_id"]})
    state[key] = entry


def connection_status(entry: dict | None, now: datetime, silent_after: timedelta) -> tuple[str, datetime | None]:
    """connected / silent / never_connected / pending, and when the institution was last seen.

    An institution the registry lists but that has sent nothing is ``pending`` until it has been
    registered (as seen by the processors) for longer than ``silent_after``, then ``never_connected``.
    """
    if not entry:
        return "never_connected", None
    seen = [datetime.fromisoformat(entry[k]) for k in ("last_heartbeat", "last_traffic") if entry.get(k)]
    last = max(seen) if seen else None
    if last is None:
        registered = datetime.fromisoformat(entry["registered"]) if entry.get("registered") else None
        if registered is not None and now - registered <= silent_after:
            return "pending", None
        return "never_connected", None
    return ("connected" if now - last <= silent_after else "silent"), last


def connection_issues(state, institutions: list[str], now: datetime, silent_after: timedelta, regions: dict[str, tuple[str, str]] | None = None) -> list[QualityIssue]:
    """An issue per institution that is silent or never connected; reported once per status and hour."""
    out = []
    for inst in institutions:
        entry = state.get(f"{inst}|conn")
        if entry is None:
            entry = {"producers": [], "registered": now.isoformat()}
            state[f"{inst}|conn"] = entry
        status, last = connection_status(entry, now, silent_after)
        mark = f"{status}@{now:%Y%m%d%H}"
        if status in ("connected", "pending") or state.get(f"{inst}|conn_reported") == mark:
            continue
        state[f"{inst}|conn_reported"] = mark
        if status == "silent":
            minutes = int((now - last).total_seconds() // 60)
            msg = f"机构已{minutes}分钟无心跳和数据 / silent for {minutes} min (last seen {last:%Y-%m-%d %H:%M} UTC)"
        else:
            msg = "机构从未接入平台 / never connected to the platform"
        out.append(_issue(
            inst, "institution", f"conn:{now:%Y%m%d%H}", "connection", status, "heartbeat", msg, "预警", now,
            {"status": status, "last_seen": last.isoformat() if last else None}, (regions or {}).get(inst, ("", "")),
        ))
    return out


# --- daily manifest reconciliation -------------------------------------------------------------------
def count_received(state, inst: str, record_type: str, rec: dict) -> None:
    """Count one received record submission under its business day (schemas.models.business_date)."""
    amount = business_amount(record_type, rec)
    key = f"{inst}|recv|{record_type}|{business_date(record_type, rec).isoformat()}"
    entry = dict(state.get(key) or {"count": 0, "amount": "0"})
    entry["count"] += 1
    entry["amount"] = str(Decimal(entry["amount"]) + amount)
    state[key] = entry


def hold_manifest(state, manifest: dict, now: datetime) -> None:
    """Keep a daily manifest until its grace period ends: records of that day may still be in flight
    on the other raw topics when the manifest arrives."""
    inst = manifest["institution_code"]
    state[f"{inst}|manifest|{manifest['business_date'].isoformat()}|{manifest['producer_id']}"] = {
        "received": now.isoformat(),
        "business_date": manifest["business_date"].isoformat(),
        "producer_id": manifest["producer_id"],
        "entries": [{**e, "amount_sum": str(e["amount_sum"])} for e in manifest["entries"]],
    }


def due_manifests(state, now: datetime, grace: timedelta, owns=lambda inst: True) -> list[QualityIssue]:
    """Reconcile every held manifest whose grace period has passed, then forget it."""
    out = []
    for key, value in list(state.items()):
        parts = key.split("|")
        if len(parts) != 4 or parts[1] != "manifest" or not owns(parts[0]):
            continue
        if now - datetime.fromisoformat(value["received"]) < grace:
            continue
        manifest = {
            "institution_code": parts[0],
            "business_date": datetime.fromisoformat(value["business_date"]).date(),
            "entries": value["entries"],
        }
        out.extend(reconcile_manifest(state, manifest, now))
        del state[key]
    return out


def reconcile_manifest(state, manifest: dict, now: datetime) -> list[QualityIssue]:
    """Compare a hospital's declared counts and amounts with what the platform received."""
    inst = manifest["institution_code"]
    day = manifest["business_date"].isoformat()
    out = []
    for e in manifest["entries"]:
        got = state.get(f"{inst}|recv|{e['record_type']}|{day}") or {"count": 0, "amount": "0"}
        declared_amt = Decimal(str(e["amount_sum"]))
        if got["count"] != e["record_count"] or abs(Decimal(got["amount"]) - declared_amt) > Decimal("0.01"):
            out.append(_issue(
                inst, e["record_type"], f"manifest:{day}", "integrity", "manifest_mismatch", "record_count",
                f"{day} {e['record_type']} 申报{e['record_count']}条/{declared_amt}元，平台收到{got['count']}条/{got['amount']}元 / "
                f"declared {e['record_count']} records, {declared_amt} yuan; received {got['count']}, {got['amount']}",
                "违规" if got["count"] < e["record_count"] else "预警", now,
                {"declared_count": e["record_count"], "received_count": got["count"], "declared_amount": str(declared_amt), "received_amount": got["amount"], "business_date": day},
            ))
    return out


# --- cross-record consistency ------------------------------------------------------------------------
def observe_reference(state, inst: str, record_type: str, rec: dict, now: datetime) -> None:
    if record_type == "encounter":
        state[f"{inst}|enc|{rec['record_id']}"] = now.isoformat()
    else:
        ekey = f"{inst}|enc|{rec['mdtrt_id']}"
        if state.get(ekey) is None:
            state[f"{inst}|orphan|{record_type}|{rec['record_id']}"] = {"mdtrt_id": rec["mdtrt_id"], "since": now.isoformat()}


def orphan_issues(state, now: datetime, grace: timedelta, retention: timedelta, owns=lambda inst: True) -> list[QualityIssue]:
    """Prescriptions/charges whose encounter did not arrive within the grace period; drops old state.

    ``owns(institution)`` limits the scan to the institutions of one partition.
    """
    out, drop = [], []
    for key, value in list(state.items()):
        parts = key.split("|")
        if len(parts) < 3 or not owns(parts[0]):
            continue
        if parts[1] == "orphan":
            inst, record_type, record_id = parts[0], parts[2], parts[3]
            if state.get(f"{inst}|enc|{value['mdtrt_id']}") is not None:
                drop.append(key)
            elif now - datetime.fromisoformat(value["since"]) > grace:
                out.append(_issue(
                    inst, record_type, record_id, "consistency", "encounter_missing", "mdtrt_id",
                    f"关联就诊记录 {value['mdtrt_id']} 未在宽限期内到达 / encounter {value['mdtrt_id']} did not arrive within {grace}",
                    "预警", now, {"mdtrt_id": value["mdtrt_id"]},
                ))
                drop.append(key)
        elif parts[1] == "enc" and now - datetime.fromisoformat(value) > retention:
            drop.append(key)
    for key in drop:
        del state[key]
    return out
