"""Shared fixtures: the real local Kafka broker (started once per session, or reused) and the real
embedded ClickHouse engine (one data path per pytest process), with per-test isolation.

Each test that asks for ``settings`` gets its own topic prefix and ClickHouse database; both are
removed afterwards. Nothing here is mocked.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from yijian.config import Settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> str:
    """Bootstrap address of a running broker: reuse one that answers, else start deploy/kafka.sh."""
    from yijian.deploy import stack
    from yijian.kafka import broker_answers, wait_for_broker

    base = Settings(home=Path(os.environ.get("YIJIAN_HOME", REPO / "var")))
    started_here = False
    if not broker_answers(base):
        stack.up(base, create_topics=False)
        started_here = True
    wait_for_broker(base)
    yield base.kafka_bootstrap
    if started_here and not os.environ.get("YIJIAN_KEEP_BROKER"):
        stack.down(base)


@pytest.fixture(scope="session")
def clickhouse_path(tmp_path_factory) -> Path:
    """One embedded ClickHouse data path for this pytest process (the engine allows one per process)."""
    return tmp_path_factory.mktemp("clickhouse")


@pytest.fixture
def settings(broker, clickhouse_path, tmp_path) -> Settings:
    """Settings isolated for one test: own topic prefix, own ClickHouse database, own home folder."""
    from yijian.kafka import delete_topics_with_prefix, ensure_topics

    tag = uuid.uuid4().hex[:10]
    s = Settings(
        home=tmp_path / "home",
        kafka_bootstrap=broker,
        topic_prefix=f"t{tag}.",
        topic_partitions=2,
        clickhouse_dsn=f"chdb://{clickhouse_path}",
        clickhouse_database=f"t_{tag}",
    )
    ensure_topics(s)
    yield s
    delete_topics_with_prefix(s, s.topic_prefix)
    try:
        from yijian.sinks.client import make_client

        make_client(s, create=False).command(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
    except Exception:  # the database may never have been created
        pass
