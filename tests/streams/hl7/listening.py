"""What the HL7 listener tests share, as a pytest plugin (tests/conftest.py): the fixture
files, a `sunes hl7 listen` on the test's own topics (`hl7_listener`), and reading topics back
(their end offsets, or every message from the start)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from bench.common import partitions_of
from streams.hl7.testing import ListenerProcess
from topics.names import TopicNames

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hl7"
SCENARIO = sorted((FIXTURES / "scenario").glob("*.hl7"))
MALFORMED = sorted((FIXTURES / "malformed").glob("*.hl7"))


def event_topics(topics: TopicNames) -> list[str]:
    return [topics.stays, topics.dmp, topics.mss]


@pytest.fixture
def hl7_listener(
    tmp_path: Path, kafka_bootstrap_servers: str, kafka_topic_prefix: str
) -> Iterator[ListenerProcess]:
    """A running `sunes hl7 listen` on this test's topics, stopped at the end."""
    process = ListenerProcess(kafka_bootstrap_servers, tmp_path, topic_prefix=kafka_topic_prefix)
    yield process.start()
    process.stop()


def end_offsets(brokers: str, topics: list[str]) -> dict[str, int]:
    """Each topic's end offsets, summed over its partitions."""

    async def run() -> dict[str, int]:
        partitions = await partitions_of(brokers, topics)
        consumer = AIOKafkaConsumer(bootstrap_servers=brokers, group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        totals: Counter[str] = Counter({topic: 0 for topic in topics})
        for tp, offset in ends.items():
            totals[tp.topic] += offset
        return dict(totals)

    return asyncio.run(run())


def read_topics(brokers: str, topics: list[str]) -> list[tuple[str, bytes | None, bytes]]:
    """Everything on the (new) topics, from the start to their current end."""

    async def run() -> list[tuple[str, bytes | None, bytes]]:
        partitions = await partitions_of(brokers, topics)
        consumer = AIOKafkaConsumer(bootstrap_servers=brokers, group_id=None)
        await consumer.start()
        got: list[tuple[str, bytes | None, bytes]] = []
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)

            async def read_to_the_end() -> None:
                while len(got) < sum(ends.values()):  # the topics are new: they start at 0
                    for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                        got.extend((tp.topic, m.key, m.value) for m in batch if m.value)

            await asyncio.wait_for(read_to_the_end(), 60)
        finally:
            await consumer.stop()
        return got

    return asyncio.run(run())
