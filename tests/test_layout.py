"""The package layout of the design card and the light SDK install."""

import importlib
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_stage_folders_import_under_the_yijian_namespace():
    for stage in ("producers", "processors", "sinks", "rules", "schemas", "deploy"):
        mod = importlib.import_module(f"yijian.{stage}")
        assert Path(mod.__file__).resolve().parent == REPO / stage


def test_base_install_is_the_sdk_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    for heavy in ("faust", "chdb", "clickhouse-connect", "aiokafka"):
        assert heavy not in base
    platform = " ".join(project["optional-dependencies"]["platform"])
    assert "faust-streaming" in platform and "chdb" in platform and "clickhouse-connect==1.12" in platform
    for dep in project["dependencies"] + project["optional-dependencies"]["platform"]:
        assert "==" in dep or "~=" in dep, f"unpinned dependency {dep}"
