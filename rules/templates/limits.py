"""政策类 payment-scope limits on a drug, service item or consumable (code-triggered, stateless)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import model_validator

from yijian.rules.templates import CodesParams, Env, Hit, ItemCode, Params, Template, line_item, register

SEX = {"1": "男", "2": "女"}
SCENE = {"outpatient": "门诊", "emergency": "急诊", "inpatient": "住院", "internet": "互联网"}
INSUTYPE = {"310": "职工基本医疗保险", "390": "城乡居民基本医疗保险", "510": "生育保险", "610": "工伤保险", "999": "自费"}


class _Lines(Template):
    trigger = "line"

    def matching(self, f, p):
        codes = p.codes
        return [ln for ln in f.lines if ln.code in codes]


@register
class LimitSex(_Lines):
    name = "limit_sex"
    description = "药品/项目/耗材限定性别使用：患者性别与限定性别不符"

    class Params(CodesParams):
        sex: Literal["1", "2"]

    def check(self, f, p, env: Env):
        if not env.note(f"患者性别已知 (sex={f.sex})", f.sex in ("1", "2")):
            return []
        if env.note(f"患者性别 {SEX.get(f.sex)} ≠ 限定性别 {SEX[p.sex]}", f.sex != p.sex):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）限{SEX[p.sex]}性使用，患者为{SEX[f.sex]}性", [line_item(ln)])
                    for ln in self.matching(f, p)]
        return []


@register
class LimitAge(_Lines):
    name = "limit_age"
    description = "药品/项目/耗材限定年龄：年龄超出 [min_age, max_age]（年）或 max_age_days（天，新生儿）"

    class Params(CodesParams):
        min_age: int | None = None
        max_age: int | None = None
        max_age_days: int | None = None

        @model_validator(mode="after")
        def _some_bound(self):
            if self.min_age is None and self.max_age is None and self.max_age_days is None:
                raise ValueError("至少需要 min_age、max_age 或 max_age_days 之一 / need min_age, max_age or max_age_days")
            return self

    def check(self, f, p, env: Env):
        bad = []
        if p.min_age is not None and env.note(f"年龄 {f.age} < {p.min_age}", f.age < p.min_age):
            bad.append(f"限{p.min_age}岁及以上使用，患者{f.age}岁")
        if p.max_age is not None and env.note(f"年龄 {f.age} > {p.max_age}", f.age > p.max_age):
            bad.append(f"限{p.max_age}岁及以下使用，患者{f.age}岁")
        if p.max_age_days is not None and f.age_days is not None and env.note(
                f"日龄 {f.age_days} > {p.max_age_days}", f.age_days > p.max_age_days):
            bad.append(f"限出生{p.max_age_days}天内使用，患者出生{f.age_days}天")
        if not bad:
            return []
        return [Hit(f"{ln.name or ln.code}（{ln.code}）{'；'.join(bad)}", [line_item(ln)]) for ln in self.matching(f, p)]


@register
class LimitInsutype(_Lines):
    name = "limit_insutype"
    description = "药品限定险种（如限工伤保险、限生育保险）：本次险种不在允许范围"

    class Params(CodesParams):
        insutypes: list[Literal["310", "390", "510", "610", "999"]]

    def check(self, f, p, env: Env):
        if not env.note(f"险种已知 (insutype={f.insutype})", f.insutype is not None):
            return []
        if env.note(f"险种 {f.insutype} ∉ {p.insutypes}", f.insutype not in p.insutypes):
            allowed = "、".join(INSUTYPE[i] for i in p.insutypes)
            return [Hit(f"{ln.name or ln.code}（{ln.code}）限{allowed}支付，本次为{INSUTYPE.get(f.insutype, f.insutype)}", [line_item(ln)])
                    for ln in self.matching(f, p)]
        return []


@register
class LimitScene(_Lines):
    name = "limit_scene"
    description = "药品/项目限定就医方式（门诊/急诊/住院/互联网）：本次就医方式不在允许范围"

    class Params(CodesParams):
        allowed: list[Literal["outpatient", "emergency", "inpatient", "internet"]]

    def check(self, f, p, env: Env):
        if env.note(f"就医方式 {f.med_type} ∉ {p.allowed}", f.med_type not in p.allowed):
            allowed = "、".join(SCENE[s] for s in p.allowed)
            return [Hit(f"{ln.name or ln.code}（{ln.code}）限{allowed}使用，本次为{SCENE.get(f.med_type, f.med_type)}", [line_item(ln)])
                    for ln in self.matching(f, p)]
        return []


@register
class LimitLevel(_Lines):
    name = "limit_level"
    description = "药品/项目限定医疗机构级别：机构级别低于 min_level"

    class Params(CodesParams):
        min_level: Literal[2, 3]

    def check(self, f, p, env: Env):
        if not env.note(f"机构级别已知 (level={f.level})", f.level > 0):
            return []
        if env.note(f"机构级别 {f.level} < {p.min_level}", f.level < p.min_level):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）限{p.min_level}级及以上医疗机构使用，本机构为{f.level}级", [line_item(ln)])
                    for ln in self.matching(f, p)]
        return []


@register
class LimitDept(_Lines):
    name = "limit_dept"
    description = "药品/项目限定科室（超专科范围）：开单科室不在允许范围"

    class Params(CodesParams):
        depts: list[str]

    def check(self, f, p, env: Env):
        if env.note(f"科室 {f.dept} ∉ {p.depts}", f.dept not in p.depts):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）限{'、'.join(p.depts)}科室使用，开单科室为{f.dept}", [line_item(ln)])
                    for ln in self.matching(f, p)]
        return []


@register
class NotPayable(_Lines):
    name = "not_payable"
    description = "中药饮片不予支付：single = 单方使用（处方仅此一味）不予支付；always = 单复方均不予支付"
    record_types = ("prescription",)

    class Params(CodesParams):
        when: Literal["single", "always"]

    def check(self, f, p, env: Env):
        if p.when == "single" and not env.note(f"单方使用（处方药味数 {len(f.lines)} = 1）", len(f.lines) == 1):
            return []
        how = "单味使用" if p.when == "single" else "单方或复方使用"
        return [Hit(f"{ln.name or ln.code}（{ln.code}）{how}不予医保支付", [line_item(ln)]) for ln in self.matching(f, p)]


@register
class DoseLimit(_Lines):
    name = "dose_limit"
    description = "超说明书用量/饮片超量：单次剂量 > max_sin_dos 或 数量 > max_qty"
    record_types = ("prescription",)

    class Params(CodesParams):
        max_sin_dos: Decimal | None = None
        max_qty: Decimal | None = None

    def check(self, f, p, env: Env):
        hits = []
        for ln in self.matching(f, p):
            bad = []
            if p.max_sin_dos is not None and env.note(f"{ln.code} 单次剂量 {ln.sin_dos} > {p.max_sin_dos}", ln.sin_dos > p.max_sin_dos):
                bad.append(f"单次剂量{ln.sin_dos}超过上限{p.max_sin_dos}")
            if p.max_qty is not None and env.note(f"{ln.code} 数量 {ln.qty} > {p.max_qty}", ln.qty > p.max_qty):
                bad.append(f"数量{ln.qty}超过上限{p.max_qty}")
            if bad:
                hits.append(Hit(f"{ln.name or ln.code}（{ln.code}）{'，'.join(bad)}", [line_item(ln)]))
        return hits


@register
class PriceCeiling(Template):
    name = "price_ceiling"
    description = "超标准收费：单价超过医保限价；违规金额 = (单价 − 限价) × 数量"
    trigger = "line"

    class Params(Params):
        ceilings: dict[ItemCode, Decimal]

    def codes(self, p):
        return set(p.ceilings)

    def check(self, f, p, env: Env):
        hits = []
        for ln in f.lines:
            cap = p.ceilings.get(ln.code)
            if cap is not None and env.note(f"{ln.code} 单价 {ln.price} > 限价 {cap}", ln.price > cap):
                over = ((ln.price - cap) * ln.qty).quantize(Decimal("0.01"))
                hits.append(Hit(f"{ln.name or ln.code}（{ln.code}）单价{ln.price}元超过限价{cap}元", [(ln.record_type, ln.record_id, 1, over)]))
        return hits
