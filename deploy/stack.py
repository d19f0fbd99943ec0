"""The local stack: one Kafka broker (deploy/kafka.sh) and the embedded ClickHouse data folder.

``yijian stack up`` starts the broker (a second ``up`` is harmless), creates the platform's topics and
the ClickHouse database; ``status`` reports; ``down`` stops the broker and leaves no process behind.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from yijian.config import Settings

KAFKA_SCRIPT = Path(__file__).with_name("kafka.sh")


def _script_env(settings: Settings) -> dict[str, str]:
    port = settings.kafka_bootstrap.split(",")[0].rpartition(":")[2]
    return {**os.environ, "YIJIAN_HOME": str(settings.home), "YIJIAN_KAFKA_PORT": port}


def _is_local(settings: Settings) -> bool:
    host = settings.kafka_bootstrap.split(",")[0].rpartition(":")[0]
    return host in ("127.0.0.1", "localhost", "::1", "")


def kafka_script(settings: Settings, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(KAFKA_SCRIPT), command], env=_script_env(settings), text=True, capture_output=True
    )


@dataclass
class StackStatus:
    broker_answers: bool
    broker_pid: int | None
    bootstrap: str
    topics: dict[str, int]
    kafka_data: Path
    kafka_cache: Path
    clickhouse_dsn: str
    clickhouse_database: str


def up(settings: Settings, create_topics: bool = True) -> list[str]:
    """Start what is local and not running; create missing topics and the ClickHouse database.

    Returns the topics created. A broker that already answers on the configured address is reused.
    """
    from yijian.kafka import broker_answers, ensure_topics

    if not broker_answers(settings):
        if not _is_local(settings):
            raise RuntimeError(f"Kafka at {settings.kafka_bootstrap} does not answer (not a local address: not started here)")
        res = kafka_script(settings, "start")
        if res.returncode != 0:
            raise RuntimeError(f"starting the local Kafka broker failed:\n{res.stderr.strip()}")
    created = ensure_topics(settings) if create_topics else []
    if settings.is_embedded_clickhouse:
        from yijian.sinks.client import make_client

        make_client(settings).close()
    return created


def status(settings: Settings) -> StackStatus:
    from yijian.kafka import broker_answers, wait_for_broker

    answers = broker_answers(settings)
    topics: dict[str, int] = {}
    if answers:
        try:
            topics = {n: p for n, p in wait_for_broker(settings, timeout=10).items() if not n.startswith("__")}
        except TimeoutError:
            answers = False
    pidfile = settings.home / "data" / "kafka" / "broker.pid"
    pid = None
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            pid = None
    return StackStatus(
        broker_answers=answers,
        broker_pid=pid,
        bootstrap=settings.kafka_bootstrap,
        topics=topics,
        kafka_data=settings.home / "data" / "kafka",
        kafka_cache=settings.home / "cache" / "kafka",
        clickhouse_dsn=str(settings.clickhouse_dsn),
        clickhouse_database=settings.clickhouse_database,
    )


def down(settings: Settings) -> str:
    res = kafka_script(settings, "stop")
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip())
    return res.stderr.strip()


def reset(settings: Settings) -> int:
    """Empty the local stack for this topic prefix: topics, consumer groups, ClickHouse database and
    the processors' local state. For the demo and development only; returns the topics removed."""
    import shutil

    from yijian.kafka import broker_answers, delete_groups, delete_topics_with_prefix

    removed = 0
    if broker_answers(settings):
        removed = delete_topics_with_prefix(settings, settings.topic_prefix)
        delete_groups(settings, [settings.processor_app_id, settings.sink_group_id])
    if settings.is_embedded_clickhouse:
        from yijian.sinks.client import make_client

        client = make_client(settings, create=False)
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database} SYNC")
        client.close()
    shutil.rmtree(settings.processor_data_dir, ignore_errors=True)
    return removed
