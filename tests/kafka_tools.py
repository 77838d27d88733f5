"""Kafka for tests, in one place: the session's broker, per-test names and topics, workers,
producing, consuming and reading dead letters back. A pytest plugin (tests/conftest.py).

The broker is `start_broker(kind)` with kind from $SUNES_BROKER, "auto" by default:
$KAFKA_BOOTSTRAP_SERVERS if set, else real Apache Kafka from the Maven jars
(`scripts/fetch-kafka-jars.sh`, run by `make test`). Tests share it but never a topic or a
consumer group: each test takes its own pipeline topics (`kafka_topics`, behind a prefix of
its own, as `sunes worker --topic-prefix` reads them) and its own app id or group
(`unique_kafka_name`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from streams.brokers import KIND_ENV, Broker, start_broker
from streams.brokers.apache_kafka import ApacheKafkaBroker
from streams.testing import WorkerProcess, publish
from streams.worker.deadletter import describe
from topics.names import TopicNames

__all__ = [
    "Message",
    "WorkerProcess",
    "consume",
    "create_topic",
    "per_partition",
    "produce",
    "publish",
    "publish_on",
    "read_deadletters",
    "read_topics",
    "records",
    "unique",
]

Message = tuple[str, bytes | None, bytes]  # (contract topic name, key, value)


def unique(prefix: str) -> str:
    """A topic, group or app id no other test uses (Tansu needs a fresh group per test)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """A running Kafka broker, started once per session and stopped at its end."""
    broker = start_broker(os.environ.get(KIND_ENV, "").strip() or "auto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(kafka_broker: Broker) -> str:
    """The session broker's address, "127.0.0.1:PORT"."""
    return kafka_broker.bootstrap_servers


@pytest.fixture
def own_kafka_broker() -> Iterator[ApacheKafkaBroker]:
    """A broker of this test only, to freeze, kill or restart: doing that to the session's
    would stall every other test."""
    broker = ApacheKafkaBroker()
    broker.start()
    try:
        yield broker
    finally:
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)  # if the test left it frozen
        broker.stop()


@pytest.fixture
def unique_kafka_name() -> Callable[[str], str]:
    """unique_kafka_name("admissions") -> "admissions-1a2b3c4d5e": per-test topics and groups."""
    return unique


@pytest.fixture
def kafka_topic_prefix() -> str:
    """This test's --topic-prefix: a prefix no other test uses."""
    return unique("t") + "."


@pytest.fixture
def kafka_topics(kafka_topic_prefix: str) -> TopicNames:
    """This test's own pipeline topics: the contract's names behind its prefix."""
    return TopicNames.prefixed(kafka_topic_prefix)


@pytest.fixture
def workers(
    tmp_path: Path, kafka_bootstrap_servers: str, kafka_topic_prefix: str
) -> Iterator[Callable[..., WorkerProcess]]:
    """start(app_id, data_dir=None): a `sunes worker` on this test's topics, stopped at the end."""
    started: list[WorkerProcess] = []
    prefix = kafka_topic_prefix

    def start(app_id: str, data_dir: Path | None = None, *extra: str) -> WorkerProcess:
        worker = WorkerProcess(
            kafka_bootstrap_servers, app_id, tmp_path, "--topic-prefix", prefix, *extra,
            data_dir=data_dir,
        )  # fmt: skip
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker_on(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """start(brokers, app_id, *flags, data_dir=None): a `sunes worker` on any broker (a
    test's own), stopped at the end, even when its start failed."""
    started: list[WorkerProcess] = []

    def start(
        brokers: str, app_id: str, *extra: str, data_dir: Path | None = None
    ) -> WorkerProcess:
        worker = WorkerProcess(brokers, app_id, tmp_path, *extra, data_dir=data_dir)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


# --- producing and consuming --------------------------------------------------------------


def publish_on(
    brokers: str, topics: TopicNames, messages: Iterable[Message], **overrides: Any
) -> int:
    """Publish messages named by contract topic onto `topics` (a test's own); how many."""
    return publish(brokers, ((topics.named(t), k, v) for t, k, v in messages), **overrides)


async def produce(
    bootstrap_servers: str,
    topic: str,
    records: list[tuple[bytes, bytes]],
    overrides: dict[str, Any],
) -> None:
    """`publish` for a test already in an event loop: each record acknowledged (acks=all)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", **overrides)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def create_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


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


async def read_partition(bootstrap_servers: str, tp: TopicPartition, count: int) -> list[Any]:
    """The first `count` records of one partition (tombstones included), by a consumer with
    no group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[Any] = []
        while len(records) < count:
            for messages in (await consumer.getmany(tp, timeout_ms=1000)).values():
                records.extend(messages)
        return records
    finally:
        await consumer.stop()


async def read_topics(
    bootstrap_servers: str, topics: Iterable[str], **client_options: Any
) -> list[tuple[str, bytes | None, bytes | None]]:
    """Every message of `topics` that exist, from the beginning to the end offsets as they
    were when asked (no consumer group): (topic, key, value) in partition order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **client_options
    )
    await consumer.start()
    try:
        present = await consumer.topics()
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in present
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        messages: list[tuple[str, bytes | None, bytes | None]] = []
        if not partitions:
            return messages
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, batch in batches.items():
                messages += [(tp.topic, r.key, r.value) for r in batch]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return messages
    finally:
        await consumer.stop()


def per_partition(worker: WorkerProcess, sample: str) -> dict[str, float]:
    """A worker's /metrics samples named `sample`, by "topic/partition"."""
    text = worker.get("/metrics").decode()
    return {
        f"{s.labels['topic']}/{s.labels['partition']}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample
    }


def records(count: int) -> list[tuple[bytes, bytes]]:
    """count (key, value) records for a round trip."""
    return [(f"patient-{i}".encode(), f'{{"event": {i}}}'.encode()) for i in range(count)]


def read_deadletters(
    brokers: str,
    topic: str,
    wanted: Callable[[bytes], bool],
    count: int,
    seconds: float = 60,
) -> list[tuple[bytes, dict[str, str]]]:
    """The first `count` dead letters of `topic` whose value `wanted` accepts: (value,
    sunes-* headers)."""

    async def run() -> list[tuple[bytes, dict[str, str]]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=brokers, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        found: list[tuple[bytes, dict[str, str]]] = []
        deadline = time.monotonic() + seconds
        try:
            while len(found) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    for record in batch:
                        if record.value is not None and wanted(record.value):
                            found.append((record.value, describe(list(record.headers))))
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())
