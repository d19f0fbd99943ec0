"""Logic templates: the code behind rules. A rule names a template and gives it params.

A template is a subclass of :class:`Template` registered under a name. It declares the record types
it reads, what triggers it (``trigger``: ``"line"`` = drug/item/consumable codes, ``"diagnosis"``,
``"operation"``, or ``None`` = every record of its types), a pydantic ``Params`` model (validated at
lint and load time: formats of national codes included) and ``check(facts, params, env)`` returning
hits. Stateful templates read ``env.history`` (:class:`yijian.rules.history.PatientHistory`) and
declare how far back they look (``window_days``).

Templates from other packages are discovered through the entry-point group
``yijian.rule_templates`` (each entry point loads a Template subclass); see rules/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from yijian.rules.facts import Facts
from yijian.rules.model import RuleContext

ENTRY_POINT_GROUP = "yijian.rule_templates"

# National code formats (research/domain.md §2.1).
CODE_PATTERNS = {
    "西药": re.compile(r"^X[A-Z]\d{2}[A-Z]{2}[A-Z]\d{3}[A-Z]\d{3}\d{4}\d{5}$"),
    "中成药": re.compile(r"^Z[A-Z]\d{2}[A-Z]{2}[A-Z]\d{4}\d{4}\d{5}$"),
    "中药饮片": re.compile(r"^T\d{9}$"),
    "医疗服务项目": re.compile(r"^00\d{13}$"),
    "医用耗材": re.compile(r"^C\d{19}$"),
}
ICD10 = re.compile(r"^[A-Z]\d{2}(\.[0-9x]{1,3})?(x\d{3})?$")
ICD10_RANGE = re.compile(r"^[A-Z]\d{2}-[A-Z]\d{2}$")
ICD9 = re.compile(r"^\d{2}(\.\d{1,4})?(x\d{3})?$")


def code_kind(code: str) -> str | None:
    for kind, pat in CODE_PATTERNS.items():
        if pat.match(code):
            return kind
    return None


def _item_code(v: str) -> str:
    if code_kind(v) is None:
        raise ValueError(f"编码格式不符合国家医保编码 / not a national drug, TCM, service or consumable code: {v!r}")
    return v


def _icd10(v: str) -> str:
    if not (ICD10.match(v) or ICD10_RANGE.match(v)):
        raise ValueError(f"不是ICD-10编码或类目范围 / not an ICD-10 code, category or range (A00-B99): {v!r}")
    return v


def _icd9(v: str) -> str:
    if not ICD9.match(v):
        raise ValueError(f"不是ICD-9-CM-3编码 / not an ICD-9-CM-3 code: {v!r}")
    return v


ItemCode = Annotated[str, AfterValidator(_item_code)]
IcdCode = Annotated[str, AfterValidator(_icd10)]
OpCode = Annotated[str, AfterValidator(_icd9)]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodesParams(Params):
    codes: list[ItemCode]


@lru_cache(maxsize=4096)
def _icd_matcher(patterns: tuple[str, ...]):
    ranges, prefixes = [], []
    for p in patterns:
        if "-" in p:
            lo, hi = p.split("-")
            ranges.append((lo, hi))
        else:
            prefixes.append(p)
    prefixes_t = tuple(prefixes)

    def match(code: str) -> bool:
        if not code:
            return False
        if prefixes_t and code.startswith(prefixes_t):
            return True
        head = code[:3]
        return any(lo <= head <= hi for lo, hi in ranges)

    return match


def icd_match(code: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """ICD code matches a full code, a category/prefix (J18, J18.9) or a range of categories (O00-O99)."""
    return _icd_matcher(tuple(patterns))(code)


def icd_index_keys(patterns: list[str]) -> set[str]:
    """Index keys (first character) of diagnosis patterns; ranges may span letters."""
    keys = set()
    for p in patterns:
        if "-" in p:
            lo, hi = p.split("-")
            keys.update(chr(c) for c in range(ord(lo[0]), ord(hi[0]) + 1))
        else:
            keys.add(p[0])
    return keys


@dataclass
class Hit:
    """One reason the rule fired; the engine merges a rule's hits into one Finding."""

    message: str
    items: list[tuple[str, str, int, Decimal]] = field(default_factory=list)  # (record_type, record_id, 1 违规项/2 涉及项, amount)


class Env:
    """What a template may use besides the record: reference data, the patient's history, a trace."""

    __slots__ = ("context", "history", "trace")

    def __init__(self, context: RuleContext, history: Any = None, trace: list | None = None):
        self.context = context
        self.history = history
        self.trace = trace

    def note(self, condition: str, ok: Any) -> Any:
        """Record one evaluated condition (only when explaining)."""
        if self.trace is not None:
            self.trace.append((condition, ok))
        return ok


class Template:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    record_types: ClassVar[tuple[str, ...]] = ("prescription", "charge")
    trigger: ClassVar[str | None] = None
    stateful: ClassVar[bool] = False
    Params: ClassVar[type[Params]] = Params

    def codes(self, p: Params) -> set[str]:
        """Codes that trigger the rule (index keys); only used when ``trigger`` is set."""
        return set(getattr(p, "codes", []))

    def trigger_kind(self, p: Params) -> str | None:
        """What indexes this rule: "line", "diagnosis", "operation" or None (every record of its types)."""
        return self.trigger

    def record_types_for(self, p: Params) -> tuple[str, ...]:
        return self.record_types

    def window_days(self, p: Params) -> int:
        """How many days of history a stateful rule reads."""
        return 0

    def lint(self, p: Params) -> list[str]:
        """Extra checks beyond the params model (return problems)."""
        return []

    def check(self, f: Facts, p: Params, env: Env) -> list[Hit]:  # pragma: no cover - abstract
        raise NotImplementedError


REGISTRY: dict[str, Template] = {}


def register(cls: type[Template]) -> type[Template]:
    REGISTRY[cls.name] = cls()
    return cls


def line_item(ln, kind: int = 1) -> tuple[str, str, int, Decimal]:
    return (ln.record_type, ln.record_id, kind, ln.amount)


_loaded = False


def registry() -> dict[str, Template]:
    """All templates: built-in ones and those of installed plugins (entry points)."""
    global _loaded
    if not _loaded:
        from yijian.rules.templates import clinical, expression, limits, prescription, stateful  # noqa: F401

        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            cls = ep.load()
            if isinstance(cls, type) and issubclass(cls, Template):
                register(cls)
        _loaded = True
    return REGISTRY
