"""The province's interface standard as pydantic models (统一接口标准).

These models are the single source of the Avro schemas in this folder: ``yijian schemas generate``
writes ``schemas/*.avsc`` from them and a test fails if the committed files differ. Field names reuse
the national NHSA interface names where they fit (mdtrt_id, psn_no, med_list_codg, fee_ocur_time ...)
so that HIS vendors can reuse their existing mappings.

Every field carries ``zh`` (Chinese name) and ``need``: ``required`` (必填), ``conditional`` (条件必填,
with the condition in ``when``) or ``optional`` (选填). Validation here is structural (types, formats,
value domains); business checks (check digits, code mapping, consistency) are quality checks done by
the platform and by ``yijian check``, so that a record with a wrong ID number still arrives and is
reported back instead of being lost.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_NAMESPACE = "cn.yijian.v1"


def F(zh: str, en: str, need: str = "required", when: str | None = None, **kw):
    """A documented field: Chinese and English description, requirement level."""
    extra = {"zh": zh, "need": need}
    if when:
        extra["when"] = when
    if "scale" in kw:
        extra["scale"] = kw.pop("scale")
        extra["precision"] = kw.pop("precision", 16)
    return Field(description=f"{zh} / {en}", json_schema_extra=extra, **kw)


HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")


def _timestamp(value: datetime) -> datetime:
    """Times are instants with millisecond precision (Avro timestamp-millis); a naive time from a
    HIS is Beijing time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=HOSPITAL_TZ)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


Timestamp = Annotated[datetime, AfterValidator(_timestamp)]
Money = Annotated[Decimal, Field(max_digits=16, decimal_places=2)]
Price = Annotated[Decimal, Field(max_digits=16, decimal_places=4)]
Qty = Annotated[Decimal, Field(max_digits=16, decimal_places=4)]

RecordStatus = Literal["normal", "corrected", "cancelled"]
MedType = Literal["outpatient", "emergency", "inpatient", "internet"]
Sex = Literal["0", "1", "2", "9"]
InsuType = Literal["310", "390", "510", "610", "999"]
ItemType = Literal["drug", "service", "consumable"]
AntibioticTier = Literal["none", "unrestricted", "restricted", "special"]
ControlledClass = Literal["none", "narcotic", "psychotropic1", "psychotropic2"]
RxKind = Literal["western", "tcm_patent", "tcm_decoction"]

INSTITUTION_PATTERN = r"^[HP]\d{11}$"


class Record(BaseModel):
    """Base of every schema record: strict, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=False)


class PatientIdentity(Record):
    """患者身份 / Patient identity. Replaced by a keyed SM3 pseudonym at the platform's first stage;
    names and ID numbers never reach analytics."""

    psn_cert_type: str = F("人员证件类型", "ID document type: 01 居民身份证 (resident ID), 02 军官证, 03 护照, 04 港澳台通行证, 06 外国人永久居留证, 99 其他", min_length=2, max_length=2)
    certno: str = F("证件号码", "ID document number; for type 01 the 18-digit GB 11643 resident ID number", min_length=1, max_length=32)
    psn_name: str = F("姓名", "Patient name (never stored by the platform)", min_length=1, max_length=64)
    gend: Sex = F("性别", "Sex, GB/T 2261.1: 0 未知, 1 男, 2 女, 9 未说明")
    brdy: date = F("出生日期", "Birth date")
    psn_no: str | None = F("人员编号", "NHSA person number (医保人员编号) if insured", "optional", default=None, max_length=30)


class Diagnosis(Record):
    diag_code: str = F("诊断代码(院内)", "Local diagnosis code as used by the hospital; mapped to ICD-10 医保版/国临版 by the platform", min_length=1, max_length=30)
    diag_name: str = F("诊断名称", "Diagnosis name", max_length=200)
    maindiag_flag: bool = F("主诊断标志", "True for the primary diagnosis (exactly one per encounter)")


class Operation(Record):
    oprn_code: str = F("手术操作代码(院内)", "Local operation code; mapped to ICD-9-CM-3", min_length=1, max_length=30)
    oprn_name: str = F("手术操作名称", "Operation name", max_length=200)
    oprn_time: Timestamp | None = F("手术操作时间", "Operation time", "optional", default=None)


class Encounter(Record):
    """就诊记录 / Encounter: one outpatient, emergency, inpatient or internet follow-up visit."""

    record_id: str = F("就诊ID", "Encounter id (mdtrt_id): unique within the institution; prescriptions and charges refer to it", min_length=1, max_length=64)
    version: int = F("版本号", "Record version; 1 for the first submission, +1 for each correction or cancellation", ge=1)
    status: RecordStatus = F("记录状态", "normal 正常 / corrected 更正 / cancelled 作废 (latest version wins)")
    institution_code: str = F("定点医疗机构编码", "Institution code (fixmedins_code): H + 6-digit region + 5-digit sequence", pattern=INSTITUTION_PATTERN)
    med_type: MedType = F("就诊类型", "outpatient 门诊 / emergency 急诊 / inpatient 住院 / internet 互联网复诊")
    patient: PatientIdentity = F("患者", "Patient identity")
    insutype: InsuType = F("险种类型", "Insurance: 310 职工基本医疗保险, 390 城乡居民基本医疗保险, 510 生育保险, 610 工伤保险, 999 自费")
    dept_code: str = F("科室编码", "Department code (院内科室, mapped to 科别 by the platform)", min_length=1, max_length=30)
    dept_name: str = F("科室名称", "Department name", max_length=100)
    atddr_code: str = F("主诊医师代码", "Attending practitioner: national 医保医师代码", min_length=1, max_length=30)
    begntime: Timestamp = F("就诊/入院时间", "Visit start or admission time")
    endtime: Timestamp | None = F("结束/出院时间", "Visit end or discharge time", "conditional", when="med_type=inpatient and discharged", default=None)
    diagnoses: list[Diagnosis] = F("诊断", "Diagnoses, one marked primary", min_length=1)
    operations: list[Operation] = F("手术操作", "Operations", "optional", default_factory=list)
    fst_visit_flag: bool | None = F("初诊标志", "True for a first visit; internet visits must be follow-ups", "conditional", when="med_type=internet", default=None)
    rinp_plan_flag: bool | None = F("计划再住院标志", "Planned readmission within 31 days (e.g. chemotherapy cycle)", "conditional", when="med_type=inpatient", default=None)
    medfee_sumamt: Money = F("医疗费用总额", "Total cost of the encounter (yuan)", ge=0, scale=2)
    fund_pay_sumamt: Money = F("基金支付总额", "Amount paid by insurance funds (yuan)", ge=0, scale=2)
    psn_selfpay_amt: Money = F("个人自付金额", "Amount paid by the patient (yuan)", ge=0, scale=2)


class PrescriptionItem(Record):
    item_no: int = F("处方明细序号", "Line number within the prescription", ge=1)
    medins_list_codg: str = F("医药机构目录编码", "Local drug code; mapped to the 医保药品 code (med_list_codg)", min_length=1, max_length=50)
    drug_name: str = F("药品名称", "Drug name", max_length=200)
    spec: str = F("规格", "Specification, e.g. 0.25g*24片", "optional", default="", max_length=100)
    sin_doscnt: Qty = F("单次剂量", "Single dose", gt=0, scale=4)
    dose_unit: str = F("剂量单位", "Dose unit, e.g. mg, 片", max_length=20)
    used_frqu: str = F("使用频次", "Frequency code: qd, bid, tid, qid, q8h, q12h, qn, prn, st, qw", max_length=20)
    drug_route: str = F("给药途径", "Route: po 口服, iv 静脉, im 肌注, ih 皮下, ext 外用, inh 吸入 ...", max_length=20)
    prd_days: int = F("用药天数", "Days supplied", ge=0)
    cnt: Qty = F("数量", "Quantity dispensed", gt=0, scale=4)
    cnt_unit: str = F("数量单位", "Quantity unit, e.g. 盒", max_length=20)
    pric: Price = F("单价", "Unit price (yuan)", ge=0, scale=4)
    det_item_fee_sumamt: Money = F("明细项目费用总额", "Line amount = cnt × pric (yuan)", ge=0, scale=2)
    antibiotic_tier: AntibioticTier = F("抗菌药物级别", "Antibiotic tier as declared by the hospital: none / unrestricted 非限制使用级 / restricted 限制使用级 / special 特殊使用级")
    controlled_class: ControlledClass = F("麻精药品类别", "none / narcotic 麻醉药品 / psychotropic1 第一类精神药品 / psychotropic2 第二类精神药品", "optional", default="none")


class Prescription(Record):
    """处方 / Prescription with its items (西药、中成药或中药饮片)."""

    record_id: str = F("处方号", "Prescription number (rxno), unique within the institution", min_length=1, max_length=64)
    version: int = F("版本号", "Record version", ge=1)
    status: RecordStatus = F("记录状态", "normal / corrected / cancelled")
    institution_code: str = F("定点医疗机构编码", "Institution code", pattern=INSTITUTION_PATTERN)
    mdtrt_id: str = F("就诊ID", "Encounter this prescription belongs to (its record_id)", min_length=1, max_length=64)
    med_type: MedType = F("就诊类型", "Scene of the encounter")
    patient: PatientIdentity = F("患者", "Patient identity")
    rx_kind: RxKind = F("处方类别", "western 西药 / tcm_patent 中成药 / tcm_decoction 中药饮片")
    rx_time: Timestamp = F("开方时间", "Time the prescription was issued")
    dept_code: str = F("开方科室编码", "Prescribing department code", min_length=1, max_length=30)
    prsc_dr_code: str = F("开方医师代码", "Prescriber: national 医保医师代码", min_length=1, max_length=30)
    phar_code: str | None = F("审核药师代码", "Reviewing pharmacist (医保药师代码)", "conditional", when="online_flag", default=None, max_length=30)
    online_flag: bool = F("互联网处方标志", "True for an internet-hospital (online) prescription")
    chronic_flag: bool = F("慢病长处方标志", "Chronic/elderly long prescription declared by the physician (exempts the 7-day limit)", "optional", default=False)
    long_rx_reason: str | None = F("延长用量理由", "Reason for exceeding the usual days", "conditional", when="chronic_flag", default=None, max_length=200)
    items: list[PrescriptionItem] = F("处方明细", "Prescription items", min_length=1)


class Charge(Record):
    """费用明细 / Charge line: one drug, service item or consumable billed."""

    record_id: str = F("费用明细流水号", "Charge line id (feedetl_sn), unique within the institution", min_length=1, max_length=64)
    version: int = F("版本号", "Record version", ge=1)
    status: RecordStatus = F("记录状态", "normal / corrected / cancelled")
    institution_code: str = F("定点医疗机构编码", "Institution code", pattern=INSTITUTION_PATTERN)
    mdtrt_id: str = F("就诊ID", "Encounter this charge belongs to", min_length=1, max_length=64)
    med_type: MedType = F("就诊类型", "Scene of the encounter")
    patient: PatientIdentity = F("患者", "Patient identity")
    rxno: str | None = F("处方号", "Prescription this line dispenses", "conditional", when="item_type=drug", default=None, max_length=64)
    item_type: ItemType = F("项目类别", "drug 药品 / service 医疗服务项目 / consumable 医用耗材")
    medins_list_codg: str = F("医药机构目录编码", "Local item code; mapped to the national 医保 code", min_length=1, max_length=50)
    item_name: str = F("项目名称", "Item name", max_length=200)
    cnt: Qty = F("数量", "Quantity", scale=4)
    pric: Price = F("单价", "Unit price (yuan)", ge=0, scale=4)
    det_item_fee_sumamt: Money = F("明细项目费用总额", "Line amount = cnt × pric (yuan)", scale=2)
    fulamt_ownpay_amt: Money = F("全自费金额", "Amount paid fully by the patient (yuan)", ge=0, scale=2)
    fund_pay_amt: Money = F("基金支付金额", "Amount paid by insurance funds (yuan)", ge=0, scale=2)
    fee_ocur_time: Timestamp = F("费用发生时间", "Time the charge occurred")
    bilg_dept_codg: str = F("开单科室编码", "Ordering department code", max_length=30)
    bilg_dr_codg: str = F("开单医师代码", "Ordering practitioner (医保医师代码)", max_length=30)


class Heartbeat(Record):
    """心跳 / Heartbeat: tells the platform "connected, no business" apart from "not connected"."""

    institution_code: str = F("定点医疗机构编码", "Institution code", pattern=INSTITUTION_PATTERN)
    producer_id: str = F("上报程序标识", "Producer id (one per HIS installation)", min_length=1, max_length=64)
    sent_time: Timestamp = F("发送时间", "Time sent")
    outbox_depth: int = F("待发送记录数", "Records waiting in the local outbox", ge=0)
    last_seq: dict[str, int] = F("各类型最后序号", "Last sequence number sent per record type")
    sdk_version: str = F("SDK版本", "SDK version", max_length=20)


class ManifestEntry(Record):
    record_type: Literal["encounter", "prescription", "charge"] = F("记录类型", "Record type")
    record_count: int = F("记录数", "Record submissions (every version, incl. corrections and cancellations) of this type whose event falls on this business date (Beijing time)", ge=0)
    amount_sum: Money = F("金额合计", "Sum of the amounts of those submissions (encounter medfee_sumamt / prescription item amounts / charge amounts)", scale=2)
    first_seq: int = F("起始序号", "First sequence number of the day (0 if none)", ge=0)
    last_seq: int = F("结束序号", "Last sequence number of the day (0 if none)", ge=0)


class DailyManifest(Record):
    """日结对账 / Daily manifest: declared counts and amounts per record type per business day."""

    institution_code: str = F("定点医疗机构编码", "Institution code", pattern=INSTITUTION_PATTERN)
    producer_id: str = F("上报程序标识", "Producer id", min_length=1, max_length=64)
    business_date: date = F("业务日期", "Business day the counts cover")
    entries: list[ManifestEntry] = F("明细", "Counts per record type")
    sent_time: Timestamp = F("发送时间", "Time sent")


class FindingDetail(Record):
    record_type: str = F("记录类型", "Record type of the involved record")
    record_id: str = F("记录ID", "Involved record id")
    vola_item_type: Literal[1, 2] = F("违规项目类型", "1 违规项 (violating item) / 2 涉及项 (involved item)")
    vola_amt: Money = F("违规金额", "Amount involved for this item (yuan)", scale=2)


class Feedback(Record):
    """反馈 / Feedback to a hospital: a rule finding or a data-quality issue (shape of NHSA 3101 output)."""

    feedback_id: str = F("反馈ID", "Unique id (warn_rslt_id); used to acknowledge or explain", min_length=1, max_length=64)
    kind: Literal["finding", "quality_issue"] = F("反馈类别", "finding 规则命中 / quality_issue 数据质量问题")
    institution_code: str = F("定点医疗机构编码", "Institution code", pattern=INSTITUTION_PATTERN)
    record_type: str = F("记录类型", "Type of the main record")
    record_id: str = F("记录ID", "Main record id")
    record_version: int = F("记录版本", "Version of the record evaluated", ge=1)
    code: str = F("规则/问题编码", "Rule id (rule_id) or quality issue code")
    code_version: int = F("规则版本", "Rule version in force (0 for quality issues)", ge=0)
    name: str = F("规则/问题名称", "Rule name or issue name (中文)")
    severity: Literal["提示", "预警", "违规"] = F("严重程度", "Severity (sev_deg)")
    result_type: Literal["明确", "可疑"] = F("结果类型", "明确 definite / 可疑 suspicious")
    message: str = F("违规内容", "What was found (vola_cont), 中文 then English")
    basis: str = F("依据", "Legal basis or standard (vola_evid)", "optional", default="")
    vola_amt: Money = F("违规金额", "Amount involved (yuan)", scale=2)
    field: str = F("字段", "Field concerned (quality issues)", "optional", default="")
    details: list[FindingDetail] = F("明细", "Involved records (judge_result_detail)", "optional", default_factory=list)
    created_time: Timestamp = F("生成时间", "Time the platform produced it")


class FeedbackHandling(Record):
    """反馈处理 / Hospital's handling of a feedback item (shape of NHSA 3103)."""

    feedback_id: str = F("反馈ID", "The feedback handled", min_length=1, max_length=64)
    institution_code: str = F("定点医疗机构编码", "Institution code", pattern=INSTITUTION_PATTERN)
    dspo_way: Literal["acknowledge", "explain", "correct", "self_pay"] = F("处理方式", "acknowledge 确认 / explain 说明 / correct 已更正 / self_pay 转自费")
    dspo_way_rea: str = F("处理原因", "Reason or explanation", "optional", default="", max_length=500)
    handler_code: str = F("处理人", "Who handled it (staff code)", max_length=30)
    handled_time: Timestamp = F("处理时间", "Time handled")


class EnvelopeHeader(Record):
    """信封头 / Envelope header, in clear and bound to the ciphertext as GCM associated data."""

    format_version: int = F("格式版本", "Envelope format version (1)", ge=1)
    institution_code: str = F("定点医疗机构编码", "Sending institution; must own the key", pattern=INSTITUTION_PATTERN)
    record_type: str = F("记录类型", "encounter / prescription / charge / heartbeat / manifest / feedback / feedback_handling")
    key_id: str = F("密钥标识", "Key id <institution>.v<version> of the SM4 key used", min_length=1, max_length=40)
    producer_id: str = F("上报程序标识", "Producer id (one per HIS installation)", min_length=1, max_length=64)
    first_seq: int = F("起始序号", "Sequence number of the first record; records are numbered per producer and record type without gaps", ge=0)
    record_count: int = F("记录数", "Records in the payload", ge=1)
    sent_time: Timestamp = F("发送时间", "Time the envelope was sealed")
    schema_fp: str = F("模式指纹", "CRC-64-AVRO fingerprint (16 hex) of the payload records' Avro schema", min_length=16, max_length=16)
    nonce: bytes = F("随机数", "12-byte SM4-GCM nonce", min_length=12, max_length=12)


class Envelope(Record):
    """信封 / Envelope: the Kafka message value on the raw topics."""

    header: EnvelopeHeader = F("信封头", "Header in clear")
    payload: bytes = F("密文", "SM4-GCM ciphertext and 16-byte tag of record_count concatenated Avro records")


# --- what daily manifests count (one definition for the SDK, the platform and the simulator) ------
BUSINESS_TIME_FIELD = {"encounter": "begntime", "prescription": "rx_time", "charge": "fee_ocur_time"}


def _get(rec, name: str):
    return rec[name] if isinstance(rec, dict) else getattr(rec, name)


def business_date(record_type: str, rec) -> date:
    """Business day (Beijing time) a record is counted under in daily manifests."""
    return _get(rec, BUSINESS_TIME_FIELD[record_type]).astimezone(HOSPITAL_TZ).date()


def business_amount(record_type: str, rec) -> Decimal:
    """Amount a record contributes to a daily manifest (model or decoded dict)."""
    if record_type == "encounter":
        return Decimal(str(_get(rec, "medfee_sumamt")))
    if record_type == "prescription":
        return sum((Decimal(str(_get(i, "det_item_fee_sumamt"))) for i in _get(rec, "items")), Decimal("0"))
    return Decimal(str(_get(rec, "det_item_fee_sumamt")))


# Record types carried in envelopes, by the name used in headers, topics and the sink.
RECORD_MODELS: dict[str, type[Record]] = {
    "encounter": Encounter,
    "prescription": Prescription,
    "charge": Charge,
    "heartbeat": Heartbeat,
    "manifest": DailyManifest,
    "feedback": Feedback,
    "feedback_handling": FeedbackHandling,
}
ENVELOPE_MODELS: dict[str, type[Record]] = {"envelope": Envelope}
BUSINESS_TYPES = ("encounter", "prescription", "charge")
