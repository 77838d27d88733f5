"""A flush's changelog records reach aiokafka's accumulator within the call (no await), so
a producer flush that starts right after covers them; against a real broker: the records in
order, tombstones kept, no headers, and the persisted offset reported once per acked batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from streams.worker import changelog_batch
from streams.worker.changelog_batch import ChangelogBatcher
from tests.kafka_tools import create_topic, read_partition


@pytest.mark.kafka
async def test_the_records_are_in_the_accumulator_before_the_call_returns(
    kafka_bootstrap_servers: str, unique_kafka_name: Callable[[str], str]
) -> None:
    topic = unique_kafka_name("changelog")
    await create_topic(kafka_bootstrap_servers, topic, 2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, linger_ms=10_000)
    await producer.start()
    acked: list[tuple[TopicPartition, int]] = []
    failures: list[BaseException] = []
    try:
        batcher = ChangelogBatcher(producer, lambda tp, o: acked.append((tp, o)), failures.append)
        first = [(b"F|s|1", b"a"), (b"F|s|2", None), (b"F|s|3", b"c")]
        second = [(b"F|s|1", b"d"), (b"F|s|3", None)]
        assert batcher.append(topic, 1, first) == 3
        assert batcher.append(topic, 1, second) == 2
        (batch,) = producer._message_accumulator._batches[TopicPartition(topic, 1)]
        assert batch.record_count == 5
        assert batch._msg_futures == []  # no future per record: the batch's own is watched
        # No await since: a flush now (what a commit or a rebalance does) must cover them,
        # though the batch would otherwise linger for 10 s.
        await producer.flush()
        assert acked == [(TopicPartition(topic, 1), 4)]
        assert failures == []
    finally:
        await producer.stop()
    records = await read_partition(kafka_bootstrap_servers, TopicPartition(topic, 1), 5)
    assert [(m.offset, m.key, m.value) for m in records] == [
        (offset, key, value) for offset, (key, value) in enumerate(first + second)
    ]
    assert all(not m.headers for m in records)


@pytest.mark.kafka
async def test_a_flush_larger_than_a_batch_goes_on_in_new_batches_in_order(
    kafka_bootstrap_servers: str, unique_kafka_name: Callable[[str], str]
) -> None:
    topic = unique_kafka_name("changelog")
    await create_topic(kafka_bootstrap_servers, topic, 1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap_servers, linger_ms=10_000, max_batch_size=1024
    )
    await producer.start()
    acked: list[tuple[TopicPartition, int]] = []
    failures: list[BaseException] = []
    tp = TopicPartition(topic, 0)
    try:
        batcher = ChangelogBatcher(producer, lambda tp, o: acked.append((tp, o)), failures.append)
        first = [(b"F|s|%d" % i, b"x" * 100 if i % 5 else None) for i in range(30)]
        second = [(b"F|d|%d" % i, b"y" * 150) for i in range(12)]
        assert batcher.append(topic, 0, first) == 30
        assert batcher.append(topic, 0, second) == 12
        batches = list(producer._message_accumulator._batches[tp])
        assert len(batches) > 3  # ~1 KiB each
        assert sum(batch.record_count for batch in batches) == 42
        await producer.flush()
        assert acked[-1] == (tp, 41)
        assert len(acked) == len(batches)  # each batch watched once
        assert failures == []
    finally:
        await producer.stop()
    records = await read_partition(kafka_bootstrap_servers, tp, 42)
    assert [(m.offset, m.key, m.value) for m in records] == [
        (offset, key, value) for offset, (key, value) in enumerate(first + second)
    ]


async def test_a_failed_batch_is_reported_once_and_stops_every_later_write() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")  # never started: no broker
    failures: list[BaseException] = []
    batcher = ChangelogBatcher(producer, lambda tp, o: None, failures.append)
    batcher.append("t", 0, [(b"k", b"v")])
    batcher.append("t", 1, [(b"k", b"v")])
    producer._message_accumulator.fail_all(KafkaError("the broker refused"))
    await producer._message_accumulator.flush()  # the futures' callbacks run
    assert len(failures) == 1
    with pytest.raises(RuntimeError, match="must restart"):
        batcher.append("t", 0, [(b"k", b"w")])


async def test_the_agent_waits_while_too_many_batches_are_unacked() -> None:
    """Back-pressure: a broker that does not ack holds the agent, not an ever-growing queue."""
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")  # never started: no acks
    batcher = ChangelogBatcher(producer, lambda tp, o: None, lambda exc: None)
    for partition in range(3):  # a batch per partition: three unacked
        batcher.append("t", partition, [(b"k", b"v")])
    assert len(batcher.unacked()) == 3
    await asyncio.wait_for(batcher.room(limit=3), 1)  # within the limit: no wait
    waiting = asyncio.ensure_future(batcher.room(limit=2))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # over the limit: held
    accumulator = producer._message_accumulator
    batch = accumulator._batches[TopicPartition("t", 0)][0]
    batch.done(base_offset=0)  # the broker acks one: room again
    await asyncio.wait_for(waiting, 1)
    assert len(batcher.unacked()) == 2


def test_another_aiokafka_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changelog_batch.aiokafka, "__version__", "0.99.0")
    with pytest.raises(RuntimeError, match=r"aiokafka 0\.14\.0"):
        changelog_batch.check_versions()
