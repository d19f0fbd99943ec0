"""Formats of the national code systems (research/domain.md §2.1), as compiled regexes.

``FORMATS[kind]`` is the regex; :func:`matches` checks a code. Kinds:

- ``drug_western`` 医保西药代码 (23): X + ATC-4 + 通用名码 + 剂型码 + 规格/包装 + 企业
- ``drug_tcm_patent`` 医保中成药代码 (20): Z + 分类 + 通用名码 + 规格包装 + 企业
- ``drug_tcm_decoction`` 中药饮片 (10): T + 9 digits
- ``drug``: any of the three
- ``service`` 医保医疗服务项目 (15): 00 + 13 digits
- ``consumable`` 医保医用耗材 (20): C + 19 digits
- ``diagnosis`` ICD-10 医保版 2.0 (e.g. J18.900, I10.x00); ``diagnosis_clinical`` ICD-10 国临版 2.0 (adds xNNN extensions)
- ``operation`` ICD-9-CM-3 (e.g. 47.0900, 74.1x00, 13.4100x001)
- ``institution`` 定点医药机构 (12): H (医疗机构) / P (药店) + 6-digit region + 5-digit sequence
- ``practitioner`` 国家医保医师/护士/药师代码: D/N/Y + 11 digits — *format not verified against an
  official text* (domain.md §6); change here when the official layout is confirmed
- ``department`` 科别 (诊疗科目 with the NHSA ``A`` prefix): A03, A03.01
- ``region`` GB/T 2260 (6 digits)
"""

from __future__ import annotations

import re

FORMATS: dict[str, re.Pattern[str]] = {
    "drug_western": re.compile(r"^X[A-Z]\d{2}[A-Z]{2}[A-Z]\d{3}[A-Z]\d{3}\d{4}\d{5}$"),
    "drug_tcm_patent": re.compile(r"^Z[A-Z]\d{2}[A-Z]{2}[A-Z]\d{4}\d{4}\d{5}$"),
    "drug_tcm_decoction": re.compile(r"^T\d{9}$"),
    "service": re.compile(r"^00\d{13}$"),
    "consumable": re.compile(r"^C\d{19}$"),
    "diagnosis": re.compile(r"^[A-Z]\d{2}(\.[0-9x]{1,3})?$"),
    "diagnosis_clinical": re.compile(r"^[A-Z]\d{2}(\.[0-9x]{1,3})?(x\d{3})?$"),
    "operation": re.compile(r"^\d{2}(\.[0-9x]{1,4})?(x\d{3})?$"),
    "institution": re.compile(r"^[HP]\d{11}$"),
    "practitioner": re.compile(r"^[DNY]\d{11}$"),
    "department": re.compile(r"^A\d{2}(\.\d{2})?$"),
    "region": re.compile(r"^\d{6}$"),
}


def matches(kind: str, code: str) -> bool:
    """Does ``code`` have the format of ``kind``? (``drug`` accepts any of the three drug kinds.)"""
    if kind == "drug":
        return any(FORMATS[k].match(code) for k in ("drug_western", "drug_tcm_patent", "drug_tcm_decoction"))
    return bool(FORMATS[kind].match(code))


def drug_kind(code: str) -> str | None:
    """``western`` / ``tcm_patent`` / ``tcm_decoction`` from the code's format, None if no match."""
    for kind, name in (("drug_western", "western"), ("drug_tcm_patent", "tcm_patent"), ("drug_tcm_decoction", "tcm_decoction")):
        if FORMATS[kind].match(code):
            return name
    return None


def generic_key(code: str) -> str:
    """The part of a drug code that identifies the generic drug (通用名): used to find the same drug
    across strengths, packages and makers (重复开药). X: first 10 chars; Z: first 11; T: whole code."""
    if code.startswith("X"):
        return code[:10]
    if code.startswith("Z"):
        return code[:11]
    return code
