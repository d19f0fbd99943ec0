"""Lint catches each class of error; the expression template refuses unsafe input; the CLI works."""

from __future__ import annotations

import copy
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from yijian.cli import app
from yijian.rules.expr import UnsafeExpression, compile_expr
from yijian.rules.lint import lint_folder, lint_pack_data
from yijian.rules.model import PACKS_DIR

GOOD = {
    "id": "t-pack", "version": "1",
    "defaults": {"version": 1, "category": "政策", "result_type": "明确", "severity": "违规", "basis": "测试依据"},
    "rules": [{
        "id": "T-001", "name": "测试", "subject": "药品区分性别使用", "template": "limit_sex",
        "params": {"codes": ["XL02BBD161A110110932127"], "sex": "1"},
        "cases": {"fire": [{"set": {"patient.sex": "2"}}], "pass": [{"set": {"patient.sex": "1"}}]},
    }],
}


def lint_with(**changes):
    data = copy.deepcopy(GOOD)
    for k, v in changes.items():
        data["rules"][0][k] = v
    return [p.message for p in lint_pack_data([("t.yaml", data)])]


def test_a_good_pack_and_the_shipped_packs_are_clean():
    assert lint_pack_data([("t.yaml", GOOD)]) == []
    assert lint_folder() == []


@pytest.mark.parametrize("changes, expected", [
    ({"template": "nope"}, "unknown template"),
    ({"params": {"codes": ["XL02BBD161A110110932127"], "sex": "3"}}, "bad params"),
    ({"params": {"codes": ["XL02BBA326A00101010218"], "sex": "1"}}, "national drug"),  # 22 chars
    ({"params": {"codes": ["0110200001000"], "sex": "1"}}, "national drug"),  # service code too short
    ({"template": "indication", "params": {"codes": ["C0207010020200100002"], "diagnoses": ["J18.9.9"]}}, "ICD-10"),
    ({"template": "operation_sex", "params": {"operations": ["1341"], "sex": "2"}}, "ICD-9"),
    ({"params": {"codes": ["XL02BBD161A110110932127"]}}, "bad params"),  # missing sex
    ({"params": {"codes": ["XL02BBD161A110110932127"], "sex": "1", "extra": 1}}, "bad params"),
    ({"cases": {"fire": [{"set": {}}]}}, "needs >=1 fire and >=1 pass"),
    ({"severity": "严重"}, "schema"),
    ({"id": "bad id"}, "schema"),
    ({"template": "expression", "params": {"record_types": ["charge"], "expr": "__import__('os').system('id')"}}, "refused"),
])
def test_lint_catches_each_class_of_error(changes, expected):
    problems = lint_with(**changes)
    assert any(expected in p for p in problems), problems


def test_lint_catches_duplicate_ids_across_packs():
    other = copy.deepcopy(GOOD)
    other["id"] = "t-other"
    problems = lint_pack_data([("a.yaml", GOOD), ("b.yaml", other)])
    assert [p.rule for p in problems] == ["T-001"] and "duplicate" in problems[0].message


@pytest.mark.parametrize("source", [
    "__import__('os')",
    "open('/etc/passwd')",
    "(lambda: 1)()",
    "items.__class__",
    "items[0].__class__.__bases__",
    "[x.__class__ for x in items]",
    "[x for x in ().__class__.__bases__]",
    "getattr(items, 'x')",
    "age.real",  # attribute access on a number is refused at evaluation, dunder at lint
    "f'{age}'",
    "(y := 1)",
    "eval('1')",
    "sum(x for x in items for y in items)",
    "_secret",
    "unknown_field > 1",
    "items[1:2]",
    "max(*items)",
])
def test_expression_refuses_unsafe_input(source):
    if source == "age.real":
        fn = compile_expr(source, {"age"})
        with pytest.raises(UnsafeExpression):
            fn({"age": 3})
        return
    with pytest.raises(UnsafeExpression):
        compile_expr(source, {"age", "items", "sex"})


def test_expression_evaluates_allowed_constructs():
    env = {"age": 70, "sex": "2", "items": [{"code": "A", "days": 10}, {"code": "B", "days": 3}], "los": None}
    names = set(env)
    assert compile_expr("age >= 65 and sex in ['1', '2']", names)(env) is True
    assert compile_expr("any(i.days > 7 for i in items)", names)(env) is True
    assert compile_expr("sum([i.days for i in items if i.code != 'A']) == 3", names)(env) is True
    assert compile_expr("len(items) * 2 - 1 if age > 1 else 0", names)(env) == 3
    assert compile_expr("los is not None and los <= 1", names)(env) is False
    assert compile_expr("los > 3", names)(env) is False  # None never compares as a number


def test_cli_lint_test_list_and_explain(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["rules", "lint"]).exit_code == 0
    res = runner.invoke(app, ["rules", "test"])
    assert res.exit_code == 0 and "all passed" in res.output
    res = runner.invoke(app, ["rules", "list"])
    assert res.exit_code == 0 and "NH-A01" in res.output and "total" in res.output
    assert "readmission" in runner.invoke(app, ["rules", "templates"]).output
    # a broken copy of the packs: lint and test exit 1
    bad = tmp_path / "packs"
    shutil.copytree(PACKS_DIR, bad)
    pack = yaml.safe_load((bad / "internet.yaml").read_text())
    pack["rules"][0]["cases"]["pass"][0]["set"]["encounter.fst_visit_flag"] = True  # now it fires
    pack["rules"][1]["params"] = {"codes": ["XYZ"]}
    (bad / "internet.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True))
    assert runner.invoke(app, ["rules", "lint", "--packs", str(bad)]).exit_code == 1
    pack["rules"][1].pop("params")
    (bad / "internet.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True))
    res = runner.invoke(app, ["rules", "test", "--packs", str(bad)])
    assert res.exit_code == 1 and "IH-001" in res.output
    # explain one rule on one record
    import json

    from yijian.rules.cases import set_path
    from yijian.rules.model import load_fixture

    rec = load_fixture()[1]["charge"]
    set_path(rec, "med_list_codg", "XL02BBD161A110110932127")
    set_path(rec, "patient.sex", "2")
    (tmp_path / "rec.json").write_text(json.dumps(rec, ensure_ascii=False))
    res = runner.invoke(app, ["rules", "explain", "NH-A01", str(tmp_path / "rec.json")])
    assert res.exit_code == 0 and "触发 / fired" in res.output and "✓" in res.output
    res = runner.invoke(app, ["rules", "explain", "NH-A02", str(tmp_path / "rec.json")])
    assert res.exit_code == 0 and "未触发" in res.output and "✗" in res.output
