"""Monkeypatch: Faust must not skip records when a table recovery ends.

The defect (faust-streaming 0.15.3 with aiokafka 0.14.0, the pinned versions)
----------------------------------------------------------------------------
Faust "pauses" a partition only in its own bookkeeping: aiokafka keeps fetching
and buffering every assigned partition, and Faust asks for the records of its
*active* ones.  ``Consumer._wait_next_records`` checks that the active set is
not empty and hands that very set -- the live, mutable
``Consumer._active_partitions`` -- to the consumer thread, where
``AIOKafkaConsumerThread._fetch_records`` passes it on to aiokafka's
``Fetcher.fetched_records(partitions)``.  When a recovery ends, the recovery
pauses the changelog partitions while the stream partitions are still paused:
the set becomes empty while the request waits in the thread's queue or in
``fetched_records``' wait for data, and aiokafka reads an empty set as "every
partition" (``if partitions and tp not in partitions``).  It returns the
buffered records of the paused partitions and advances their positions;
``Consumer.getmany`` then drops the records of inactive partitions without
seeking back.  With no committed offset yet, ``perform_seek`` does nothing and
the next commit moves past the dropped records; with one, the gap filling in
``_new_offset`` does the same: offsets applied by no worker, yet committed.

The fix: one function, ``AIOKafkaConsumerThread._fetch_records``
(faust/transport/drivers/aiokafka.py), the narrowest point -- aiokafka itself
is left alone -- now
  a. fetches from a snapshot of the active set and fetches nothing at all when
     the snapshot is empty (never "every partition");
  b. for records returned for a partition that is no longer active (nor
     buffered: the filter ``Consumer.getmany`` applies), seeks that partition
     back to the first such record's offset and leaves them out, so they are
     fetched again once the partition is resumed instead of being dropped.
A partition paused after this function returned and before ``getmany``
iterates still has its records dropped, as before the patch; that only
happens when a rebalance stops the flow, and the new assignment resets the
positions then.  Client-only apps (``active_partitions is None``) are passed
through unchanged.

``rewind(consumer, tp, offset)`` (second line of defence, called by an agent that
sees a hole in the offsets it applies) seeks back to the hole and keeps every commit of
``tp`` at the hole until the replayed record there is acked: it chops the gap intervals
and acked offsets at or above the hole, and ignores acks above the hole until then (the
records already in flight past the hole, skipped by the agent, are still acked by their
stream; counting them would commit past the hole, as ``_new_offset``'s head check
``min(acked) - committed > 1`` lets a one-record hole through).

The replay then gets past ``_drain_messages``' read-offset filter even when a record
fetched before the seek moved that offset past the hole (``_reopen_read_offset``, (c)).

Two more fixes of the same function and driver, for the stream's throughput, not its
exactness (bench/README.md, the waits of the main thread):
  d. while a partition is held back because its stream buffer is full (Faust's
     ``_buffered_partitions``), the wait for data goes in slices of
     ``RESUME_CHECK_SECONDS``, each on a fresh snapshot: a partition resumed meanwhile is
     read at once.  Before, the fetch waited the whole second of ``_drain_messages`` on
     the snapshot taken before the resume, since the resumed partition's records were
     already buffered and no new data woke it: the agent idled with its buffer empty.
  e. the worker consumer's ``fetch_max_wait_ms``, hard-coded to 1,500 by Faust's driver,
     is ``FETCH_MAX_WAIT_MS``: aiokafka sends one fetch per broker at a time, for the
     partitions with nothing buffered, so a fetch of idle partitions (Faust's leader
     topic, the never-consumed changelog's are buffered) sent while the stream's held
     records kept the stream's next fetch behind it for up to 1.5 s.

``apply()`` checks the versions and raises ``RuntimeError`` for any other: the
patch copies nothing from Faust, but its reasoning holds for these versions
only, so it must be re-checked (and removed if upstream fixed it) on upgrade.

Tests: tests/streams/worker/test_faust_patch.py runs Faust's real ``Consumer.getmany``
and its aiokafka driver over a real aiokafka ``Fetcher`` and
``SubscriptionState`` holding buffered records (no broker), with the patch
reverted -- records lost, positions advanced -- and applied: every record
delivered.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
import faust
from faust.transport.consumer import RecordMap
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from faust.types.tuples import ack_lock

# pyproject.toml pins the same versions exactly; mode-streaming too, because faust_replay's
# patch a. stands in for mode's Service.wait_first (mode's own __version__ is not its release)
PINNED_VERSIONS = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}

_FetchRecords = Callable[..., Awaitable[RecordMap]]

_original: _FetchRecords | None = None
_original_create: Any = None

# (d) How soon a partition resumed after a full stream buffer is read again.
RESUME_CHECK_SECONDS = 0.01
# (e) How long the broker may hold a fetch of the worker's consumer that found no data.
# aiokafka sends one fetch per broker at a time, with only the partitions that have no
# records buffered: a fetch of idle partitions (Faust's leader topic, caught-up ones),
# sent while the stream partitions still held records, kept their next fetch waiting up
# to Faust's 1,500 ms, the agent idle with a backlog on the broker (bench/README.md).
FETCH_MAX_WAIT_MS = 100


def _installed_versions() -> dict[str, str]:
    return {
        "faust-streaming": faust.__version__,
        "mode-streaming": importlib.metadata.version("mode-streaming"),
        "aiokafka": aiokafka.__version__,
    }


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return _original is not None


def apply() -> None:
    """Patch Faust's aiokafka driver (idempotent); call before creating the app."""
    global _original, _original_create
    if _original is not None:
        return
    installed = _installed_versions()
    if installed != PINNED_VERSIONS:
        raise RuntimeError(
            f"streams.worker.faust_patch was written for {PINNED_VERSIONS}, found {installed}: "
            "re-check the patch against the installed Faust and aiokafka sources "
            "(is the skipped-records defect still there?) before changing the pins"
        )
    original: _FetchRecords = AIOKafkaConsumerThread._fetch_records

    async def _fetch_records(
        self: AIOKafkaConsumerThread,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: set[TP] | None,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> RecordMap:
        if active_partitions is None:  # client-only app: every partition, by design
            return await original(self, consumer, None, timeout=timeout, max_records=max_records)
        # (a) `active_partitions` is the consumer's live set, emptied from the main
        # thread; aiokafka would read an empty set as "every partition".
        # (d) While a partition is held back for a full stream buffer, wait in short
        # slices, each on a fresh snapshot: one resumed meanwhile is read at once.
        deadline = time.monotonic() + (timeout or 0.0)
        while True:
            snapshot = set(active_partitions)
            if not snapshot:
                return {}
            held = bool(self.consumer._buffered_partitions)
            wait = timeout  # None: aiokafka's own meaning, no slices
            if timeout is not None:
                wait = max(0.0, deadline - time.monotonic())
                if held:
                    wait = min(wait, RESUME_CHECK_SECONDS)
            records: RecordMap = await original(
                self, consumer, snapshot, timeout=wait, max_records=max_records
            )
            if records or not held or timeout is None or time.monotonic() >= deadline:
                break
        # (b) getmany keeps only the records of active or buffered partitions, using
        # the live set; for the others, rewind instead of letting it drop them.
        buffered = self.consumer._buffered_partitions
        holds: dict[TP, tuple[int, int]] = getattr(self.consumer, _HOLDS_ATTR, {})
        kept: dict[TP, list[Any]] = {}
        for tp, batch in records.items():
            if tp in active_partitions or tp in buffered:
                kept[tp] = batch
                _reopen_read_offset(self.consumer, tp, batch, holds)
            elif batch:
                consumer.seek(tp, batch[0].offset)
        return kept

    _fetch_records.__wrapped__ = original  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
    create_consumer = AIOKafkaConsumerThread._create_worker_consumer

    def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        # (e) Faust hard-codes fetch_max_wait_ms=1500 (before start: the Fetcher copies it)
        consumer = create_consumer(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    _create_worker_consumer.__wrapped__ = create_consumer  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    _original = original
    _original_create = create_consumer


def revert() -> None:
    """Undo :func:`apply` (for tests); a no-op when not applied."""
    global _original, _original_create
    if _original is None:
        return
    AIOKafkaConsumerThread._fetch_records = _original  # type: ignore[method-assign,assignment]
    AIOKafkaConsumerThread._create_worker_consumer = _original_create  # type: ignore[method-assign]
    _original = None


# Pending holes of a consumer, per TP: (hole offset, consumer generation at the rewind).
_HOLDS_ATTR = "_sunes_rewind_holds"


def _chop_from(consumer: Any, tp: TP, offset: int) -> None:
    """Forget gap intervals and acked offsets of `tp` at or above `offset` (under ack_lock)."""
    gap = consumer._gap[tp]
    if gap and gap.end() > offset:
        # Consumer._new_offset fills acked with every gap interval below the highest
        # acked offset: an interval over the hole would be committed as if processed.
        gap.chop(offset, gap.end())
    acked: list[int] = consumer._acked[tp]
    acked[:] = [o for o in acked if o < offset]
    index: set[int] = consumer._acked_index[tp]
    index.difference_update([o for o in index if o >= offset])


def _reopen_read_offset(
    consumer: Any, tp: TP, batch: list[Any], holds: dict[TP, tuple[int, int]]
) -> None:
    """(c) The replay of a rewound hole must pass ``_drain_messages``' read-offset filter.

    ``rewind`` sets the read offset to the hole, but ``_drain_messages`` may be delivering a
    record fetched before the seek at that moment, and it then sets the read offset to that
    record's offset, past the hole: the replay from the hole is dropped as already read
    ("DROPPED MESSAGE ROFF"), and when no record follows, nothing reaches the agent again
    and the partition stalls (seen once in CI: a restarted worker stuck for 4 min). The
    records of this fetch are iterated only once the previous batch is done, so setting the
    read offset back to the hole here cannot be overwritten by a stale record."""
    hold = holds.get(tp)
    if hold is None or not batch:
        return
    hole = hold[0]
    if batch[0].offset <= hole <= batch[-1].offset:
        read = consumer._read_offset.get(tp)
        if read is not None and read > hole:
            consumer._read_offset[tp] = hole


def _holds(consumer: Any) -> dict[TP, tuple[int, int]]:
    """The consumer's pending holes, wrapping its ``ack`` on first use."""
    holds: dict[TP, tuple[int, int]] | None = getattr(consumer, _HOLDS_ATTR, None)
    if holds is not None:
        return holds
    pending: dict[TP, tuple[int, int]] = {}
    original = consumer.ack  # bound Consumer.ack; Message.on_final_ack calls consumer.ack

    def ack(message: Any) -> bool:
        with ack_lock:
            counted: bool = original(message)
            tp, offset = message.tp, message.offset
            hold = pending.get(tp)
            if hold is None:
                return counted
            hole, generation = hold
            if generation != consumer.app.consumer_generation_id:
                # A rebalance reset the position to the committed offset (<= hole).
                del pending[tp]
            elif offset == hole:  # the replay has reached the hole: commits may move on
                del pending[tp]
                _chop_from(consumer, tp, hole + 1)  # gaps left by records in flight
            elif offset > hole and counted:
                # Fetched before the rewind, not applied: the replay acks it again.
                consumer._acked[tp].remove(offset)
                consumer._acked_index[tp].discard(offset)
                return False
            return counted

    consumer.ack = ack
    setattr(consumer, _HOLDS_ATTR, pending)
    return pending


async def rewind(consumer: Any, tp: Any, offset: int) -> None:
    """Seek `tp` back to `offset` (a hole); no commit of `tp` passes it before it is replayed.

    `consumer` is the app's ``faust.transport.consumer.Consumer``.  Call it again for every
    record past the hole the agent still receives: each one fetched before the seek moves
    Faust's read offset (and may add a gap interval) after the previous call.
    """
    tp = TP(*tp)
    with ack_lock:
        # The latest call wins: the agent asks for the offset it expects next.
        _holds(consumer)[tp] = (offset, consumer.app.consumer_generation_id)
        _chop_from(consumer, tp, offset)
    # Faust's seek: the client's position, and the read offset _drain_messages checks.
    await consumer.seek(tp, offset)
