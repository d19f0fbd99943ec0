"""Safe expressions for the ``expression`` template: parsed with :mod:`ast`, checked against a
whitelist, then compiled into closures (never ``eval``/``exec``).

Allowed: literals, names of record facts (see Facts.env), ``a.b`` read as the dict key ``b`` of a
record field (never a Python attribute), ``a[i]``, comparisons (incl. ``in``/``not in``), ``and``/
``or``/``not``, arithmetic, ``x if c else y``, generator expressions / list comprehensions over
lists, and calls to ``len any all sum min max abs``. Everything else (imports, lambdas, other calls,
names or keys starting with ``_``, f-strings, assignment expressions, ...) is refused at lint time.
"""

from __future__ import annotations

import ast
import operator
from decimal import Decimal
from typing import Any, Callable

SAFE_FUNCS: dict[str, Callable] = {"len": len, "any": any, "all": all, "sum": sum, "min": min, "max": max, "abs": abs}

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
        ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
        ast.Is: operator.is_, ast.IsNot: operator.is_not}

_NONE_OK = (operator.eq, operator.ne, operator.is_, operator.is_not)


class UnsafeExpression(ValueError):
    """The expression uses something outside the whitelist."""


def _num(v: Any) -> Any:
    return float(v) if isinstance(v, Decimal) else v


def _get(obj: Any, key: Any) -> Any:
    if isinstance(key, str) and key.startswith("_"):
        raise UnsafeExpression(f"不允许访问下划线字段 / private key refused: {key}")
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, (list, tuple, str)) and isinstance(key, int):
        return obj[key]
    raise UnsafeExpression(f"只能读取记录字段 / only record fields can be read, not {type(obj).__name__}[{key!r}]")


def compile_expr(source: str, names: set[str] | None = None) -> Callable[[dict], Any]:
    """Check and compile an expression; the result is ``f(env) -> value``. Raises UnsafeExpression."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"表达式语法错误 / syntax error: {exc.msg}") from None
    return _compile(tree.body, names, frozenset())


def _compile(node: ast.AST, names: set[str] | None, bound: frozenset) -> Callable[[dict], Any]:
    c = lambda n, b=bound: _compile(n, names, b)  # noqa: E731
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise UnsafeExpression(f"不允许的常量 / literal type refused: {type(node.value).__name__}")
        v = node.value
        return lambda env: v
    if isinstance(node, ast.Name):
        name = node.id
        if name.startswith("_"):
            raise UnsafeExpression(f"不允许的名称 / name refused: {name}")
        if name not in bound and names is not None and name not in names:
            raise UnsafeExpression(f"未知字段 / unknown field: {name}")
        return lambda env: env[name]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        elts = [c(e) for e in node.elts]
        return lambda env: [e(env) for e in elts]
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise UnsafeExpression(f"不允许的属性 / attribute refused: {node.attr}")
        base, attr = c(node.value), node.attr
        return lambda env: _get(base(env), attr)
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Slice):
            raise UnsafeExpression("不允许切片 / slices refused")
        base, idx = c(node.value), c(node.slice)
        return lambda env: _get(base(env), idx(env))
    if isinstance(node, ast.BoolOp):
        parts = [c(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda env: all(p(env) for p in parts)
        return lambda env: any(p(env) for p in parts)
    if isinstance(node, ast.UnaryOp):
        operand = c(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        if isinstance(node.op, ast.USub):
            return lambda env: -_num(operand(env))
        if isinstance(node.op, ast.UAdd):
            return lambda env: +_num(operand(env))
        raise UnsafeExpression(f"不允许的运算 / operator refused: {type(node.op).__name__}")
    if isinstance(node, ast.BinOp):
        fn = _BIN.get(type(node.op))
        if fn is None:
            raise UnsafeExpression(f"不允许的运算 / operator refused: {type(node.op).__name__}")
        left, right = c(node.left), c(node.right)
        return lambda env: fn(_num(left(env)), _num(right(env)))
    if isinstance(node, ast.Compare):
        left = c(node.left)
        ops = []
        for op, comp in zip(node.ops, node.comparators):
            fn = _CMP.get(type(op))
            if fn is None:
                raise UnsafeExpression(f"不允许的比较 / comparison refused: {type(op).__name__}")
            ops.append((fn, c(comp)))

        def compare(env: dict) -> bool:
            a = _num(left(env))
            for fn, comp in ops:
                b = _num(comp(env))
                if a is None or b is None:
                    ok = fn(a, b) if fn in _NONE_OK else False
                else:
                    ok = fn(a, b)
                if not ok:
                    return False
                a = b
            return True

        return compare
    if isinstance(node, ast.IfExp):
        test, body, orelse = c(node.test), c(node.body), c(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in SAFE_FUNCS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:40]
            raise UnsafeExpression(f"不允许调用 / call refused: {name} (allowed: {', '.join(SAFE_FUNCS)})")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise UnsafeExpression("不允许关键字或展开参数 / keyword or starred arguments refused")
        fn = SAFE_FUNCS[node.func.id]
        args = [c(a) for a in node.args]
        return lambda env: fn(*[_num(a(env)) for a in args])
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        if len(node.generators) != 1:
            raise UnsafeExpression("只允许单层推导 / one 'for' only")
        gen = node.generators[0]
        if not isinstance(gen.target, ast.Name) or gen.target.id.startswith("_") or gen.is_async:
            raise UnsafeExpression("推导变量必须是简单名称 / comprehension target must be a plain name")
        var = gen.target.id
        inner = bound | {var}
        it = c(gen.iter)
        conds = [c(x, inner) for x in gen.ifs]
        elt = c(node.elt, inner)

        def comp(env: dict) -> list:
            out = []
            seq = it(env)
            if not isinstance(seq, list):
                raise UnsafeExpression("只能遍历列表 / can only iterate over lists")
            for v in seq:
                local = {**env, var: v}
                if all(cond(local) for cond in conds):
                    out.append(elt(local))
            return out

        return comp
    raise UnsafeExpression(f"不允许的语法 / construct refused: {type(node).__name__}")
