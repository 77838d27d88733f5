"""A bundle's changelog records handed to the Kafka producer at once, synchronously.

Why: Faust sends each table write on its own (`Table.on_key_set` → `Topic.send_soon`: a
FutureMessage, an asyncio queue, one event-loop wake-up per record, then
`_on_changelog_sent` puts the persisted offset in RocksDB once per record): ~85 µs per
changed entry, measured. Here the records of one flush are appended to aiokafka's
accumulator in the same call (~1 µs each), and the persisted offset is put once per acked
produce batch. They go through the batch's builder (what `BatchBuilder.append` does, written
out), not `MessageBatch.append`, which makes an asyncio future per record that the ack then resolves one
by one (~6 % of the worker's main thread, measured): the batch's own future is watched, and
its ack carries the base offset, the last one being base + record count - 1.

Why synchronously, with no await between the RocksDB batch and this hand-off: a rebalance's
commit flushes the producer (`Consumer._commit_offsets` → `producer.flush()` → aiokafka's
`MessageAccumulator.flush`, which waits for every batch it holds); a record not yet in the
accumulator then would be missed by that flush, and land on the changelog after the next
owner has recovered (a stale record). aiokafka's own `send_batch` awaits metadata and a free
slot first, so it cannot be used here; this module appends the way `add_message` does
without its await: to the partition's last open batch, else to a new one (aiokafka's
accumulator holds several batches per partition; the sender takes them in order).

The records are those Faust writes: the table's raw key and value bytes, a tombstone (None)
for a deletion, no headers, the send time as timestamp; on the partition Faust would pick
(the current event's, `Collection.partition_for_key`). So Faust's recovery, standbys and
assignment read them unchanged.

A changelog batch that fails (after aiokafka's retries) crashes the worker, loudly: Faust's
own path only logs it and lets the next commit pass. The persisted offset is moved only by
acked batches, so a recovery never seeks past a record the broker lacks.

`check_versions()` pins aiokafka (the accumulator's private API) as
streams/worker/faust_patch.py pins Faust: re-read both on upgrade.
Tests: tests/streams/worker/test_changelog_batch.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import aiokafka
from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)

PINNED_AIOKAFKA = "0.14.0"
# Batches handed to the producer and not yet acked, beyond which the agent waits before its
# next bundle (`room`): Faust's send_soon buffer and aiokafka's send each bound what a slow
# broker lets pile up in RAM; this path bypasses both, so it bounds it itself. A batch holds
# at most producer_max_batch_size (256 KiB in the worker): ≤ 16 MiB waiting.
MAX_UNACKED_BATCHES = 64


def check_versions() -> None:
    if aiokafka.__version__ != PINNED_AIOKAFKA:
        raise RuntimeError(
            f"streams.worker.changelog_batch was written for aiokafka {PINNED_AIOKAFKA}, found "
            f"{aiokafka.__version__}: re-check its use of the producer's MessageAccumulator "
            "(_batches, _append_batch, create_builder, MessageBatch._builder and .future, "
            "BatchBuilder.append and its _builder, _relative_offset, _closed, close(), "
            "MessageBatch.failure) before changing the pin"
        )


_NO_HEADERS: list[tuple[str, bytes | None]] = []  # only read by the record builder


class ChangelogBatcher:
    """Appends records to one aiokafka producer's accumulator; calls `on_acked(tp, offset)`
    with the last offset of each acked batch, and `on_failed(exc)` once if one fails."""

    def __init__(
        self,
        producer: aiokafka.AIOKafkaProducer,
        on_acked: Callable[[TopicPartition, int], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        check_versions()
        self.producer = producer
        self.on_acked = on_acked
        self.on_failed = on_failed
        self._watched: weakref.WeakSet[Any] = weakref.WeakSet()
        self._topics: set[str] = set()
        self.failed: BaseException | None = None

    def append(
        self, topic: str, partition: int, records: Sequence[tuple[bytes, bytes | None]]
    ) -> int:
        """Hand `records` to the producer, in order; no await. Returns how many."""
        if self.failed is not None:
            raise RuntimeError("a changelog batch failed: the worker must restart") from self.failed
        accumulator = self.producer._message_accumulator
        if accumulator._closed:
            raise RuntimeError("the producer is closed: cannot write the changelog")
        if accumulator._exception is not None:
            raise accumulator._exception
        if topic not in self._topics:
            # Keep the topic's leaders in the producer's metadata (the sender refreshes the
            # metadata of the topics the client tracks, and waits for unknown leaders).
            self.producer.client.add_topic(topic)
            self._topics.add(topic)
        tp = TopicPartition(topic, partition)
        timestamp_ms = int(time.time() * 1000)
        pending = accumulator._batches.get(tp)
        batch: Any = pending[-1] if pending else None
        builder: Any = None if batch is None else batch._builder
        # Each record goes where `BatchBuilder.append` puts it, without its two Python calls
        # (keyword arguments, `_serialize` with no serializer): to its record builder (aiokafka's
        # Cython DefaultRecordBatchBuilder), then its relative offset moved; a full batch is
        # closed, as BatchBuilder.append does. Not `MessageBatch.append` either: that one makes
        # a future per record, which the ack then resolves one by one; the batch's own future
        # is enough here. The offset is kept in a local across a run of records that fit (one
        # attribute write per batch, not per record).
        taken = 0
        count = len(records)
        while taken < count:
            fresh = builder is None or builder._closed
            if fresh:
                if builder is not None:
                    builder.close()  # closed already: a no-op
                # a new batch after it, as add_message would
                batch = accumulator._append_batch(accumulator.create_builder(), tp)
                builder = batch._builder
            append = builder._builder.append
            first = offset = builder._relative_offset
            for key, value in records[taken:] if taken else records:
                if append(offset, timestamp_ms, key, value, _NO_HEADERS) is None:
                    break  # full
                offset += 1
            builder._relative_offset = offset
            if offset > first:
                taken += offset - first
                if batch not in self._watched:
                    self._watched.add(batch)
                    batch.future.add_done_callback(self._done(batch))
            elif fresh:
                raise ValueError(  # pragma: no cover
                    "a changelog record larger than producer_max_batch_size"
                )
            if taken < count:
                builder.close()  # full: the next records go to a new batch
        return len(records)

    def unacked(self) -> list[asyncio.Future[Any]]:
        return [b.future for b in self._watched if not b.future.done()]

    async def room(self, limit: int = MAX_UNACKED_BATCHES) -> None:
        """Wait while more than `limit` batches are unacked (the agent calls it between
        bundles, never inside one: see the module's docstring). A failed batch ends the
        wait: the worker is stopping."""
        while self.failed is None:
            waiting = self.unacked()
            if len(waiting) <= limit:
                return
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)

    def _done(self, batch: Any) -> Callable[[asyncio.Future[Any]], None]:
        def done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                self._fail(asyncio.CancelledError())
                return
            exc = future.exception()
            if exc is not None:
                self._fail(exc)
                return
            metadata = future.result()
            if metadata is None:  # an empty batch: nothing was written
                return
            self.on_acked(batch.tp, metadata.offset + batch.record_count - 1)

        return done

    def _fail(self, exc: BaseException) -> None:
        if self.failed is None:
            self.failed = exc
            log.error("a changelog batch failed: %s; the worker stops", type(exc).__name__)
            self.on_failed(exc)
