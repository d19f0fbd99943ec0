"""Reading files of existing records (存量数据) for `yijian send` and `yijian check`.

Formats (chosen by extension):

- **JSONL** (``.jsonl``, ``.ndjson``): one JSON object per line, shaped like the schema
  (``patient`` an object, ``diagnoses``/``items`` arrays). Blank lines are skipped.
- **CSV** (``.csv``, UTF-8, with or without BOM; header row required). Nested fields either
  - as JSON in one column: ``patient`` = ``{"psn_cert_type":"01","certno":"...",...}``,
    ``diagnoses`` = ``[{"diag_code":"J06.900",...}]``; or
  - flattened with dotted column names: ``patient.certno``, ``diagnoses.0.diag_code``,
    ``diagnoses.1.diag_code`` (numeric parts are list positions).
  An empty cell means "not given" (the field's default applies, or a required field is reported
  missing). A cell starting with ``[`` or ``{`` is read as JSON.

Row numbers are 1-based data rows (the CSV header is not counted; JSONL lines are counted).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pydantic import ValidationError

from yijian.schemas.models import RECORD_MODELS, Record


@dataclass(frozen=True)
class Problem:
    row: int
    field: str
    code: str
    zh: str
    en: str

    def text(self) -> str:
        return f"第{self.row}行 {self.field}: {self.zh} / row {self.row} {self.field}: {self.en}"


# pydantic error types → Chinese (the English is pydantic's own message)
ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不是接口标准中的字段",
    "string_too_short": "长度不足",
    "string_too_long": "超过最大长度",
    "string_pattern_mismatch": "格式不符合规范",
    "string_type": "应为字符串",
    "literal_error": "取值不在值域内",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "bool_parsing": "应为布尔值(true/false)",
    "bool_type": "应为布尔值(true/false)",
    "decimal_parsing": "应为数值",
    "decimal_type": "应为数值",
    "decimal_max_digits": "数字位数过多",
    "decimal_max_places": "小数位数过多",
    "decimal_whole_digits": "整数位数过多",
    "greater_than": "应大于下限",
    "greater_than_equal": "应不小于下限",
    "less_than": "应小于上限",
    "less_than_equal": "应不大于上限",
    "too_short": "至少需要一项",
    "too_long": "项数过多",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "date_parsing": "日期格式错误(应为YYYY-MM-DD)",
    "date_from_datetime_parsing": "日期格式错误(应为YYYY-MM-DD)",
    "date_from_datetime_inexact": "日期不应带时间",
    "datetime_parsing": "时间格式错误(应为ISO 8601,如2026-11-02T09:30:00+08:00)",
    "datetime_from_date_parsing": "时间格式错误(应为ISO 8601,如2026-11-02T09:30:00+08:00)",
    "datetime_type": "时间格式错误",
    "json_invalid": "JSON格式错误",
    "value_error": "取值无效",
}


def file_format(path: Path) -> str:
    ext = path.suffix.lower()
    if ext == ".csv":
        return "csv"
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ValueError(f"不支持的文件类型 {ext} (应为 .csv 或 .jsonl) / unsupported file type {ext} (use .csv or .jsonl)")


def _unflatten(row: dict[str, str]) -> dict:
    out: dict = {}
    for col, raw in row.items():
        if col is None or raw is None or raw == "":
            continue
        value: object = raw
        text = raw.strip()
        if text[:1] in "[{":
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = raw  # reported by validation as a wrong type
        node = out
        parts = col.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return _lists(out)


def _lists(node):
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def read_rows(path: Path) -> Iterator[tuple[int, dict | Exception]]:
    """(row number, raw dict) per data row; an unreadable row yields the exception instead."""
    fmt = file_format(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        if fmt == "csv":
            for i, row in enumerate(csv.DictReader(fh), start=1):
                yield i, _unflatten(row)
        else:
            for i, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    yield i, obj if isinstance(obj, dict) else ValueError("line is not a JSON object")
                except json.JSONDecodeError as exc:
                    yield i, exc


def count_rows(path: Path) -> int:
    return sum(1 for _ in read_rows(path))


def pydantic_problems(row: int, exc: ValidationError) -> list[Problem]:
    out = []
    for e in exc.errors(include_url=False):
        field = ".".join(str(p) for p in e["loc"]) or "(记录)"
        zh = ZH.get(e["type"], "取值无效")
        ctx = e.get("ctx") or {}
        if e["type"] == "literal_error" and "expected" in ctx:
            zh += f"(允许 {ctx['expected']})"
        elif e["type"] == "string_pattern_mismatch" and "pattern" in ctx:
            zh += f"(规则 {ctx['pattern']})"
        elif e["type"] in ("string_too_long", "string_too_short") and ctx:
            zh += f"({ctx})"
        out.append(Problem(row, field, e["type"], zh, e["msg"]))
    return out


def _resident_id_checker():
    """The platform's own resident ID check (GB 11643 plus agreement with sex and birth date)."""
    from yijian.refdata.identity import resident_id_problems

    return resident_id_problems


def _id_problems(row: int, record, checker) -> list[Problem]:
    """The platform's ID findings for this record (same codes as its quality issues)."""
    from datetime import date, datetime

    when = next((getattr(record, f) for f in ("begntime", "rx_time", "fee_ocur_time") if getattr(record, f, None)), None)
    on = when.date() if isinstance(when, datetime) else date.today()
    p = record.patient
    out = []
    for code, _dimension, fld, detail in checker(p.certno, p.gend, p.brdy, on):
        zh, _, en = detail.partition(" / ")
        out.append(Problem(row, fld, code, zh, en or zh))
    return out


def business_problems(row: int, record: Record, institution_code: str | None, checker) -> list[Problem]:
    out = []
    inst = getattr(record, "institution_code", None)
    if institution_code and inst and inst != institution_code:
        out.append(Problem(row, "institution_code", "institution_mismatch", f"机构编码应为 {institution_code}", f"institution code must be {institution_code}"))
    patient = getattr(record, "patient", None)
    if checker is not None and patient is not None and patient.psn_cert_type == "01":
        out.extend(_id_problems(row, record, checker))
    diags = getattr(record, "diagnoses", None)
    if diags is not None and sum(1 for d in diags if d.maindiag_flag) != 1:
        out.append(Problem(row, "diagnoses", "main_diagnosis_count", "应有且仅有一个主诊断", "exactly one diagnosis must be primary"))
    return out


@dataclass
class CheckResult:
    rows: int
    valid: list[tuple[int, Record]]
    problems: list[Problem]


def check_rows(
    rows: Iterator[tuple[int, dict | Exception]], record_type: str, institution_code: str | None = None
) -> Iterator[tuple[int, Record | None, list[Problem]]]:
    """Validate rows one by one: (row, record or None, problems)."""
    model = RECORD_MODELS[record_type]
    checker = _resident_id_checker()
    seen: dict[tuple[str, int], int] = {}
    for row, raw in rows:
        if isinstance(raw, Exception):
            yield row, None, [Problem(row, "(行)", "unreadable", "无法解析该行", f"{type(raw).__name__}: {raw}")]
            continue
        try:
            rec = model.model_validate(raw)
        except ValidationError as exc:
            yield row, None, pydantic_problems(row, exc)
            continue
        problems = business_problems(row, rec, institution_code, checker)
        key = (getattr(rec, "record_id", None), getattr(rec, "version", None))
        if key[0] is not None:
            if key in seen:
                problems.append(Problem(row, "record_id", "duplicate", f"与第{seen[key]}行重复(同一记录ID和版本)", f"duplicate of row {seen[key]} (same record_id and version)"))
            else:
                seen[key] = row
        yield row, rec, problems


def check_file(path: Path, record_type: str, institution_code: str | None = None) -> CheckResult:
    valid, problems, n = [], [], 0
    for row, rec, probs in check_rows(read_rows(path), record_type, institution_code):
        n += 1
        problems.extend(probs)
        if rec is not None and not probs:
            valid.append((row, rec))
    return CheckResult(n, valid, problems)


def file_key(path: Path, record_type: str) -> str:
    return f"{path.resolve()}|{record_type}"
