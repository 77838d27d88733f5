"""The worker's store: the changelogged Faust table `facts`, as a processors.store.KeyValueStore.

With `rocksdb://` the table lives on disk (one RocksDB per partition, through rocksdict) and
every write also goes to the table's changelog topic, from which a worker that lost its disk
recovers. Writes must happen inside the establishment agent (Faust picks the partition from
the event being processed): processors.collection flushes once per bundle, there.

The write path (`write`, one call per flush): every changed key once, in one RocksDB
`WriteBatch` on the current event's partition (Faust's `_set` picks the same DB), then the
changelog records handed to the producer in the same call (streams/worker/changelog_batch.py),
no await in between; the persisted offset is put once per acked produce batch. Faust's
per-key path (`Table.__setitem__` → `on_key_set` → `send_changelog`, ~85 µs a key) is kept
only for a store without rocksdict (memory://) outside a running producer. Faust's commit
flushes the producer before it commits the input offset, so no offset is committed before
the changelog records of its bundle are acked.

Every write goes to RocksDB without its write-ahead log (the DBs' default write options,
set at open), and a clean stop flushes every DB before the clean mark (`flush_at_stop`):
why, and the hazards, in streams/worker/local_state.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition
from faust.streams import current_event
from faust.types import TP
from rocksdict import WriteBatch

from processors.store import Change
from streams.worker import local_state
from streams.worker.changelog_batch import ChangelogBatcher

# RocksDB per partition: Faust's defaults (2 GiB block cache, 3 × 64 MiB memtables) are sized
# for one big table per machine; ours are many small ones, and the decoded-entry cache of
# processors.state sits above them.
ROCKSDB_OPTIONS = {
    "driver": "rocksdict",
    "block_cache_size": 32 * 1024 * 1024,
    "write_buffer_size": 16 * 1024 * 1024,
    "max_write_buffer_number": 2,
}


def partition_of(finess: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a FINESS key (murmur2, as Java's)."""
    return int(murmur2(finess.encode()) & 0x7FFFFFFF) % partitions


class TableStore:
    def __init__(self, table: Any) -> None:
        self.table = table
        self._batcher: ChangelogBatcher | None = None
        self._crash: asyncio.Future[None] | None = None
        self._data: Any = None  # the table's store, at the first read
        self._rocks = False
        self._by_event = False
        # KeyValueStore.get: `_search`, or within `reading` the partition's own Rdict.get
        self.get: Callable[[bytes], bytes | None] = self._search
        # At the store's stop: every open DB's memtables written to disk (None: not stopped)
        self.flushed: bool | None = None

    def flush_at_stop(self) -> None:
        """Flush every partition's DB when Faust stops the table's RocksDB store, before it
        drops them (its `stop` clears its DBs without closing them): what a clean stop's mark
        vouches for (streams/worker/local_state.py). A store without rocksdict has none."""
        data = self.table.data
        if not getattr(data, "use_rocksdict", False):
            return
        stop = data.stop

        async def flushing_stop() -> None:
            self.flushed = local_state.flush(list(data._dbs.values()))
            await stop()

        data.stop = flushing_stop

    def _search(self, key: bytes) -> bytes | None:
        """`get` outside `reading`: the DB of the current event's partition, as Faust reads."""
        data = self._data
        if data is None:
            data = self._store()
        if self._rocks:
            # One RocksDB get; Table.get asks `key in data` first, a second get.
            event = current_event() if self._by_event else None
            if event is not None:
                # What Faust's Store._get does during an event (faust-streaming 0.15.3,
                # pinned by streams/worker/faust_patch.py), without refreshing its LRU key
                # index under a lock (~18 % of Store._get in a py-spy profile): that index
                # only narrows the DBs searched outside an event (`_get_bucket_for_key`,
                # `_contains`, `_del`), which search them all for a key not in it, and a
                # key never changes partition (it starts with its FINESS). Our writes never
                # fed it either.
                found: bytes | None = data._db_for_partition(event.message.partition).get(key)
                return found
            value: bytes | None = data._get(key)  # outside an event: Faust searches
            return value
        found = data.get(key)
        return found

    def _store(self) -> Any:
        data = self._data
        if data is None:  # the table's store, and how to read it: once (Faust makes it once)
            table = self.table
            data = self._data = table.data
            self._rocks = getattr(data, "use_rocksdict", False)
            # whether Faust reads a key in the current event's partition (Store._get's test)
            self._by_event = self._rocks and not table.is_global and not table.use_partitioner
        return data

    @contextmanager
    def reading(self, partition: int) -> Iterator[None]:
        """`get` bound to the DB of `partition` (the event's being applied) for the span of
        a synchronous block: the domain's reads that miss its cache then call rocksdict's
        `Rdict.get` directly, not a Python frame + current_event() + _db_for_partition each
        (~2 % of the worker's main thread). What `_search` reads during that event, the same
        DB; no await may run inside (another task's read, e.g. a worklist outside any event,
        would see that DB)."""
        data = self._store()
        if not self._by_event:
            yield
            return
        self.get = data._db_for_partition(partition).get
        try:
            yield
        finally:
            self.get = self._search

    def write(self, changes: Sequence[Change]) -> None:
        """One transaction: see the module's docstring. Synchronous on purpose."""
        if not changes:
            return
        table = self.table
        app = table.app
        producer = getattr(app.producer, "_producer", None)
        data = table.data
        rocks = getattr(data, "use_rocksdict", False)
        if producer is None or app.in_transaction:
            for key, value in changes:  # Faust's own path, key by key
                if value is None:
                    self.delete(key)
                else:
                    self.set(key, value)
            return
        partition = table.partition_for_key(None)  # the current event's, checked as Faust does
        if rocks:
            batch = WriteBatch(raw_mode=True)
            put, delete = batch.put, batch.delete  # ~2.6 changes an event
            for key, value in changes:
                if value is None:
                    delete(key)
                else:
                    put(key, value)
            data._db_for_partition(partition).write(batch)
        else:
            for key, value in changes:
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
        self._changelog(producer).append(table.changelog_topic_name, partition, changes)

    async def room(self) -> None:
        """Back-pressure between bundles: wait while the producer holds too many of our
        unacked changelog batches (streams/worker/changelog_batch.py)."""
        if self._batcher is not None:
            await self._batcher.room()

    def _changelog(self, producer: Any) -> ChangelogBatcher:
        batcher = self._batcher
        if batcher is None or batcher.producer is not producer:
            batcher = self._batcher = ChangelogBatcher(producer, self._acked, self._failed)
        return batcher

    def _acked(self, tp: TopicPartition, offset: int) -> None:
        # What Faust's _on_changelog_sent does per record: once per acked batch here.
        self.table.data.set_persisted_offset(TP(tp.topic, tp.partition), offset)

    def _failed(self, exc: BaseException) -> None:
        # No commit may pass a changelog the broker lacks: stop the worker (its offsets
        # are replayed by the next owner).
        self._crash = asyncio.ensure_future(self.table.app.crash(exc))

    def set(self, key: bytes, value: bytes) -> None:
        self.table[key] = value

    def delete(self, key: bytes) -> None:
        self.table.pop(key, None)  # a tombstone in the changelog

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        data = self.table.data
        if prefix and getattr(data, "use_rocksdict", False):
            # A seek to the prefix in each active partition's RocksDB: a worklist then reads
            # one establishment's entries, not the whole store (measured with bench.state:
            # 620 ms per list over 830k keys before). Faust has no public prefix read; its
            # Store's active DBs are the ones its own items() walks (faust-streaming 0.15.3,
            # pinned by streams/worker/faust_patch.py).
            for db in data._dbs_for_actives():
                for key, value in db.items(from_key=prefix):
                    if not key.startswith(prefix):
                        break
                    yield key, value
            return
        for key, value in self.table.items():
            key = key if isinstance(key, bytes) else str(key).encode()
            if key.startswith(prefix):
                yield key, value
