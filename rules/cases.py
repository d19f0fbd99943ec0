"""Run the test cases that ship with every rule (``yijian rules test``).

A case is a base standardized record (``_context.yaml`` → ``bases``) plus overrides: ``set`` maps
dotted paths to values (``patient.sex``, ``items.0.med_list_codg``; an index past the end of a list
appends copies of its first element, so ``items.5.item_no: 6`` makes a six-item prescription).
``meta.event_time`` follows the record's business time (fee_ocur_time / rx_time / endtime or
begntime) unless a case sets it. ``history`` lists earlier records of the same patient (record ids
``H0``, ``H1`` … unless set), observed in order before the case record is evaluated.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from yijian.rules.engine import RuleEngine
from yijian.rules.history import PatientHistory
from yijian.rules.model import Case, Rule


def set_path(obj: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    for i, key in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(obj, list):
            idx = int(key)
            while len(obj) <= idx:
                obj.append(copy.deepcopy(obj[0]))
            if last:
                obj[idx] = copy.deepcopy(value)
            else:
                obj = obj[idx]
        else:
            if last:
                obj[key] = copy.deepcopy(value)
            else:
                if obj.get(key) is None:
                    obj[key] = {}
                obj = obj[key]


def build_record(case: Case, bases: dict[str, dict], default_base: str, record_id: str | None = None) -> dict:
    base = case.base or default_base
    if base not in bases:
        raise ValueError(f"未知基础记录 / unknown base record {base!r}")
    rec = copy.deepcopy(bases[base])
    if record_id is not None:
        rec["record_id"] = record_id
    for path, value in case.set.items():
        set_path(rec, path, value)
    if "meta.event_time" not in case.set:
        t = {"charge": rec.get("fee_ocur_time"), "prescription": rec.get("rx_time")}.get(base) or rec.get("endtime") or rec.get("begntime")
        if t:
            rec["meta"]["event_time"] = t
    return rec


def default_base(engine: RuleEngine, rule: Rule) -> str:
    types = engine.rules[rule.id].record_types
    return "charge" if "charge" in types else types[0]


@dataclass
class CaseResult:
    rule_id: str
    rule_version: int
    pack: str
    expect: str  # fire / pass
    index: int
    ok: bool
    detail: str
    note: str = ""


def run_case(engine: RuleEngine, rule: Rule, case: Case, bases: dict[str, dict], expect_fire: bool) -> tuple[bool, str]:
    base = default_base(engine, rule)
    history = PatientHistory(max_days=max(engine.history_days, 30))
    for i, h in enumerate(case.history):
        history.observe(build_record(h, bases, base, record_id=h.set.get("record_id", f"H{i}")))
    record = build_record(case, bases, base)
    findings = [f for f in engine.evaluate(record, history) if f.rule_id == rule.id]
    fired = bool(findings)
    detail = findings[0].message if findings else "未触发 / did not fire"
    return fired == expect_fire, detail


def run_all(engine: RuleEngine, bases: dict[str, dict], rule_ids: set[str] | None = None) -> list[CaseResult]:
    results = []
    for cr in engine.rules.values():
        rule = cr.rule
        if rule_ids and rule.id not in rule_ids:
            continue
        for expect, cases in (("fire", rule.cases.fire), ("pass", rule.cases.pass_)):
            for i, case in enumerate(cases):
                try:
                    ok, detail = run_case(engine, rule, case, bases, expect == "fire")
                except Exception as exc:  # a broken case is a failed case, reported with its cause
                    ok, detail = False, f"用例出错 / case error: {type(exc).__name__}: {exc}"
                results.append(CaseResult(rule.id, rule.version, cr.pack.id, expect, i, ok, detail, case.note))
    return results
