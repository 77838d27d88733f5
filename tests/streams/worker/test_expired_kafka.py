"""A broker whose default retention is seconds (a week's outage in miniature).

On the topics the product creates, nothing expires: a worker stopped while events are
published and the broker's retention passes resumes exact, and a fresh app id rebuilds
exact from the input topics. On topics created beforehand with a short retention, the worker
warns at start (with the kafka-configs command, which the test then runs as given), and the
records that expired before either stage applied them are reported, counted as Kafka's own
offsets show them: log line, counter, /health `degraded`.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.brokers.apache_kafka import (
    TOOL_JVM_OPTIONS,
    ApacheKafkaBroker,
    default_jars_dir,
    find_java,
)
from streams.testing import WorkerProcess, publish
from streams.topic_configs import horizon_retention_ms
from tests.kafka_tools import per_partition
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows
from topics.names import TopicNames

pytestmark = pytest.mark.kafka

RETENTION_MS = 2000
TOPIC_RETENTION_MS = 6000
# Records older than 2 s deleted within a second or two, the active segment included; the
# log manager's first pass after 0.5 s rather than 30 s.
SHORT_RETENTION = {
    "log.retention.ms": str(RETENTION_MS),
    "log.retention.check.interval.ms": "1000",
    "log.roll.ms": "1000",
    "log.initial.task.delay.ms": "500",
}


@pytest.fixture(scope="module")
def short_broker() -> Iterator[ApacheKafkaBroker]:
    """A broker of these tests only: its retention would empty the session's topics."""
    broker = ApacheKafkaBroker(extra_properties=SHORT_RETENTION)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def on_topics(
    messages: list[tuple[str, bytes | None, bytes]], topics: TopicNames
) -> list[tuple[str, bytes | None, bytes]]:
    return [(topics.named(t), k, v) for t, k, v in messages]


INTERNAL_PARTITIONS = 4  # WorkerProcess's --partitions


def input_partitions(topics: TopicNames) -> list[TopicPartition]:
    return [TopicPartition(s.name, p) for s in topics.input_specs() for p in range(s.partitions)]


def internal_partitions(app_id: str) -> list[TopicPartition]:
    return [TopicPartition(f"{app_id}-events-by-finess", p) for p in range(INTERNAL_PARTITIONS)]


async def _offsets(brokers: str, tps: list[TopicPartition], end: bool) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers)
    await consumer.start()
    try:
        if end:
            return dict(await consumer.end_offsets(tps))
        return dict(await consumer.beginning_offsets(tps))
    finally:
        await consumer.stop()


async def produce_to(brokers: str, tps: list[TopicPartition], count: int) -> None:
    """`count` records on each of these partitions."""
    producer = AIOKafkaProducer(bootstrap_servers=brokers)
    await producer.start()
    try:
        for tp in tps:
            for _ in range(count):
                await producer.send_and_wait(tp.topic, b"{}", partition=tp.partition)
    finally:
        await producer.stop()


def log_starts(brokers: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    return asyncio.run(_offsets(brokers, tps, end=False))


def log_ends(brokers: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    return asyncio.run(_offsets(brokers, tps, end=True))


async def _admin(brokers: str, action: str, *args: object) -> object:
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        return await getattr(admin, action)(*args)
    finally:
        await admin.close()


def committed(brokers: str, group: str) -> dict[TopicPartition, int]:
    offsets = asyncio.run(_admin(brokers, "list_consumer_group_offsets", group))
    assert isinstance(offsets, dict)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def wait_expired(
    brokers: str, tps: list[TopicPartition], minimum: int, seconds: float = 60
) -> None:
    """Until these partitions start past `minimum` records in all: the retention passed."""
    deadline = time.monotonic() + seconds
    while sum(log_starts(brokers, tps).values()) < minimum:
        assert time.monotonic() < deadline, f"{tps}: {minimum} records not expired"
        time.sleep(0.5)


def run_kafka_configs(command: str) -> None:
    """A `kafka-configs.sh …` command line, run with the broker's jars."""
    program, *args = shlex.split(command)
    assert program == "kafka-configs.sh"
    jars = default_jars_dir() / "*"
    result = subprocess.run(
        [find_java(), *TOOL_JVM_OPTIONS, "-cp", str(jars), "kafka.admin.ConfigCommand", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"


def expired_counter(worker: WorkerProcess) -> dict[str, float]:
    return per_partition(worker, "sunes_records_expired_total")


def test_nothing_expires_on_the_topics_the_product_creates(
    short_broker: ApacheKafkaBroker, worker_on: Callable[..., WorkerProcess]
) -> None:
    brokers = short_broker.bootstrap_servers
    topics = TopicNames.prefixed(f"r{uuid.uuid4().hex[:6]}.")
    control = f"{topics.stays}.broker-default"  # created with the broker's default retention
    asyncio.run(_admin(brokers, "create_topics", [NewTopic(control, 1, 1)]))
    messages, finess = dataset(seed=23, establishments=2, days=12)
    expected = reference(messages, finess)
    half, more = len(messages) // 2, len(messages) * 9 // 10
    app_id = f"keep-{uuid.uuid4().hex[:6]}"
    prefix = ("--topic-prefix", topics.stays.removesuffix("sunes.stays.v1"))
    worker = worker_on(brokers, app_id, *prefix)
    publish(brokers, on_topics(messages[:half], topics))
    wait_for_rows([worker], finess, reference(messages[:half], finess))
    worker.stop()

    publish(brokers, on_topics(messages[half:more], topics))
    publish(brokers, [(control, b"k", b"v")] * 50)
    # The broker's retention passed: its default would have deleted these records.
    wait_expired(brokers, [TopicPartition(control, 0)], 50)
    publish(brokers, on_topics(messages[more:], topics))
    assert all(start == 0 for start in log_starts(brokers, input_partitions(topics)).values())

    resumed = worker_on(brokers, app_id, *prefix, data_dir=worker.data_dir)
    fresh = worker_on(brokers, f"fresh-{uuid.uuid4().hex[:6]}", *prefix)
    wait_for_rows([resumed], finess, expected, seconds=180)
    wait_for_rows([fresh], finess, expected, seconds=180)
    for each in (resumed, fresh):
        health = each.get("/health")
        assert health["status"] == "ok", health
        assert health["expired_records"] == {}
        assert health["expired_before_first_read"] == {}
        assert "kafka-configs.sh" not in each.log_path.read_text()
    # The settings Kafka's own tools read: the horizon, not the broker's 2 s.
    resources = [ConfigResource(ConfigResourceType.TOPIC, topics.stays)]
    described = asyncio.run(_admin(brokers, "describe_configs", resources))
    entries = {e[0]: e[1] for r in described for res in r.resources for e in res[4]}  # type: ignore[attr-defined]
    assert entries["retention.ms"] == str(horizon_retention_ms())
    assert entries["cleanup.policy"] == "delete"


def test_short_retention_warned_at_start_and_expired_records_reported(
    short_broker: ApacheKafkaBroker, worker_on: Callable[..., WorkerProcess]
) -> None:
    brokers = short_broker.bootstrap_servers
    topics = TopicNames.prefixed(f"s{uuid.uuid4().hex[:6]}.")
    # Created beforehand, as an operator might, with a short retention (a few seconds more
    # than the broker's, so that the running worker reads every record before it expires).
    # The internal topic too: the establishment stage's check.
    app_id = f"short-{uuid.uuid4().hex[:6]}"
    internal = internal_partitions(app_id)
    short = {"retention.ms": str(TOPIC_RETENTION_MS)}
    created = [NewTopic(s.name, s.partitions, 1, topic_configs=short) for s in topics.input_specs()]
    created.append(NewTopic(internal[0].topic, len(internal), 1, topic_configs=short))
    asyncio.run(_admin(brokers, "create_topics", created))
    messages, finess = dataset(seed=29, establishments=2, days=8)
    half = len(messages) // 2
    prefix = ("--topic-prefix", topics.stays.removesuffix("sunes.stays.v1"))
    worker = worker_on(brokers, app_id, *prefix)
    startup = worker.log_path.read_text()
    fix = (
        f"Fix: kafka-configs.sh --bootstrap-server {brokers} --alter --entity-type topics "
        f"--entity-name {topics.stays} --add-config retention.ms={horizon_retention_ms()}"
    )
    assert "WARNING" in startup and fix in startup, startup
    assert f"topic {topics.stays} has retention.ms={TOPIC_RETENTION_MS}" in startup
    publish(brokers, on_topics(messages[:half], topics))
    wait_for_rows([worker], finess, reference(messages[:half], finess))
    worker.stop()

    group = f"{app_id}-ingest"
    applied = {**committed(brokers, group), **committed(brokers, app_id)}
    assert any(tp in applied for tp in internal)
    publish(brokers, on_topics(messages[half:], topics))
    # Records on the internal topic the stopped worker never applied (the values do not
    # matter: they expire before it comes back).
    asyncio.run(produce_to(brokers, internal, 3))
    stays = [tp for tp in input_partitions(topics) if tp.topic == topics.stays]
    stays_applied = sum(o for tp, o in applied.items() if tp.topic == topics.stays)
    stays_sent = sum(1 for t, _, _ in messages if topics.named(t) == topics.stays)
    wait_expired(brokers, stays, stays_sent)  # all of them, this time
    wait_expired(brokers, internal, sum(log_ends(brokers, internal).values()))
    # The fixes the start warnings gave, run as given (Kafka's own ConfigCommand): the
    # topics then keep what is there now, and the counts below are exact.
    fixes = re.findall(r"Fix: (kafka-configs\.sh .*)$", startup, re.M)
    assert len(fixes) == 5, fixes  # three event topics, the registry, the internal topic
    for fix_command in fixes:
        run_kafka_configs(fix_command)
    starts = log_starts(brokers, input_partitions(topics) + internal)
    holes = {
        f"{tp.topic}/{tp.partition}": start - applied[tp]
        for tp, start in starts.items()
        if tp in applied and start > applied[tp]
    }
    assert sum(v for k, v in holes.items() if k.startswith(topics.stays)) == (
        stays_sent - stays_applied
    )
    assert {v for k, v in holes.items() if k.startswith(internal[0].topic)} == {3}

    resumed = worker_on(brokers, app_id, *prefix, data_dir=worker.data_dir)
    resumed.wait_until(lambda: expired_counter(resumed) == holes, 60, "the counter")
    health = resumed.get("/health")
    assert health["status"] == "degraded", health
    assert {k: v["expired"] for k, v in health["expired_records"].items()} == holes
    for key, hole in health["expired_records"].items():
        assert hole["group"] == (app_id if key.startswith(internal[0].topic) else group)
    log = resumed.log_path.read_text()
    assert log.count("RECORDS EXPIRED UNREAD") == len(holes), log
    assert "kafka-configs.sh" not in log  # the fixes took: no warning any more

    # A fresh app id on these topics: told that records expired before it ever read them.
    fresh = worker_on(brokers, f"late-{uuid.uuid4().hex[:6]}", *prefix)
    fresh.wait_until(
        # a 503 (None) waits on: it fails with the worker's log, not a TypeError without it
        lambda: bool((fresh.get("/health") or {}).get("expired_before_first_read")),
        60,
        "/health to list what expired before the first read",
    )
    health = fresh.get("/health")
    assert set(health["expired_before_first_read"]) == {
        f"{tp.topic}/{tp.partition}"
        for tp, start in starts.items()
        if start > 0 and tp not in internal  # another app id's internal topic
    }
    assert orjson.dumps(health["expired_records"]) == b"{}"


def test_aiokafka_passes_a_cancelled_error_out_of_a_consumer_stopped_at_once(
    kafka_bootstrap_servers: str,
) -> None:
    """Why the expired-records check stops its clients through `_stop_quietly`: aiokafka
    0.14's group-less consumer, stopped before its offset-reset task ever ran, raises that
    task's CancelledError out of stop() (a broker back from a freeze made the check's admin
    request fail at once after the consumer's start; the ingest stage ended with it). If
    this fails, aiokafka no longer does it: `_stop_quietly` may go."""

    async def start_then_stop() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap_servers)
        await consumer.start()
        await consumer.stop()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(start_then_stop())
