"""`yijian check --rules`: a hospital runs the platform's checks and rule packs before submitting (事前)."""

from typer.testing import CliRunner

from yijian.cli import app
from yijian.producers.examples import recent_encounter as encounter, identity as patient, recent_prescription as prescription


def test_check_with_rules_reports_rule_findings_and_platform_quality_codes(tmp_path, monkeypatch):
    monkeypatch.setenv("YIJIAN_HOME", str(tmp_path / "home"))
    from yijian import config

    config.get_settings.cache_clear()
    rx = prescription(1)
    six = rx.model_copy(update={"record_id": "RX6", "items": [rx.items[0].model_copy(update={"item_no": i}) for i in range(1, 7)]})
    path = tmp_path / "rx.jsonl"
    path.write_text("\n".join(r.model_dump_json() for r in (rx, six)) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(path), "--type", "prescription", "--rules"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "RX-003" in result.output and "每张处方超过5种药品" in result.output
    assert "rows with problems 1" in result.output  # the clean prescription has none

    enc = tmp_path / "enc.jsonl"
    enc.write_text(encounter(1, patient=patient(gend="1")).model_dump_json() + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(enc), "--type", "encounter", "--rules"], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "patient.gend" in result.output  # the platform's own sex-vs-ID check
    config.get_settings.cache_clear()
