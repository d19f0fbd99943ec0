"""The general expression template for simple conditions (see rules/expr.py for what is allowed)."""

from __future__ import annotations

from typing import Literal

from pydantic import PrivateAttr, model_validator

from yijian.rules.expr import compile_expr
from yijian.rules.templates import Env, Hit, Params, Template, register

# Names an expression may read (Facts.env()).
EXPR_NAMES = {
    "record_type", "med_type", "sex", "age", "age_days", "insutype", "level", "inst_type", "dept", "diagnoses",
    "operations", "rx_kind", "online", "chronic", "first_visit", "planned_readmission", "los", "amount", "items",
    "n_items", "fund_pay", "selfpay",
}


class ExpressionParams(Params):
    expr: str
    record_types: list[Literal["encounter", "prescription", "charge"]]
    says: str = ""  # 中文 detail when it fires
    _fn = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self):
        self._fn = compile_expr(self.expr, EXPR_NAMES)  # raises UnsafeExpression (a ValueError) at lint/load
        return self


@register
class Expression(Template):
    name = "expression"
    description = "通用表达式：对记录字段的简单条件（仅允许比较、布尔、算术、字段访问、in、字面量及 len/any/all/sum/min/max/abs）"
    record_types = ("encounter", "prescription", "charge")
    Params = ExpressionParams

    def record_types_for(self, p):
        return tuple(p.record_types)

    def check(self, f, p, env: Env):
        if not env.note(f"记录类型 {f.record_type} ∈ {p.record_types}", f.record_type in p.record_types):
            return []
        try:
            ok = bool(p._fn(f.env()))
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
            env.note(f"表达式求值失败 / evaluation failed: {exc}", False)
            return []
        if env.note(f"表达式 {p.expr}", ok):
            return [Hit(p.says or f"满足条件：{p.expr}", [(f.record_type, f.record_id, 1, f.amount)])]
        return []
