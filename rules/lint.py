"""Static checks of rule packs (``yijian rules lint``): schema, duplicate ids, unknown templates,
bad params (including national code formats and unsafe expressions), missing test cases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from yijian.rules.engine import RuleError, compile_rule
from yijian.rules.model import PACKS_DIR, Pack, pack_files, pack_from_data
from yijian.rules.templates import registry


@dataclass
class Problem:
    source: str
    rule: str
    message: str


def lint_pack_data(packs: list[tuple[str, dict]]) -> list[Problem]:
    """Lint packs given as (source, raw data) pairs."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    templates = registry()
    for source, data in packs:
        try:
            pack: Pack = pack_from_data(data, source)
        except ValidationError as exc:
            for e in exc.errors():
                loc = ".".join(str(x) for x in e["loc"])
                problems.append(Problem(source, loc, f"格式错误 / schema: {e['msg']}"))
            continue
        except (TypeError, AttributeError) as exc:
            problems.append(Problem(source, "", f"格式错误 / schema: {exc}"))
            continue
        for rule in pack.rules:
            if rule.id in seen:
                problems.append(Problem(source, rule.id, f"规则编号重复 / duplicate rule id (also in {seen[rule.id]})"))
            seen[rule.id] = source
            try:
                compile_rule(rule, pack, templates)
            except RuleError as exc:
                problems.append(Problem(source, rule.id, str(exc)))
            if not rule.cases.fire or not rule.cases.pass_:
                problems.append(Problem(source, rule.id, "缺少测试用例：至少需要一个 fire 和一个 pass / needs >=1 fire and >=1 pass case"))
            if rule.effective_to and rule.effective_to < rule.effective_from:
                problems.append(Problem(source, rule.id, "失效日期早于生效日期 / effective_to before effective_from"))
    return problems


def lint_folder(folder: str | Path = PACKS_DIR) -> list[Problem]:
    packs = []
    problems = []
    for path in pack_files(folder):
        try:
            packs.append((str(path), yaml.safe_load(path.read_text(encoding="utf-8"))))
        except yaml.YAMLError as exc:
            problems.append(Problem(str(path), "", f"YAML 语法错误 / YAML syntax: {exc}"))
    return problems + lint_pack_data(packs)
