"""Kafka plumbing shared by every part: admin (topics), producer and consumer factories."""

from __future__ import annotations

import socket
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from yijian.config import Settings
from yijian.topics import TOPICS, TopicSpec


def broker_answers(settings: Settings, timeout: float = 1.0) -> bool:
    """True if the first bootstrap server accepts a TCP connection (cheap liveness probe)."""
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def admin(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka_client_config())


def wait_for_broker(settings: Settings, timeout: float = 60.0) -> dict[str, int]:
    """Wait until the cluster serves metadata; returns {topic: partitions} of existing topics."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    client = admin(settings)
    while time.monotonic() < deadline:
        try:
            md = client.list_topics(timeout=5)
            if md.brokers:
                return {name: len(t.partitions) for name, t in md.topics.items()}
        except KafkaException as exc:  # broker still starting
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"Kafka at {settings.kafka_bootstrap} did not serve metadata within {timeout:.0f} s: {last}")


def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = TOPICS) -> list[str]:
    """Create the platform's topics that do not exist yet (idempotent). Returns the names created."""
    existing = wait_for_broker(settings)
    wanted = [
        NewTopic(
            settings.topic(s.name),
            num_partitions=s.partitions or settings.topic_partitions,
            replication_factor=settings.topic_replication,
            config=s.kafka_config(),
        )
        for s in specs
        if settings.topic(s.name) not in existing
    ]
    if not wanted:
        return []
    created = []
    client = admin(settings)  # keep a reference: the futures fail if the client is collected
    for name, fut in client.create_topics(wanted, operation_timeout=30).items():
        try:
            fut.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS: a concurrent creator won
                raise
    # metadata propagates asynchronously; wait until every new topic is visible with its leaders
    deadline = time.monotonic() + 30
    while created and time.monotonic() < deadline:
        md = client.list_topics(timeout=5)
        if all(n in md.topics and not md.topics[n].error for n in created):
            break
        time.sleep(0.1)
    return created


def delete_topics_with_prefix(settings: Settings, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (tests clean up their own prefix)."""
    client = admin(settings)
    names = [n for n in client.list_topics(timeout=10).topics if n.startswith(prefix)]
    if names:
        for fut in client.delete_topics(names, operation_timeout=30).values():
            try:
                fut.result()
            except KafkaException:
                pass
        deadline = time.monotonic() + 30  # deletion completes asynchronously on the broker
        while time.monotonic() < deadline and set(names) & set(client.list_topics(timeout=10).topics):
            time.sleep(0.2)
    return len(names)


def delete_groups(settings: Settings, groups: list[str]) -> None:
    """Forget consumer groups (their committed offsets); missing groups are fine."""
    client = admin(settings)
    for fut in client.delete_consumer_groups(groups, request_timeout=30).values():
        try:
            fut.result()
        except KafkaException:
            pass


def producer(settings: Settings, **overrides: object) -> Producer:
    """An idempotent, acks=all producer; ``overrides`` are librdkafka settings."""
    conf: dict[str, object] = {
        **settings.kafka_client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # same partition for a key as Java and aiokafka (Faust) clients: co-partitioned topics
        "partitioner": "murmur2_random",
    }
    conf.update(overrides)
    return Producer(conf)


def consumer(settings: Settings, group_id: str, **overrides: object) -> Consumer:
    """A consumer that commits only what the caller stored (at-least-once)."""
    conf: dict[str, object] = {
        **settings.kafka_client_config(),
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "session.timeout.ms": 6000,
    }
    conf.update(overrides)
    return Consumer(conf)


def group_lag(settings: Settings, group_id: str, topics: list[str]) -> int:
    """Messages not yet committed by a consumer group on ``topics`` (full names), summed over partitions."""
    from confluent_kafka import TopicPartition

    c = consumer(settings, group_id=group_id, **{"enable.auto.commit": False})
    try:
        tps = []
        for t in topics:
            md = c.list_topics(t, timeout=10).topics.get(t)
            tps += [TopicPartition(t, p) for p in (md.partitions if md else {})]
        committed = c.committed(tps, timeout=10)
        lag = 0
        for tp in committed:
            lo, hi = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            lag += hi - (tp.offset if tp.offset >= 0 else lo)
        return lag
    finally:
        c.close()


def read_to_end(settings: Settings, topic: str, on_message, timeout: float = 30.0) -> None:
    """Call ``on_message(msg)`` for every message of ``topic`` (full name) from the beginning to its
    end as of now (compacted state topics: rules, refdata, keys; the rejected log)."""
    from confluent_kafka import TopicPartition

    c = consumer(settings, group_id=f"reader-{time.time_ns()}", **{"enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        ends = {}
        for p in md.partitions if md else {}:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi > lo:
                ends[p] = hi
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for msg in c.consume(500, timeout=0.5):
                if msg.error():
                    continue
                on_message(msg)
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
        if ends:
            raise TimeoutError(f"{topic}: not read to its end within {timeout:.0f} s")
    finally:
        c.close()
