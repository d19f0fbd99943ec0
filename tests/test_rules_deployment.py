"""Rule packs on the compacted rules topic: deploy, redeploy a new version, roll back, undeploy."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from yijian.rules.deployment import publish, read_deployed, rollback, undeploy
from yijian.rules.model import PACKS_DIR, load_pack


def test_deploy_new_version_rollback_and_undeploy(settings):
    v1 = load_pack(PACKS_DIR / "internet.yaml")
    v2 = v1.model_copy(update={"version": "2099.1", "rules": v1.rules[:1]})
    publish(settings, v1)
    publish(settings, v2)
    state = read_deployed(settings)
    assert state.in_force["internet"].version == "2099.1" and len(state.in_force["internet"].rules) == 1
    assert set(state.archive["internet"]) == {str(v1.version), "2099.1"}

    restored = rollback(settings, "internet")
    assert restored.version == v1.version
    assert read_deployed(settings).in_force["internet"].version == v1.version
    with pytest.raises(LookupError, match="没有更早的版本|no earlier version"):
        rollback(settings, "internet")
    assert rollback(settings, "internet", to_version="2099.1").version == "2099.1"
    with pytest.raises(LookupError, match="从未部署|never deployed"):
        rollback(settings, "no-such-pack")

    undeploy(settings, "internet")
    state = read_deployed(settings)
    assert "internet" not in state.in_force and "2099.1" in state.archive["internet"]


def test_deploy_command_refuses_a_pack_whose_cases_fail(settings, tmp_path, monkeypatch):
    from yijian import config
    from yijian.cli import app

    for name, value in {"YIJIAN_TOPIC_PREFIX": settings.topic_prefix, "YIJIAN_HOME": str(settings.home), "YIJIAN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    broken = tmp_path / "broken.yaml"
    text = (PACKS_DIR / "internet.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("fire:", "pass_tmp:").replace("pass:", "fire:").replace("pass_tmp:", "pass:"), encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "deploy", str(broken)])
    assert result.exit_code == 1, result.output
    assert read_deployed(settings).in_force == {}
    result = CliRunner().invoke(app, ["rules", "deploy", str(PACKS_DIR / "internet.yaml")])
    assert result.exit_code == 0, result.output
    assert "internet" in read_deployed(settings).in_force
    config.get_settings.cache_clear()
