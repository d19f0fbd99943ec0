"""处方管理办法, 抗菌药物分级管理, 资质 (qualification) and internet-hospital rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from yijian.rules.templates import Env, Hit, Params, Template, line_item, register

TIER_RANK = {"none": 0, "unrestricted": 1, "restricted": 2, "special": 3}
TIER_ZH = {"unrestricted": "非限制使用级", "restricted": "限制使用级", "special": "特殊使用级"}
TITLE_GRANT = {"junior": 1, "intermediate": 2, "senior": 3}  # 初级→非限制, 中级→限制, 高级→特殊
TITLE_ZH = {"junior": "初级", "intermediate": "中级", "senior": "高级"}
CTRL_ZH = {"narcotic": "麻醉药品", "psychotropic1": "第一类精神药品", "psychotropic2": "第二类精神药品"}
INJECTION_ROUTES = {"iv", "im", "ih", "ivgtt", "injection"}


def _rx_amount(f) -> Decimal:
    return f.amount


@register
class RxDays(Template):
    name = "rx_days"
    description = "处方用量天数：门诊 ≤ 7 日、急诊 ≤ 3 日；慢病长处方（注明理由）可延长至 chronic_max_days"
    record_types = ("prescription",)

    class Params(Params):
        limits: dict[Literal["outpatient", "emergency", "internet"], int] = {"outpatient": 7, "emergency": 3, "internet": 7}
        chronic_max_days: int = 84

    def check(self, f, p, env: Env):
        limit = p.limits.get(f.med_type)
        if not env.note(f"就医方式 {f.med_type} 有天数限制 ({limit})", limit is not None):
            return []
        exempt = f.chronic and bool(f.long_rx_reason)
        if env.note(f"慢病长处方且注明理由 (chronic={f.chronic}, reason={f.long_rx_reason!r})", exempt):
            limit, why = p.chronic_max_days, "慢病长处方上限"
        else:
            why = {"outpatient": "门诊处方一般不超过", "emergency": "急诊处方一般不超过", "internet": "互联网处方一般不超过"}[f.med_type]
        return [Hit(f"{ln.name or ln.code}用药{ln.days}天，{why}{limit}天", [line_item(ln)])
                for ln in f.lines if env.note(f"{ln.code or ln.name} 天数 {ln.days} > {limit}", ln.days > limit)]


@register
class RxDrugCount(Template):
    name = "rx_drug_count"
    description = "每张处方药品数：西药、中成药处方每张不超过 max_drugs 种"
    record_types = ("prescription",)

    class Params(Params):
        max_drugs: int = 5
        rx_kinds: list[Literal["western", "tcm_patent", "tcm_decoction"]] = ["western", "tcm_patent"]

    def check(self, f, p, env: Env):
        if not env.note(f"处方类别 {f.rx_kind} ∈ {p.rx_kinds}", f.rx_kind in p.rx_kinds):
            return []
        n = len(f.lines)
        if env.note(f"药品种数 {n} > {p.max_drugs}", n > p.max_drugs):
            return [Hit(f"每张处方不得超过{p.max_drugs}种药品，本处方{n}种", [(f.record_type, f.record_id, 1, f.amount)])]
        return []


@register
class ControlledLimit(Template):
    name = "controlled_limit"
    description = ("麻醉药品、精神药品处方用量：门急诊按剂型限定日数（注射剂一次常用量≈1日、控缓释、其他剂型），"
                   "住院逐日开具（inpatient_days）")
    record_types = ("prescription",)

    class Params(Params):
        outpatient: dict[Literal["narcotic", "psychotropic1", "psychotropic2"], dict[Literal["injection", "sustained", "other"], int]] = {
            "narcotic": {"injection": 1, "sustained": 7, "other": 3},
            "psychotropic1": {"injection": 1, "sustained": 7, "other": 3},
            "psychotropic2": {"injection": 7, "sustained": 7, "other": 7},
        }
        inpatient_days: int = 1
        inpatient_classes: list[str] = ["narcotic", "psychotropic1"]

    def check(self, f, p, env: Env):
        hits = []
        for ln in f.lines:
            cls = ln.controlled_class
            if cls == "none":
                continue
            form = "injection" if (ln.form == "injection" or ln.route in INJECTION_ROUTES) else ("sustained" if ln.form == "sustained" else "other")
            if f.med_type == "inpatient":
                if cls not in p.inpatient_classes:
                    continue
                limit, where = p.inpatient_days, "住院患者应逐日开具，每张处方"
            else:
                limit = p.outpatient.get(cls, {}).get(form)
                if limit is None:
                    continue
                where = f"门急诊{ {'injection': '注射剂', 'sustained': '控缓释制剂', 'other': '其他剂型'}[form]}不超过"
            if env.note(f"{ln.code} {CTRL_ZH[cls]} {form} 天数 {ln.days} > {limit}", ln.days > limit):
                hits.append(Hit(f"{CTRL_ZH[cls]}{ln.name or ln.code}开具{ln.days}日用量，{where}{limit}日常用量", [line_item(ln)]))
        return hits


@register
class AntibioticTierTitle(Template):
    name = "antibiotic_tier_title"
    description = "抗菌药物越级使用：药品级别高于开方医师职称授予的处方权（高级→特殊使用级，中级→限制使用级，初级→非限制使用级）"
    record_types = ("prescription",)

    def check(self, f, p, env: Env):
        doc = env.context.prescribers.get(f.practitioner)
        if not env.note(f"开方医师 {f.practitioner} 在注册库中", doc is not None):
            return []
        grant = TITLE_GRANT[doc.title]
        hits = []
        for ln in f.lines:
            rank = TIER_RANK.get(ln.antibiotic_tier, 0)
            if rank and env.note(f"{ln.code} {ln.antibiotic_tier}({rank}) > 职称授权 {doc.title}({grant})", rank > grant):
                hits.append(Hit(f"{TITLE_ZH[doc.title]}职称医师{f.practitioner}无{TIER_ZH[ln.antibiotic_tier]}抗菌药物{ln.name or ln.code}处方权", [line_item(ln)]))
        return hits


@register
class SpecialAntibioticOutpatient(Template):
    name = "special_antibiotic_outpatient"
    description = "特殊使用级抗菌药物不得在门诊（含急诊、互联网）使用"
    record_types = ("prescription",)

    def check(self, f, p, env: Env):
        if not env.note(f"非住院就诊 ({f.med_type})", f.med_type != "inpatient"):
            return []
        return [Hit(f"特殊使用级抗菌药物{ln.name or ln.code}（{ln.code}）不得在门诊使用", [line_item(ln)])
                for ln in f.lines if env.note(f"{ln.code} 级别 {ln.antibiotic_tier}", ln.antibiotic_tier == "special")]


@register
class PrescriberRegistration(Template):
    name = "prescriber_registration"
    description = "医师资质：开方/开单/主诊医师不在执业注册库、未在本机构注册或已暂停"
    record_types = ("prescription", "charge", "encounter")

    def check(self, f, p, env: Env):
        code = f.practitioner
        if not env.note(f"有医师代码 ({code!r})", bool(code)):
            return []
        if not env.note("执业注册库已加载", bool(env.context.prescribers)):
            return []  # no registry loaded: the input is unknown, so the rule stays silent
        doc = env.context.prescribers.get(code)
        if env.note(f"{code} 不在执业注册库", doc is None):
            why = "不在医师执业注册库中"
        elif env.note(f"{code} 状态 {doc.status}", doc.status != "active"):
            why = "执业状态为暂停"
        elif env.note(f"{code} 未在 {f.institution} 注册（注册机构 {doc.institutions}）", f.institution not in doc.institutions):
            why = f"未在本机构{f.institution}执业注册"
        else:
            return []
        return [Hit(f"医师{code}{why}", [(f.record_type, f.record_id, 1, f.amount)])]


@register
class PrescriberScope(Template):
    name = "prescriber_scope"
    description = "医师超执业范围：处方类别/科室要求的执业范围（如中药饮片需中医或中西医结合）不在医师执业范围内"
    record_types = ("prescription",)

    class Params(Params):
        required_scopes: dict[Literal["western", "tcm_patent", "tcm_decoction"], list[str]]

    def check(self, f, p, env: Env):
        need = p.required_scopes.get(f.rx_kind)
        doc = env.context.prescribers.get(f.practitioner)
        if not env.note(f"处方类别 {f.rx_kind} 有执业范围要求 {need}", bool(need)) or not env.note("医师在注册库", doc is not None):
            return []
        if env.note(f"执业范围 {doc.scopes} 与 {need} 无交集", not set(doc.scopes) & set(need)):
            return [Hit(f"医师{f.practitioner}执业范围为{'、'.join(doc.scopes) or '未登记'}，不得开具该类处方（需{'或'.join(need)}）",
                        [(f.record_type, f.record_id, 1, f.amount)])]
        return []


@register
class InternetFirstVisit(Template):
    name = "internet_first_visit"
    description = "互联网医院首诊开方：互联网诊疗只能为常见病、慢性病复诊患者开具处方"
    record_types = ("prescription", "encounter")

    def check(self, f, p, env: Env):
        online = f.med_type == "internet" or f.online
        if not env.note(f"互联网就诊/处方 (med_type={f.med_type}, online={f.online})", online):
            return []
        if env.note(f"初诊 (fst_visit_flag={f.first_visit})", f.first_visit is True):
            if f.record_type == "encounter":
                return [Hit("互联网医院不得为初诊患者提供诊疗服务（仅限常见病、慢性病复诊）", [(f.record_type, f.record_id, 1, f.amount)])]
            return [Hit("互联网医院为初诊患者开具处方（仅限常见病、慢性病复诊患者）", [(f.record_type, f.record_id, 1, f.amount)])]
        return []


@register
class InternetPharmacistReview(Template):
    name = "internet_pharmacist_review"
    description = "互联网处方未经药师审核：缺少审核药师代码，或审核人不是注册药师"
    record_types = ("prescription",)

    def check(self, f, p, env: Env):
        if not env.note(f"互联网处方 (online={f.online}, med_type={f.med_type})", f.online or f.med_type == "internet"):
            return []
        if env.note(f"审核药师代码缺失 ({f.pharmacist!r})", not f.pharmacist):
            return [Hit("互联网处方缺少药师审核记录", [(f.record_type, f.record_id, 1, f.amount)])]
        ph = env.context.prescribers.get(f.pharmacist)
        if env.note(f"{f.pharmacist} 不是注册药师", ph is None or ph.role != "pharmacist" or ph.status != "active"):
            return [Hit(f"审核人{f.pharmacist}不是注册药师", [(f.record_type, f.record_id, 1, f.amount)])]
        return []
