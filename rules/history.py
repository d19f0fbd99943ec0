"""A patient's recent history for stateful rules, with bounded memory and a JSON-able form.

One :class:`PatientHistory` per patient pseudonym (the processor keeps it in a Faust table keyed by
pseudonym; ``to_dict``/``from_dict`` are its serialization). It holds three kinds of events:
encounters (admission/discharge, institution, diagnoses), prescription items (drug code, days,
start time) and charge lines (code, quantity, price, time). Memory is bounded twice: events older
than ``max_days`` before the newest event are dropped, and each kind keeps at most ``max_events``.

Events are keyed by (institution, record id): a corrected record replaces its earlier version, a
cancelled one removes it, and re-delivery of the same record never duplicates it, so stateful
templates never compare a record with itself.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from yijian.rules.facts import as_datetime, as_decimal

KINDS = ("enc", "rx", "chg")


def _ts(value: Any) -> float | None:
    dt = as_datetime(value)
    return dt.timestamp() if dt else None


class PatientHistory:
    def __init__(self, pseudonym: str = "", max_days: int = 400, max_events: int = 500):
        self.pseudonym = pseudonym
        self.max_days = max_days
        self.max_events = max_events
        self.events: dict[str, list[dict]] = {k: [] for k in KINDS}
        self.newest = 0.0

    # ---- writing -------------------------------------------------------------------------
    def observe(self, record: dict) -> None:
        """Add (or replace, or remove if cancelled) the events of one standardized record."""
        meta = record["meta"]
        rtype = meta["record_type"]
        inst = record.get("institution_code") or meta["institution_code"]
        rid = str(record.get("record_id", ""))
        kind = {"encounter": "enc", "prescription": "rx", "charge": "chg"}[rtype]
        self.events[kind] = [e for e in self.events[kind] if not (e["i"] == inst and e["id"] == rid)]
        if record.get("status") == "cancelled":
            return
        new: list[dict] = []
        if rtype == "encounter":
            new.append({
                "i": inst, "id": rid, "t": record.get("med_type", ""), "b": _ts(record.get("begntime")) or _ts(meta["event_time"]),
                "e": _ts(record.get("endtime")), "ins": record.get("insutype"),
                "d": [d.get("icd_code") or "" for d in record.get("diagnoses") or []],
                "o": [o.get("icd9_code") or "" for o in record.get("operations") or []],
                "p": record.get("rinp_plan_flag"), "f": record.get("fst_visit_flag"),
            })
        elif rtype == "prescription":
            start = _ts(record.get("rx_time")) or _ts(meta["event_time"])
            for it in record.get("items") or []:
                new.append({
                    "i": inst, "id": rid, "m": record.get("mdtrt_id", ""), "c": it.get("med_list_codg") or "",
                    "d": int(it.get("prd_days") or 0), "s": start, "k": record.get("rx_kind", ""),
                })
        else:
            new.append({
                "i": inst, "id": rid, "m": record.get("mdtrt_id", ""), "c": record.get("med_list_codg") or "",
                "q": float(as_decimal(record.get("cnt"))), "p": float(as_decimal(record.get("pric"))),
                "s": _ts(record.get("fee_ocur_time")) or _ts(meta["event_time"]),
            })
        for e in new:
            t = e.get("e") or e.get("b") or e.get("s") or 0.0
            self.newest = max(self.newest, t)
        self.events[kind].extend(new)
        self.prune()

    def prune(self) -> None:
        """Drop events older than ``max_days`` before the newest one; keep at most ``max_events`` per kind."""
        horizon = self.newest - self.max_days * 86400
        for kind in KINDS:
            evs = [e for e in self.events[kind] if (e.get("e") or e.get("b") or e.get("s") or 0.0) >= horizon]
            if len(evs) > self.max_events:
                evs.sort(key=lambda e: e.get("b") or e.get("s") or 0.0)
                evs = evs[-self.max_events:]
            self.events[kind] = evs

    # ---- reading -------------------------------------------------------------------------
    def encounter(self, institution: str, record_id: str) -> dict | None:
        """The encounter context a prescription or charge refers to (by mdtrt_id)."""
        for e in self.events["enc"]:
            if e["i"] == institution and e["id"] == record_id:
                return {
                    "insutype": e["ins"], "diagnoses": e["d"], "operations": e["o"], "fst_visit_flag": e["f"],
                    "begntime": datetime.fromtimestamp(e["b"], timezone.utc) if e["b"] else None,
                    "endtime": datetime.fromtimestamp(e["e"], timezone.utc) if e["e"] else None,
                }
        return None

    def encounters(self, exclude: tuple[str, str] | None = None) -> Iterator[dict]:
        for e in self.events["enc"]:
            if exclude is None or (e["i"], e["id"]) != exclude:
                yield e

    def rx_items(self, exclude: tuple[str, str] | None = None) -> Iterator[dict]:
        for e in self.events["rx"]:
            if exclude is None or (e["i"], e["id"]) != exclude:
                yield e

    def charges(self, exclude: tuple[str, str] | None = None) -> Iterator[dict]:
        for e in self.events["chg"]:
            if exclude is None or (e["i"], e["id"]) != exclude:
                yield e

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values())

    # ---- serialization -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"pseudonym": self.pseudonym, "max_days": self.max_days, "max_events": self.max_events,
                "newest": self.newest, "events": self.events}

    @classmethod
    def from_dict(cls, data: dict) -> "PatientHistory":
        h = cls(data.get("pseudonym", ""), data.get("max_days", 400), data.get("max_events", 500))
        h.newest = data.get("newest", 0.0)
        for k in KINDS:
            h.events[k] = list(data.get("events", {}).get(k, []))
        return h


class HistoryStore:
    """Histories of many patients by pseudonym (an in-memory stand-in for the Faust table)."""

    def __init__(self, max_days: int = 400, max_events: int = 500):
        self.max_days = max_days
        self.max_events = max_events
        self.by_patient: dict[str, PatientHistory] = {}

    def get(self, pseudonym: str) -> PatientHistory:
        h = self.by_patient.get(pseudonym)
        if h is None:
            h = self.by_patient[pseudonym] = PatientHistory(pseudonym, self.max_days, self.max_events)
        return h
