"""The local stack against the real broker and the real embedded ClickHouse."""

import os
import socket
import subprocess
from pathlib import Path

from rich.console import Console

from yijian.deploy import stack
from yijian.deploy.selfcheck import run_selfcheck
from yijian.topics import topic_names

REPO = Path(__file__).resolve().parents[1]


def test_up_creates_every_topic_once_and_is_harmless_twice(settings):
    # the fixture already ran ensure_topics; a second `up` creates nothing
    assert stack.up(settings) == []
    st = stack.status(settings)
    assert st.broker_answers
    mine = {t for t in st.topics if t.startswith(settings.topic_prefix)}
    assert mine == {settings.topic(n) for n in topic_names()}
    assert st.topics[settings.topic("rules")] == 1
    assert st.topics[settings.topic("raw.encounter")] == settings.topic_partitions


def test_compacted_topics_are_compacted(settings):
    from confluent_kafka.admin import ConfigResource

    from yijian.kafka import admin

    client = admin(settings)
    res = ConfigResource(ConfigResource.Type.TOPIC, settings.topic("refdata"))
    conf = client.describe_configs([res])[res].result()
    assert conf["cleanup.policy"].value == "compact"
    res = ConfigResource(ConfigResource.Type.TOPIC, settings.topic("raw.charge"))
    assert client.describe_configs([res])[res].result()["cleanup.policy"].value == "delete"


def test_selfcheck_round_trip_through_kafka_and_clickhouse(settings):
    result = run_selfcheck(settings, Console(quiet=True), n=7)
    assert result["kafka"] == 7 and result["clickhouse"] == 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kafka_script_start_twice_status_stop_leaves_no_process(tmp_path):
    """A second broker on its own port and data folder (jars from the shared cache)."""
    port = _free_port()
    env = {
        **os.environ,
        "YIJIAN_HOME": str(tmp_path),
        "YIJIAN_KAFKA_PORT": str(port),
        "YIJIAN_KAFKA_CACHE": os.environ.get("YIJIAN_KAFKA_CACHE", str(REPO / "var" / "cache" / "kafka")),
    }
    script = str(REPO / "deploy" / "kafka.sh")

    def run(cmd):
        return subprocess.run(["bash", script, cmd], env=env, capture_output=True, text=True, timeout=120)

    try:
        first = run("start")
        assert first.returncode == 0, first.stderr
        assert "formatting storage" in first.stderr
        pid = int((tmp_path / "data" / "kafka" / "broker.pid").read_text())
        second = run("start")
        assert second.returncode == 0 and "already running" in second.stderr
        st = run("status")
        assert st.returncode == 0 and f"pid={pid}" in st.stdout
    finally:
        stop = run("stop")
    assert stop.returncode == 0
    assert not Path(f"/proc/{pid}").exists()
    assert run("status").returncode == 3
    # data survives down/up: storage is not formatted again
    again = run("start")
    try:
        assert again.returncode == 0 and "formatting storage" not in again.stderr
    finally:
        run("stop")
