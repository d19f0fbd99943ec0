"""医疗类 clinical appropriateness: indications, contraindications, diagnosis/operation vs patient,
drug–drug and TCM incompatibility pairs, perioperative prophylaxis."""

from __future__ import annotations

from typing import Literal

from yijian.rules.templates import (
    CodesParams, Env, Hit, IcdCode, ItemCode, OpCode, Params, Template, icd_index_keys, icd_match, line_item, register,
)
from yijian.rules.templates.limits import SEX


class IndicationParams(Params):
    codes: list[ItemCode] = []  # drugs / items / consumables (on: line)
    operations: list[OpCode] = []  # operations (on: operation)
    diagnoses: list[IcdCode]
    applies_to: Literal["line", "operation"] = "line"


@register
class Indication(Template):
    name = "indication"
    description = "限适应症/无指征：使用该药品/项目/耗材/手术时，本次就诊诊断中没有任何一个符合限定诊断"
    record_types = ("prescription", "charge", "encounter")
    trigger = "line"  # 'operation' rules are indexed by the engine via trigger_kind()
    Params = IndicationParams

    def codes(self, p):
        return {o[:2] for o in p.operations} if p.applies_to == "operation" else set(p.codes)

    def trigger_kind(self, p) -> str:
        return p.applies_to

    def record_types_for(self, p):
        return ("encounter",) if p.applies_to == "operation" else ("prescription", "charge")

    def lint(self, p):
        if p.applies_to == "line" and not p.codes:
            return ["applies_to=line 需要 codes / applies_to=line needs codes"]
        if p.applies_to == "operation" and not p.operations:
            return ["applies_to=operation 需要 operations / applies_to=operation needs operations"]
        return []

    def _subjects(self, f, p):
        if p.applies_to == "operation":
            return [(op, None) for op in f.operations or [] if icd_match(op, p.operations)]
        return [(ln.code, ln) for ln in f.lines if ln.code in p.codes]

    def check(self, f, p, env: Env):
        subjects = self._subjects(f, p)
        if not subjects:
            return []
        if not env.note(f"本次诊断已知 ({f.diagnoses})", f.diagnoses is not None and any(f.diagnoses)):
            return []
        if env.note(f"诊断 {f.diagnoses} 均不符合 {p.diagnoses}", not any(icd_match(d, p.diagnoses) for d in f.diagnoses)):
            out = []
            for code, ln in subjects:
                items = [line_item(ln)] if ln else [(f.record_type, f.record_id, 1, f.amount)]
                name = (ln.name if ln else "") or code
                out.append(Hit(f"{name}（{code}）限{'、'.join(p.diagnoses)}诊断使用，本次诊断为{'、'.join(f.diagnoses)}", items))
            return out
        return []


@register
class Contraindication(Template):
    name = "contraindication"
    description = "禁忌症（含妊娠期/哺乳期）：使用该药品/项目时本次诊断含禁忌诊断"
    trigger = "line"

    class Params(CodesParams):
        diagnoses: list[IcdCode]

    def check(self, f, p, env: Env):
        if not f.diagnoses:
            env.note("本次诊断已知", False)
            return []
        bad = [d for d in f.diagnoses if icd_match(d, p.diagnoses)]
        if env.note(f"诊断中含禁忌诊断 {p.diagnoses}: {bad}", bool(bad)):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）禁用于{'、'.join(bad)}", [line_item(ln)])
                    for ln in f.lines if ln.code in p.codes]
        return []


class DiagnosisSexParams(Params):
    diagnoses: list[IcdCode]
    sex: Literal["1", "2"]


@register
class DiagnosisSex(Template):
    name = "diagnosis_sex"
    description = "诊断与患者性别不符：诊断仅适用于 sex，患者性别不同"
    record_types = ("encounter",)
    trigger = "diagnosis"
    Params = DiagnosisSexParams

    def codes(self, p):
        return icd_index_keys(p.diagnoses)

    def check(self, f, p, env: Env):
        if not env.note(f"患者性别已知且 ≠ {p.sex}", f.sex in ("1", "2") and f.sex != p.sex):
            return []
        bad = [d for d in f.diagnoses or [] if icd_match(d, p.diagnoses)]
        if env.note(f"诊断中含限{SEX[p.sex]}性诊断: {bad}", bool(bad)):
            return [Hit(f"诊断{'、'.join(bad)}仅适用于{SEX[p.sex]}性，患者为{SEX[f.sex]}性", [(f.record_type, f.record_id, 1, f.amount)])]
        return []


@register
class DiagnosisAge(Template):
    name = "diagnosis_age"
    description = "诊断与患者年龄不符：诊断限定年龄 [min_age, max_age]"
    record_types = ("encounter",)
    trigger = "diagnosis"

    class Params(Params):
        diagnoses: list[IcdCode]
        min_age: int | None = None
        max_age: int | None = None

    def codes(self, p):
        return icd_index_keys(p.diagnoses)

    def check(self, f, p, env: Env):
        out_of_range = (p.min_age is not None and f.age < p.min_age) or (p.max_age is not None and f.age > p.max_age)
        if not env.note(f"年龄 {f.age} 超出 [{p.min_age}, {p.max_age}]", out_of_range):
            return []
        bad = [d for d in f.diagnoses or [] if icd_match(d, p.diagnoses)]
        if env.note(f"诊断中含限年龄诊断: {bad}", bool(bad)):
            rng = f"{p.min_age if p.min_age is not None else 0}–{p.max_age if p.max_age is not None else '∞'}岁"
            return [Hit(f"诊断{'、'.join(bad)}适用于{rng}，患者{f.age}岁", [(f.record_type, f.record_id, 1, f.amount)])]
        return []


@register
class OperationSex(Template):
    name = "operation_sex"
    description = "手术操作编码与性别不符"
    record_types = ("encounter",)
    trigger = "operation"

    class Params(Params):
        operations: list[OpCode]
        sex: Literal["1", "2"]

    def codes(self, p):
        return {o[:2] for o in p.operations}

    def check(self, f, p, env: Env):
        if not env.note(f"患者性别已知且 ≠ {p.sex}", f.sex in ("1", "2") and f.sex != p.sex):
            return []
        bad = [o for o in f.operations or [] if icd_match(o, p.operations)]
        if env.note(f"手术操作中含限{SEX[p.sex]}性操作: {bad}", bool(bad)):
            return [Hit(f"手术操作{'、'.join(bad)}仅适用于{SEX[p.sex]}性，患者为{SEX[f.sex]}性", [(f.record_type, f.record_id, 1, f.amount)])]
        return []


@register
class DrugPair(Template):
    name = "drug_pair"
    description = ("药品相互作用/中药配伍禁忌（十八反、十九畏）：同一处方（scope=prescription）或同时有效的处方"
                   "（scope=active，读取患者历史）中同时出现成对的药品")
    record_types = ("prescription",)
    trigger = "line"

    class Params(Params):
        pairs: list[tuple[ItemCode, ItemCode]]
        scope: Literal["prescription", "active"] = "prescription"

    def codes(self, p):
        return {c for pair in p.pairs for c in pair}

    def window_days(self, p):
        return 90 if p.scope == "active" else 0

    def check(self, f, p, env: Env):
        here = {ln.code: ln for ln in f.lines}
        active: set[str] = set()
        if p.scope == "active" and env.history is not None:
            t = f.event_time.timestamp()
            for e in env.history.rx_items(exclude=(f.institution, f.record_id)):
                if e["s"] <= t < e["s"] + max(e["d"], 1) * 86400:
                    active.add(e["c"])
        hits = []
        for a, b in p.pairs:
            for x, y in ((a, b), (b, a)):
                if x in here and (y in here or y in active):
                    env.note(f"{x} 与 {y} 同时使用", True)
                    where = "同一处方" if y in here else "有效期内的其他处方"
                    items = [line_item(here[x])] + ([line_item(here[y], 2)] if y in here else [])
                    hits.append(Hit(f"{here[x].name or x}（{x}）与{(here[y].name if y in here else '') or y}（{y}）在{where}中同时使用，存在相互作用/配伍禁忌", items))
                    break
        if not hits:
            env.note("未发现成对药品", False)
        return hits


@register
class PerioperativeProphylaxis(Template):
    name = "perioperative_prophylaxis"
    description = "围手术期预防性抗菌药物：清洁手术且无感染诊断时，预防用药天数 > max_days"
    record_types = ("prescription",)
    trigger = "line"

    class Params(CodesParams):
        operations: list[OpCode]
        infection_diagnoses: list[IcdCode] = []
        max_days: int = 1

    def check(self, f, p, env: Env):
        if not env.note(f"本次手术含清洁手术 {p.operations}", any(icd_match(o, p.operations) for o in f.operations or [])):
            return []
        if env.note("有感染诊断（治疗用药，豁免）", any(icd_match(d, p.infection_diagnoses) for d in f.diagnoses or [])):
            return []
        return [Hit(f"清洁手术预防用{ln.name or ln.code}（{ln.code}）{ln.days}天，超过{p.max_days}天", [line_item(ln)])
                for ln in f.lines if ln.code in p.codes and env.note(f"{ln.code} 天数 {ln.days} > {p.max_days}", ln.days > p.max_days)]
