"""Templates that look across a patient's history (PatientHistory, keyed by pseudonym):
step therapy, payment course, duplicate billing, frequencies, quantity vs LOS, duplicate
prescriptions, readmission, overlapping stays, secondary-operation discount."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import field_validator

from yijian.rules.facts import HOSPITAL_TZ
from yijian.rules.templates import CodesParams, Env, Hit, ItemCode, Params, Template, line_item, register

DAY = 86400.0


def local_date(ts: float) -> date:
    return datetime.fromtimestamp(ts, HOSPITAL_TZ).date()


def _no_history(env: Env) -> bool:
    return not env.note("有患者历史 / history available", env.history is not None)


def generic_of(code: str) -> str:
    """通用名 part of a 医保药品 code: X + ATC-4 + 通用名码 (10 chars); Z + 分类 + 通用名码 (11 chars)."""
    return code[:11] if code.startswith("Z") else code[:10]


@register
class StepTherapy(Template):
    name = "step_therapy"
    description = "药品限二线使用：lookback_days 内（含本次）未使用任何一线药品即使用二线药品"
    trigger = "line"
    stateful = True

    class Params(CodesParams):
        first_line: list[ItemCode]
        lookback_days: int = 180

    def window_days(self, p):
        return p.lookback_days

    def check(self, f, p, env: Env):
        lines = [ln for ln in f.lines if ln.code in p.codes]
        first = set(p.first_line)
        if env.note(f"本次同时使用一线药品 {sorted(first)}", any(ln.code in first for ln in f.lines)):
            return []
        used = False
        if env.history is not None:
            since = f.event_time.timestamp() - p.lookback_days * DAY
            used = any(e["c"] in first and e["s"] >= since for e in env.history.rx_items()) or any(
                e["c"] in first and e["s"] >= since for e in env.history.charges())
        if env.note(f"{p.lookback_days}天内未使用一线药品", not used):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）限二线使用，{p.lookback_days}天内无一线药品使用记录", [line_item(ln)])
                    for ln in lines]
        return []


@register
class PaymentCourse(Template):
    name = "payment_course"
    description = "限支付疗程：自首次使用起（episode_days 内）累计支付天数超过 max_days"
    trigger = "line"
    stateful = True

    class Params(CodesParams):
        max_days: int
        episode_days: int = 365

    def window_days(self, p):
        return p.episode_days

    def check(self, f, p, env: Env):
        if _no_history(env):
            return []
        now = f.event_time.timestamp()
        codes = set(p.codes)
        starts = [e["s"] for e in env.history.rx_items(exclude=(f.institution, f.record_id)) if e["c"] in codes and now - p.episode_days * DAY <= e["s"] <= now]
        starts += [e["s"] for e in env.history.charges(exclude=(f.institution, f.record_id)) if e["c"] in codes and now - p.episode_days * DAY <= e["s"] <= now]
        first = local_date(min(starts)) if starts else f.event_date
        hits = []
        for ln in f.lines:
            if ln.code not in codes:
                continue
            span = (f.event_date - first).days + max(ln.days, 1)
            if env.note(f"{ln.code} 自{first}起累计 {span} 天 > {p.max_days}", span > p.max_days):
                hits.append(Hit(f"{ln.name or ln.code}（{ln.code}）限支付{p.max_days}天，自{first}首次使用起至本次已{span}天", [line_item(ln)]))
        return hits


def _window_ok(window: str, f, e) -> bool:
    if window == "day":
        return local_date(e["s"]) == f.event_date
    if window == "encounter":
        return e["m"] == f.mdtrt_id
    hours = float(window.split(":")[1])
    return abs(f.event_time.timestamp() - e["s"]) <= hours * 3600


@register
class DuplicateBilling(Template):
    name = "duplicate_billing"
    description = "重复收费：项目A与项目B（A含B）在时间窗口内（day 单日 / encounter 单次就诊 / hours:N N小时）同时收费"
    record_types = ("charge",)
    trigger = "line"
    stateful = True

    class Params(Params):
        pairs: list[tuple[ItemCode, ItemCode]]
        window: str = "day"

        @field_validator("window")
        @classmethod
        def _window(cls, v):
            if v not in ("day", "encounter") and not (v.startswith("hours:") and v[6:].replace(".", "", 1).isdigit()):
                raise ValueError("window 只能是 day / encounter / hours:N")
            return v

    def codes(self, p):
        return {c for pair in p.pairs for c in pair}

    def window_days(self, p):
        return 2 if p.window != "encounter" else 60

    def check(self, f, p, env: Env):
        if _no_history(env):
            return []
        ln = f.lines[0]
        partners = {b for a, b in p.pairs if a == ln.code} | {a for a, b in p.pairs if b == ln.code}
        for e in env.history.charges(exclude=(f.institution, f.record_id)):
            if e["i"] == f.institution and e["c"] in partners and _window_ok(p.window, f, e):
                env.note(f"{ln.code} 与 {e['c']} 在窗口 {p.window} 内同时收费", True)
                return [Hit(f"{ln.name or ln.code}（{ln.code}）与{e['c']}在{ {'day': '同一日', 'encounter': '同一次就诊'}.get(p.window, p.window.replace('hours:', '') + '小时内')}重复收费",
                            [line_item(ln), ("charge", e["id"], 2, Decimal(str(e["q"] * e["p"])).quantize(Decimal("0.01")))])]
        env.note("窗口内无重复收费项目", False)
        return []


@register
class FrequencyPerDay(Template):
    name = "frequency_per_day"
    description = "限定频次：同一机构同一天该项目数量合计超过 max_per_day（如床位费1/日、心电监测24小时/日）"
    record_types = ("charge",)
    trigger = "line"
    stateful = True

    class Params(CodesParams):
        max_per_day: Decimal

    def window_days(self, p):
        return 2

    def check(self, f, p, env: Env):
        ln = f.lines[0]
        total = ln.qty
        if env.history is not None:
            total += sum((Decimal(str(e["q"])) for e in env.history.charges(exclude=(f.institution, f.record_id))
                          if e["i"] == f.institution and e["c"] == ln.code and local_date(e["s"]) == f.event_date), Decimal(0))
        if env.note(f"{f.event_date} {ln.code} 数量合计 {total} > {p.max_per_day}", total > p.max_per_day):
            excess = min(total - p.max_per_day, ln.qty)
            return [Hit(f"{ln.name or ln.code}（{ln.code}）{f.event_date}合计{total}，超过每日{p.max_per_day}",
                        [(ln.record_type, ln.record_id, 1, (excess * ln.price).quantize(Decimal("0.01")))])]
        return []


@register
class FrequencyPerPeriod(Template):
    name = "frequency_per_period"
    description = "周期超频次：period_days 天内该项目数量合计超过 max_count（如糖化血红蛋白1次/15天）"
    record_types = ("charge",)
    trigger = "line"
    stateful = True

    class Params(CodesParams):
        max_count: Decimal
        period_days: int

    def window_days(self, p):
        return p.period_days

    def check(self, f, p, env: Env):
        if _no_history(env):
            return []
        ln = f.lines[0]
        now = f.event_time.timestamp()
        prior = [e for e in env.history.charges(exclude=(f.institution, f.record_id))
                 if e["c"] == ln.code and now - p.period_days * DAY < e["s"] <= now]
        total = ln.qty + sum((Decimal(str(e["q"])) for e in prior), Decimal(0))
        if env.note(f"{p.period_days}天内 {ln.code} 合计 {total} > {p.max_count}", total > p.max_count):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）{p.period_days}天内已收费{total}次，超过{p.max_count}次",
                        [line_item(ln)] + [("charge", e["id"], 2, Decimal(str(e["q"] * e["p"])).quantize(Decimal("0.01"))) for e in prior])]
        return []


@register
class QtyVsLos(Template):
    name = "qty_vs_los"
    description = "数量与住院天数不符：床位费/护理费/诊查费等按日项目数量合计超过住院天数 + tolerance"
    record_types = ("charge",)
    trigger = "line"
    stateful = True

    class Params(CodesParams):
        tolerance: int = 0

    def window_days(self, p):
        return 180

    def check(self, f, p, env: Env):
        if _no_history(env):
            return []
        if not env.note("住院入院时间已知", f.begntime is not None):
            return []
        ln = f.lines[0]
        if f.endtime is not None:
            allowed = f.los()
            how = f"住院天数{allowed}天"
        else:
            allowed = max(1, (f.event_date - f.begntime.astimezone(HOSPITAL_TZ).date()).days + 1)
            how = f"入院至今{allowed}天"
        total = ln.qty + sum((Decimal(str(e["q"])) for e in env.history.charges(exclude=(f.institution, f.record_id))
                              if e["i"] == f.institution and e["m"] == f.mdtrt_id and e["c"] == ln.code), Decimal(0))
        if env.note(f"{ln.code} 数量合计 {total} > {how} + {p.tolerance}", total > allowed + p.tolerance):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）累计{total}，超过{how}", [line_item(ln)])]
        return []


@register
class DuplicateRx(Template):
    name = "duplicate_rx"
    description = ("重复开药：同一通用名药品在前一处方用药期内再次开具（across_institutions: 仅统计跨机构；"
                   "codes 为空时适用于全部药品）")
    record_types = ("prescription",)
    trigger = "line"
    stateful = True

    class Params(Params):
        codes: list[ItemCode] = []
        across_institutions: bool = False
        tolerance_days: int = 0

    def trigger_kind(self, p):
        return "line" if p.codes else None

    def window_days(self, p):
        return 180

    def check(self, f, p, env: Env):
        if _no_history(env):
            return []
        now = f.event_time.timestamp()
        wanted = {generic_of(c) for c in p.codes}
        hits = []
        for ln in f.lines:
            g = generic_of(ln.code)
            if not ln.code or (wanted and g not in wanted):
                continue
            for e in env.history.rx_items(exclude=(f.institution, f.record_id)):
                if generic_of(e["c"]) != g or (p.across_institutions and e["i"] == f.institution):
                    continue
                end = e["s"] + e["d"] * DAY
                if e["s"] <= now and end > now + p.tolerance_days * DAY:
                    left = int((end - now) // DAY) or 1
                    env.note(f"{ln.code} 与 {e['i']}/{e['id']} 的 {e['c']} 用药期重叠 {left} 天", True)
                    where = f"在{e['i']}" if e["i"] != f.institution else "在本机构"
                    hits.append(Hit(f"{ln.name or ln.code}（{ln.code}）与{local_date(e['s'])}{where}开具的同一通用名药品重复，前一处方尚余{left}天用量",
                                    [line_item(ln), ("prescription", e["id"], 2, Decimal(0))]))
                    break
        if not hits:
            env.note("无用药期重叠的同通用名处方", False)
        return hits


def _enc_span(e) -> tuple[float, float | None]:
    return e["b"], e["e"]


@register
class Readmission(Template):
    name = "readmission"
    description = "分解住院：出院后 days 天内再次入院（同机构或全部机构；诊断类目相同时），计划再住院除外"
    record_types = ("encounter",)
    stateful = True

    class Params(Params):
        days: int = 15
        same_institution: bool = True
        same_category: bool = True

    def window_days(self, p):
        return p.days + 90

    def check(self, f, p, env: Env):
        if not env.note("住院就诊", f.med_type == "inpatient") or _no_history(env):
            return []
        if not env.note(f"非计划再住院 (rinp_plan_flag={f.planned_readmission})", not f.planned_readmission):
            return []
        b = f.begntime.timestamp() if f.begntime else f.event_time.timestamp()
        cats = {d[:3] for d in f.diagnoses or [] if d}
        for e in env.history.encounters(exclude=(f.institution, f.record_id)):
            if e["t"] != "inpatient" or not e["e"] or e["e"] > b:
                continue
            if p.same_institution and e["i"] != f.institution:
                continue
            gap = (local_date(b) - local_date(e["e"])).days
            if gap > p.days:
                continue
            if p.same_category and not cats & {d[:3] for d in e["d"] if d}:
                env.note(f"{e['id']} 出院{gap}天后再入院，但诊断类目不同", False)
                continue
            env.note(f"距上次出院（{e['i']}/{e['id']}）{gap} 天 ≤ {p.days}", True)
            return [Hit(f"出院{gap}天后再次入院（上次住院{e['id']}，{local_date(e['e'])}出院），疑似分解住院",
                        [(f.record_type, f.record_id, 1, f.amount), ("encounter", e["id"], 2, Decimal(0))])]
        env.note(f"{p.days}天内无出院记录", False)
        return []


@register
class OverlappingStays(Template):
    name = "overlapping_stays"
    description = "同时住院：与其他机构的住院时间重叠（未出院者视为仍在院）"
    record_types = ("encounter",)
    stateful = True

    def window_days(self, p):
        return 180

    def check(self, f, p, env: Env):
        if not env.note("住院就诊", f.med_type == "inpatient") or _no_history(env):
            return []
        b = f.begntime.timestamp() if f.begntime else f.event_time.timestamp()
        end = f.endtime.timestamp() if f.endtime else max(b, f.event_time.timestamp())
        for e in env.history.encounters(exclude=(f.institution, f.record_id)):
            if e["t"] != "inpatient" or e["i"] == f.institution:
                continue
            ob, oe = e["b"], e["e"]
            if ob < end and (oe is None or oe > b):
                env.note(f"与 {e['i']}/{e['id']} 住院时间重叠", True)
                return [Hit(f"住院期间与{e['i']}的住院（{e['id']}，{local_date(ob)}入院）时间重叠",
                            [(f.record_type, f.record_id, 1, f.amount), ("encounter", e["id"], 2, Decimal(0))])]
        env.note("无时间重叠的他院住院", False)
        return []


@register
class SecondaryOperationDiscount(Template):
    name = "secondary_operation_discount"
    description = "手术项目未按规定折价：同一次就诊同一天同一手术组的第二项及以上手术，单价应 ≤ 全价 × ratio"
    record_types = ("charge",)
    trigger = "line"
    stateful = True

    class Params(Params):
        groups: list[list[ItemCode]]
        full_prices: dict[ItemCode, Decimal]
        ratio: Decimal = Decimal("0.5")

    def codes(self, p):
        return {c for g in p.groups for c in g}

    def lint(self, p):
        missing = self.codes(p) - set(p.full_prices)
        return [f"full_prices 缺少 / missing full price for {sorted(missing)}"] if missing else []

    def window_days(self, p):
        return 2

    def check(self, f, p, env: Env):
        if _no_history(env):
            return []
        ln = f.lines[0]
        group = next((set(g) for g in p.groups if ln.code in g), set())
        first = [e for e in env.history.charges(exclude=(f.institution, f.record_id))
                 if e["i"] == f.institution and e["m"] == f.mdtrt_id and e["c"] in group and local_date(e["s"]) == f.event_date
                 and e["s"] <= f.event_time.timestamp()]
        if not env.note("同一手术组当日已有主手术", bool(first)):
            return []
        cap = (p.full_prices[ln.code] * p.ratio).quantize(Decimal("0.01"))
        if env.note(f"次要手术单价 {ln.price} > {cap}", ln.price > cap):
            return [Hit(f"{ln.name or ln.code}（{ln.code}）为同组第二项手术，应按{p.ratio}折价（≤{cap}元），实收{ln.price}元",
                        [(ln.record_type, ln.record_id, 1, ((ln.price - cap) * ln.qty).quantize(Decimal("0.01"))),
                         ("charge", first[0]["id"], 2, Decimal(0))])]
        return []
