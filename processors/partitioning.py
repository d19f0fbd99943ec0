"""Which partition a key lands on: Kafka's murmur2 partitioner, as Java clients, aiokafka (Faust) and
the SDK (librdkafka ``murmur2_random``) compute it, so co-partitioned topics line up."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
