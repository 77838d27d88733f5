"""Fetched record batches' CRCs checked by google-crc32c: the same records delivered, the same
exception at the same point for a corrupt batch, as aiokafka's own check; and against a real
broker, a consumer reads what a producer wrote through the patched fetcher."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder
from aiokafka.structs import TopicPartition

from streams.worker import kafka_crc
from tests.kafka_tools import create_topic, read_partition

TP = TopicPartition("t", 0)


def _v2_batch(base: int, count: int) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(count):
        builder.append(
            i, timestamp=1_700_000_000_000 + i, key=b"k%d" % i, value=b"v" * 50, headers=[]
        )
    data = bytearray(builder.build())
    data[0:8] = base.to_bytes(8, "big")  # the broker sets the base offset (not in the CRC)
    return bytes(data)


def _legacy_batch(offset: int) -> bytes:
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    builder.append(0, timestamp=1_700_000_000_000, key=b"old", value=b"legacy")
    data = bytearray(builder.build())
    data[0:8] = offset.to_bytes(8, "big")
    return bytes(data)


def _corrupt(data: bytes, at: int) -> bytes:
    flipped = bytearray(data)
    flipped[at] ^= 0x01
    return bytes(flipped)


def _read(data: bytes, check_crcs: bool = True) -> tuple[list[tuple[int, bytes]], str | None]:
    """What the fetcher's classes deliver of one partition's fetched bytes: (offset, value)
    until the end or an exception (its message)."""
    records = fetcher.MemoryRecords(data)
    partition = fetcher.PartitionRecords(TP, records, None, 0, None, None, check_crcs, 0)
    got: list[tuple[int, bytes]] = []
    try:
        for record in partition:
            got.append((record.offset, record.value))
    except CorruptRecordException as exc:
        return got, str(exc)
    return got, None


@pytest.fixture
def patched() -> Iterator[None]:
    kafka_crc.apply()
    try:
        yield
    finally:
        kafka_crc.revert()


def _both(data: bytes, check_crcs: bool = True) -> tuple[Any, Any]:
    """(aiokafka's own result, the patched one) for the same bytes."""
    kafka_crc.revert()
    own = _read(data, check_crcs)
    kafka_crc.apply()
    try:
        return own, _read(data, check_crcs)
    finally:
        kafka_crc.revert()


def test_intact_batches_deliver_the_same_records() -> None:
    own, patched = _both(_v2_batch(0, 3) + _v2_batch(3, 1) + _v2_batch(4, 5))
    assert own == patched
    assert [offset for offset, _ in patched[0]] == list(range(9))
    assert patched[1] is None
    own, patched = _both(_legacy_batch(0) + _legacy_batch(1))  # magic 1: aiokafka's check
    assert own == patched == ([(0, b"legacy"), (1, b"legacy")], None)


def test_a_corrupt_batch_raises_where_aiokafka_does() -> None:
    first, second = _v2_batch(0, 3), _v2_batch(3, 4)
    for at in (21, 30, len(second) - 1, 17):  # attributes, a record, the end, the CRC itself
        own, patched = _both(first + _corrupt(second, at) + _v2_batch(7, 2))
        assert own == patched
        assert [offset for offset, _ in patched[0]] == [0, 1, 2]
        assert patched[1] == f"[Error 2] CorruptRecordException: Invalid CRC - {TP}"


def test_a_corrupt_legacy_batch_is_still_refused() -> None:
    own, patched = _both(_legacy_batch(0) + _corrupt(_legacy_batch(1), 30))
    assert own == patched
    assert patched == ([(0, b"legacy")], f"[Error 2] CorruptRecordException: Invalid CRC - {TP}")


def test_no_check_when_the_consumer_asks_for_none(patched: None) -> None:
    got, error = _read(_corrupt(_v2_batch(0, 3), 25), check_crcs=False)
    assert error is None
    assert len(got) == 3


def test_a_partial_batch_at_the_end_is_left_for_the_next_fetch(patched: None) -> None:
    whole = _v2_batch(0, 3)
    got, error = _read(whole + _v2_batch(3, 4)[:40])
    assert error is None
    assert [offset for offset, _ in got] == [0, 1, 2]


def test_apply_is_idempotent_and_revert_restores() -> None:
    original = fetcher.PartitionRecords
    kafka_crc.apply()
    patched_class = fetcher.PartitionRecords
    kafka_crc.apply()
    assert fetcher.PartitionRecords is patched_class is not original
    kafka_crc.revert()
    assert fetcher.PartitionRecords is original
    assert not kafka_crc.is_applied()


@pytest.mark.kafka
async def test_a_consumer_reads_a_producers_batches_through_the_check(
    kafka_bootstrap_servers: str, unique_kafka_name: Callable[[str], str], patched: None
) -> None:
    topic = unique_kafka_name("crc")
    await create_topic(kafka_bootstrap_servers, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, linger_ms=50)
    await producer.start()
    try:
        sent = [b"value %d " % i * (1 + i % 7) for i in range(300)]
        for value in sent:
            await producer.send(topic, value)
        await producer.flush()
    finally:
        await producer.stop()
    records = await read_partition(kafka_bootstrap_servers, TopicPartition(topic, 0), len(sent))
    assert [m.value for m in records] == sent
