"""The rule engine: evaluates the rule packs on one standardized record, returns Findings.

Importable with pyyaml + pydantic + the standard library only (the hospital SDK runs it before
submitting, 事前). Rules are indexed by record type and, for code-triggered templates, by national
code (drug/item/consumable code exactly; diagnosis by ICD chapter letter; operation by its first two
digits), so a record only runs the rules that can concern it. Validity dates, scene, institution
level/type and insurance type are filtered before a template runs.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError

from yijian.processors.contracts import Finding, FindingItem, Lineage
from yijian.rules.facts import Facts, build_facts
from yijian.rules.model import Pack, Rule, RuleContext
from yijian.rules.templates import Env, Hit, Params, Template, registry

CENT = Decimal("0.01")


class RuleError(ValueError):
    """A rule that cannot be compiled (unknown template, bad params, duplicate id)."""


@dataclass
class CompiledRule:
    rule: Rule
    pack: Pack
    template: Template
    params: Params
    record_types: tuple[str, ...]
    trigger: str | None
    codes: frozenset[str]

    @property
    def id(self) -> str:
        return self.rule.id


def compile_rule(rule: Rule, pack: Pack, templates: dict[str, Template] | None = None) -> CompiledRule:
    templates = templates if templates is not None else registry()
    tpl = templates.get(rule.template)
    if tpl is None:
        raise RuleError(f"规则 {rule.id}：未知模板 / unknown template {rule.template!r} (known: {', '.join(sorted(templates))})")
    try:
        params = tpl.Params.model_validate(rule.params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RuleError(f"规则 {rule.id}：参数错误 / bad params for template {rule.template}: {problems}") from None
    extra = tpl.lint(params)
    if extra:
        raise RuleError(f"规则 {rule.id}：参数错误 / bad params: {'; '.join(extra)}")
    trigger = tpl.trigger_kind(params)
    return CompiledRule(rule, pack, tpl, params, tuple(tpl.record_types_for(params)), trigger,
                        frozenset(tpl.codes(params)) if trigger else frozenset())


def finding_id(rule_id: str, rule_version: int, institution: str, record_type: str, record_id: str, record_version: int) -> str:
    key = f"{rule_id}|{rule_version}|{institution}|{record_type}|{record_id}|{record_version}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _as_dict(record: Any) -> dict:
    if isinstance(record, BaseModel):
        return record.model_dump(mode="json")
    return record


class RuleEngine:
    """``RuleEngine(packs, context)``; ``evaluate(std_record, history=None) -> list[Finding]``.

    ``stage`` (事前/事中/事后) keeps only the rules declared for that stage (the SDK passes 事前).
    ``calls`` counts template invocations per rule id (for tests and metrics).
    """

    def __init__(self, packs: Iterable[Pack], context: RuleContext | None = None, *, stage: str | None = None):
        self.packs = list(packs)
        self.context = context or RuleContext()
        self.stage = stage
        self.templates = registry()
        self.rules: dict[str, CompiledRule] = {}
        self.untriggered: dict[str, list[CompiledRule]] = {}
        self.index: dict[str, dict[str, dict[str, list[CompiledRule]]]] = {}  # rtype -> trigger -> key -> rules
        self.calls: Counter[str] = Counter()
        self.history_days = 0
        for pack in self.packs:
            for rule in pack.rules:
                if rule.id in self.rules:
                    raise RuleError(f"规则编号重复 / duplicate rule id {rule.id} (packs {self.rules[rule.id].pack.id}, {pack.id})")
                if stage and stage not in rule.stages:
                    continue
                cr = compile_rule(rule, pack, self.templates)
                self.rules[rule.id] = cr
                self.history_days = max(self.history_days, cr.template.window_days(cr.params) if cr.template.stateful else 0)
                for rt in cr.record_types:
                    if cr.trigger is None:
                        self.untriggered.setdefault(rt, []).append(cr)
                    else:
                        by_key = self.index.setdefault(rt, {}).setdefault(cr.trigger, {})
                        for code in cr.codes:
                            by_key.setdefault(code, []).append(cr)

    # ---- selection -----------------------------------------------------------------------
    def candidates(self, f: Facts) -> list[CompiledRule]:
        """The rules that can concern this record (by type and codes), before filters."""
        out = list(self.untriggered.get(f.record_type, ()))
        idx = self.index.get(f.record_type)
        if idx:
            seen = {id(cr) for cr in out}

            def add(rules):
                for cr in rules:
                    if id(cr) not in seen:
                        seen.add(id(cr))
                        out.append(cr)

            by_line = idx.get("line")
            if by_line:
                for ln in f.lines:
                    if ln.code in by_line:
                        add(by_line[ln.code])
            by_diag = idx.get("diagnosis")
            if by_diag:
                for d in f.diagnoses or ():
                    if d and d[0] in by_diag:
                        add(by_diag[d[0]])
            by_op = idx.get("operation")
            if by_op:
                for o in f.operations or ():
                    if o and o[:2] in by_op:
                        add(by_op[o[:2]])
        return out

    @staticmethod
    def applicable(cr: CompiledRule, f: Facts) -> str | None:
        """None if the rule applies to the record; else why not (中文)."""
        r = cr.rule
        if not r.effective_on(f.event_date):
            return f"不在有效期内 ({r.effective_from} – {r.effective_to or '…'})"
        if r.scenes and f.med_type not in r.scenes:
            return f"就医方式 {f.med_type} 不在 {r.scenes}"
        if r.institution_levels and f.level not in r.institution_levels:
            return f"机构级别 {f.level} 不在 {r.institution_levels}"
        if r.institution_types and f.inst_type not in r.institution_types:
            return f"机构类型 {f.inst_type} 不在 {r.institution_types}"
        if r.insutypes and f.insutype not in r.insutypes:
            return f"险种 {f.insutype} 不在 {r.insutypes}"
        return None

    # ---- evaluation ----------------------------------------------------------------------
    def facts(self, record: Any, history: Any = None) -> Facts:
        return build_facts(_as_dict(record), self.context, history)

    def evaluate(self, record: Any, history: Any = None, *, now: datetime | None = None) -> list[Finding]:
        """Findings of every applicable rule on one standardized record (cancelled records: none).
        ``history`` is the patient's PatientHistory (stateful rules are silent without it); the
        record itself is not added to it — call ``history.observe(record)`` (or ``process``)."""
        record = _as_dict(record)
        if record.get("status") == "cancelled":
            return []
        f = build_facts(record, self.context, history)
        env = Env(self.context, history)
        findings = []
        now = now or datetime.now(timezone.utc)
        for cr in self.candidates(f):
            if self.applicable(cr, f) is not None:
                continue
            self.calls[cr.id] += 1
            hits = cr.template.check(f, cr.params, env)
            if hits:
                findings.append(self.finding(cr, f, hits, now))
        return findings

    def process(self, record: Any, history: Any = None, *, now: datetime | None = None) -> list[Finding]:
        """Evaluate, then add the record to the patient's history."""
        findings = self.evaluate(record, history, now=now)
        if history is not None:
            history.observe(_as_dict(record))
        return findings

    def explain(self, rule_id: str, record: Any, history: Any = None) -> dict:
        """Evaluate one rule on one record and return every condition it checked."""
        cr = self.rules.get(rule_id)
        if cr is None:
            raise RuleError(f"未知规则 / unknown rule {rule_id}")
        record = _as_dict(record)
        f = build_facts(record, self.context, history)
        steps: list[tuple[str, Any]] = []
        out = {"rule": rule_id, "version": cr.rule.version, "template": cr.rule.template, "steps": steps, "finding": None}
        steps.append((f"记录类型 {f.record_type} ∈ {list(cr.record_types)}", f.record_type in cr.record_types))
        if cr.trigger == "line":
            steps.append((f"记录编码命中规则知识点 ({[ln.code for ln in f.lines]})", any(ln.code in cr.codes for ln in f.lines)))
        why_not = self.applicable(cr, f)
        steps.append(("有效期/就医方式/机构级别/机构类型/险种 适用" + (f"：{why_not}" if why_not else ""), why_not is None))
        if not all(ok for _, ok in steps):
            return out
        hits = cr.template.check(f, cr.params, Env(self.context, history, steps))
        if hits:
            out["finding"] = self.finding(cr, f, hits, datetime.now(timezone.utc))
        return out

    def finding(self, cr: CompiledRule, f: Facts, hits: list[Hit], now: datetime) -> Finding:
        r = cr.rule
        items: dict[tuple[str, str], FindingItem] = {}
        for h in hits:
            for rt, rid, kind, amt in h.items:
                prev = items.get((rt, rid))
                if prev is None or kind < prev.vola_item_type:
                    items[(rt, rid)] = FindingItem(record_type=rt, record_id=rid, vola_item_type=kind, vola_amt=Decimal(amt).quantize(CENT))
        vola = sum((i.vola_amt for i in items.values() if i.vola_item_type == 1), Decimal(0)).quantize(CENT)
        detail = "；".join(h.message for h in hits)
        lineage = f.raw["meta"].get("lineage")
        return Finding(
            finding_id=finding_id(r.id, r.version, f.institution, f.record_type, f.record_id, f.version),
            rule_id=r.id, rule_version=r.version, rule_name=r.name, category=r.category, severity=r.severity,
            result_type=r.result_type, warn_level=r.warn_level, institution_code=f.institution, county_code=f.county,
            city_code=f.city, record_type=f.record_type, record_id=f.record_id, record_version=f.version,
            patient_pseudonym=f.pseudonym, message=f"{r.message or r.name}：{detail}", basis=r.basis, vola_amt=vola,
            items=list(items.values()), event_time=f.event_time, detected_time=now,
            lineage=Lineage.model_validate(lineage) if lineage else None, pack_version=f"{cr.pack.id}@{cr.pack.version}",
        )
