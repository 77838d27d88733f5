"""Helpers for the broker tests: a produce-then-consume round trip through a consumer group."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


def unique(prefix: str) -> str:
    """A topic or group name no other test uses (Tansu needs a fresh group id per test)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def produce(
    bootstrap_servers: str,
    topic: str,
    records: list[tuple[bytes, bytes]],
    overrides: dict[str, Any],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", **overrides)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def consume(
    bootstrap_servers: str,
    topic: str,
    group: str,
    count: int,
    timeout: float = 60.0,
    **consumer_options: Any,
) -> tuple[list[tuple[bytes, bytes]], dict[int, int], dict[int, int]]:
    """count records read from the start by a consumer group, which then commits.

    Returns the records, the committed offset and the end offset of each partition.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **consumer_options,
    )
    await consumer.start()
    try:
        got: list[tuple[bytes, bytes]] = []

        async def read_all() -> None:
            while len(got) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    got.extend((m.key, m.value) for m in messages if m.key and m.value)

        await asyncio.wait_for(read_all(), timeout)
        await consumer.commit()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        committed = {tp.partition: await consumer.committed(tp) or 0 for tp in partitions}
        ends = await consumer.end_offsets(partitions)
        return got, committed, {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


def records(count: int) -> list[tuple[bytes, bytes]]:
    return [(f"patient-{i}".encode(), f'{{"event": {i}}}'.encode()) for i in range(count)]
