"""Monkeypatch: Faust's producer buffer (the table's changelog writes) waits to ebb below a cap.

Every table write queues one changelog message in ``ProducerBuffer`` (faust-streaming 0.15.3,
pinned: streams/worker/faust_patch.py). Before delivering the next message to an agent,
Faust's conductor calls ``wait_until_ebb``, which waits for at most 100 sends (or 0.1 s
without one). A bundle writes hundreds of entries, so while the worker catches up the queue
grows without bound: 267k writes waiting after 240k events at 20 establishments × 30
stays/day (bench.memory_growth), each a FutureMessage with its key and value, and the heap
they took is not given back. Waiting here until the queue is back under MAX_PENDING bounds
that memory and changes nothing else: the conductor already awaited here, the writes are
queued before it, and they are sent in the same order.
"""

from __future__ import annotations

from typing import Any

from faust.transport.producer import ProducerBuffer

MAX_PENDING = 1000  # changelog writes queued before the next message waits for them

_original = ProducerBuffer.wait_until_ebb


async def wait_until_ebb(self: Any) -> None:
    while self.size > MAX_PENDING:
        await self.flush_atmost(self.size - MAX_PENDING)


def apply() -> None:
    ProducerBuffer.wait_until_ebb = wait_until_ebb  # type: ignore[method-assign]


def undo() -> None:
    ProducerBuffer.wait_until_ebb = _original  # type: ignore[method-assign]
