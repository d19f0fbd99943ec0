from pathlib import Path

from yijian.config import Settings


def test_env_vars_override_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("YIJIAN_KAFKA_BOOTSTRAP", "k1:9093,k2:9093")
    monkeypatch.setenv("YIJIAN_TOPIC_PREFIX", "gz.")
    monkeypatch.setenv("YIJIAN_HOME", str(tmp_path))
    s = Settings()
    assert s.kafka_bootstrap == "k1:9093,k2:9093"
    assert s.topic("raw.encounter") == "gz.raw.encounter"
    assert s.clickhouse_dsn == f"chdb://{tmp_path.resolve() / 'data' / 'clickhouse'}"


def test_env_file_is_read(monkeypatch, tmp_path):
    env = tmp_path / "site.env"
    env.write_text("YIJIAN_CLICKHOUSE_DSN=https://ch.example:8443\nYIJIAN_CLICKHOUSE_DATABASE=gz\n")
    s = Settings(_env_file=env)
    assert s.clickhouse_dsn == "https://ch.example:8443"
    assert not s.is_embedded_clickhouse
    assert s.clickhouse_database == "gz"


def test_relative_home_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings(home=Path("state"))
    assert s.home == tmp_path.resolve() / "state"


def test_sasl_settings_reach_librdkafka_but_password_is_never_printed():
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="hospital-h52010100001",
        kafka_sasl_password="s3cr3t-pass",
    )
    conf = s.kafka_client_config()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == "s3cr3t-pass"
    assert "s3cr3t-pass" not in repr(s)
    assert "s3cr3t-pass" not in str(s.model_dump())
