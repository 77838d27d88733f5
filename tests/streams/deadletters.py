"""Read the dead-letter topic back, for tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from streams.worker.deadletter import describe
from topics.names import DEADLETTER


def read_deadletters(
    brokers: str, wanted: Callable[[bytes], bool], count: int, seconds: float = 60
) -> list[tuple[bytes, dict[str, str]]]:
    """The first `count` dead letters whose value `wanted` accepts: (value, sunes-* headers)."""

    async def run() -> list[tuple[bytes, dict[str, str]]]:
        consumer = AIOKafkaConsumer(
            DEADLETTER, bootstrap_servers=brokers, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        found: list[tuple[bytes, dict[str, str]]] = []
        deadline = time.monotonic() + seconds
        try:
            while len(found) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.value is not None and wanted(record.value):
                            found.append((record.value, describe(list(record.headers))))
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())
