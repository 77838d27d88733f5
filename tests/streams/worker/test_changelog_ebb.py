"""The conductor's wait for Faust's producer buffer lasts until the queued changelog writes
are back under the cap (Faust's own waits for at most 100 of them)."""

from __future__ import annotations

import asyncio

from faust.transport.producer import ProducerBuffer

from streams.worker import changelog_ebb
from streams.worker.changelog_ebb import MAX_PENDING, wait_until_ebb


class Buffer:
    """What wait_until_ebb reads of a ProducerBuffer: its size, and a flush that returns
    after at most n sends (here at most 100 a call, as a slow producer would)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls = 0

    async def flush_atmost(self, n: int) -> int:
        self.calls += 1
        await asyncio.sleep(0)
        sent = min(n, 100)
        self.size -= sent
        return sent


def test_waits_until_the_queue_is_under_the_cap() -> None:
    buffer = Buffer(MAX_PENDING + 950)
    asyncio.run(wait_until_ebb(buffer))
    assert buffer.size == MAX_PENDING
    assert buffer.calls == 10  # 950 sends, at most 100 per flush: it kept waiting


def test_does_not_wait_under_the_cap() -> None:
    buffer = Buffer(MAX_PENDING)
    asyncio.run(wait_until_ebb(buffer))
    assert buffer.calls == 0


def test_apply_installs_it_on_fausts_buffer() -> None:
    try:
        changelog_ebb.apply()
        assert ProducerBuffer.wait_until_ebb is wait_until_ebb
    finally:
        changelog_ebb.undo()
    assert ProducerBuffer.wait_until_ebb is not wait_until_ebb
