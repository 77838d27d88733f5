"""The worker's table store reads one prefix by seeking in each active RocksDB (real
rocksdict databases, as Faust's rocksdb:// store opens them), else by filtering; it writes a
flush as one batch on the event's partition and hands its changelog records to the producer."""

from __future__ import annotations

import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition
from faust.stores.rocksdb import Store as FaustStore
from faust.streams import _current_event
from rocksdict import Options, Rdict

from processors.store import MemoryStore
from streams.worker.rocksdb_memory import SharedRocksDBOptions
from streams.worker.table_store import TableStore

ENTRIES = {
    b"750000001|s|S1": b"a",
    b"750000001|s|S2": b"b",
    b"750000001|d|D1": b"c",
    b"750000002|s|S1": b"d",
    b"75000000|s|X": b"e",  # a shorter FINESS-like prefix sorts before
}


class FaustRocksStore:
    """What TableStore reads of Faust's rocksdb Store: its active partitions' databases."""

    use_rocksdict = True

    def __init__(self, dbs: list[Rdict]) -> None:
        self.dbs = dbs

    def _dbs_for_actives(self) -> Iterator[Rdict]:
        return iter(self.dbs)


class Table:
    """A Faust table read by key: not global, partitioned by the event being processed."""

    is_global = False
    use_partitioner = False

    def __init__(self, data: Any, items: dict[bytes, bytes]) -> None:
        self.data = data
        self._items = items

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._items.items())


def test_a_prefix_is_read_by_seeking_in_every_partition(tmp_path: Path) -> None:
    dbs = [Rdict(str(tmp_path / f"p{p}"), options=Options(raw_mode=True)) for p in (0, 1)]
    for number, (key, value) in enumerate(ENTRIES.items()):
        dbs[number % 2][key] = value
    store = TableStore(Table(FaustRocksStore(dbs), {}))  # items() would give nothing
    try:
        assert dict(store.items(b"750000001|s|")) == {
            b"750000001|s|S1": b"a",
            b"750000001|s|S2": b"b",
        }
        assert dict(store.items(b"750000002|")) == {b"750000002|s|S1": b"d"}
        assert list(store.items(b"750000009|")) == []
    finally:
        for db in dbs:
            db.close()


def test_without_rocksdb_the_table_items_are_filtered() -> None:
    store = TableStore(Table(object(), ENTRIES))
    assert dict(store.items(b"750000001|s|")) == {
        b"750000001|s|S1": b"a",
        b"750000001|s|S2": b"b",
    }
    assert dict(store.items()) == ENTRIES


def test_the_memory_store_filters_too() -> None:
    memory = MemoryStore()
    for key, value in ENTRIES.items():
        memory.set(key, value)
    assert sorted(memory.items(b"750000001|")) == sorted(
        (k, v) for k, v in ENTRIES.items() if k.startswith(b"750000001|")
    )


class PartitionedRocks(FaustRocksStore):
    """Faust's rocksdb Store as TableStore writes it: a DB per partition."""

    def _db_for_partition(self, partition: int) -> Rdict:
        return self.dbs[partition]

    def _get(self, key: bytes) -> bytes | None:  # the current event's partition: 1 here
        value: bytes | None = self.dbs[1].get(key)
        return value


class App:
    in_transaction = False

    def __init__(self, producer: Any) -> None:
        self.producer = type("FaustProducer", (), {"_producer": producer})()


class WrittenTable(Table):
    changelog_topic_name = "app-facts-changelog"

    def __init__(self, data: Any, producer: Any) -> None:
        super().__init__(data, {})
        self.app = App(producer)

    def partition_for_key(self, key: Any) -> int:
        return 1  # Faust's choice: the partition of the event being processed


async def test_a_flush_is_one_batch_on_the_event_partition_and_its_changelog_records(
    tmp_path: Path,
) -> None:
    dbs = [Rdict(str(tmp_path / f"p{p}"), options=Options(raw_mode=True)) for p in (0, 1)]
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")  # never started
    dbs[1][b"F|s|old"] = b"x"
    store = TableStore(WrittenTable(PartitionedRocks(dbs), producer))
    try:
        store.write([(b"F|s|1", b"a"), (b"F|s|old", None), (b"F|s|2", b"b")])
        assert dict(dbs[1].items()) == {b"F|s|1": b"a", b"F|s|2": b"b"}
        assert list(dbs[0].items()) == []
        assert store.get(b"F|s|1") == b"a"
        assert store.get(b"F|s|old") is None
        batches = producer._message_accumulator._batches
        assert list(batches) == [TopicPartition("app-facts-changelog", 1)]
        assert batches[TopicPartition("app-facts-changelog", 1)][0].record_count == 3
    finally:
        for db in dbs:
            db.close()


class SearchingRocks(PartitionedRocks):
    """Faust's Store._get outside an event: it searches the partitions' DBs."""

    def _get(self, key: bytes) -> bytes | None:
        for db in self.dbs:
            value: bytes | None = db.get(key)
            if value is not None:
                return value
        return None


def test_a_read_during_an_event_is_one_get_in_the_event_partition(tmp_path: Path) -> None:
    dbs = [Rdict(str(tmp_path / f"p{p}"), options=Options(raw_mode=True)) for p in (0, 1)]
    dbs[0][b"F|s|0"] = b"zero"
    dbs[1][b"F|s|1"] = b"one"
    store = TableStore(Table(SearchingRocks(dbs), {}))
    message = type("Message", (), {"partition": 1})()
    event = type("Event", (), {"message": message})()
    try:
        assert store.get(b"F|s|0") == b"zero"  # no event: every partition searched
        token = _current_event.set(weakref.ref(event))
        try:
            assert store.get(b"F|s|1") == b"one"
            assert store.get(b"F|s|0") is None  # another partition's key: not this event's
            assert store.get(b"F|s|2") is None
        finally:
            _current_event.reset(token)
        assert store.get(b"F|s|1") == b"one"
    finally:
        for db in dbs:
            db.close()


def test_reads_bound_to_a_bundle_partition_read_what_faust_reads_in_its_event(
    tmp_path: Path,
) -> None:
    dbs = [Rdict(str(tmp_path / f"p{p}"), options=Options(raw_mode=True)) for p in (0, 1)]
    dbs[0][b"F|s|0"] = b"zero"
    dbs[1][b"F|s|1"] = b"one"
    store = TableStore(Table(SearchingRocks(dbs), {}))
    try:
        with store.reading(1):
            assert store.get(b"F|s|1") == b"one"
            assert store.get(b"F|s|0") is None  # another partition's key: not this bundle's
            assert store.get(b"F|s|2") is None
        assert store.get(b"F|s|0") == b"zero"  # after the bundle: every partition searched
        try:
            with store.reading(0):
                assert store.get(b"F|s|1") is None
                raise RuntimeError("an apply that failed")
        except RuntimeError:
            pass
        assert store.get(b"F|s|1") == b"one"  # unbound however the block ended
    finally:
        for db in dbs:
            db.close()


def test_without_rocksdb_a_bundle_reads_the_table_as_before() -> None:
    store = TableStore(Table({b"F|s|1": b"one"}, {}))
    with store.reading(3):
        assert store.get(b"F|s|1") == b"one"
        assert store.get(b"F|s|2") is None
    assert store.get(b"F|s|1") == b"one"


# A process that writes a flush through TableStore and a persisted offset as Faust puts it
# (`set_persisted_offset`: a plain put), into DBs opened as the worker opens them, then
# flushes them or not and ends at once, as a killed worker would (no close, no destructor).
WRITER = """
import asyncio, os, sys
from aiokafka import AIOKafkaProducer
from faust.stores.rocksdb import Store
from streams.worker import local_state
from streams.worker.rocksdb_memory import SharedRocksDBOptions
from streams.worker.table_store import TableStore
from tests.streams.worker.test_table_store import PartitionedRocks, WrittenTable

async def main(root, flush):
    options = SharedRocksDBOptions(use_rocksdict=True)
    dbs = [options.open(os.path.join(root, f"p{p}")) for p in (0, 1)]
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")  # never started
    store = TableStore(WrittenTable(PartitionedRocks(dbs), producer))
    store.write([(b"F|s|1", b"a"), (b"F|s|2", b"b")])
    dbs[1].put(Store.offset_key, b"41")
    if flush:
        assert local_state.flush(dbs)
    os._exit(0)

asyncio.run(main(sys.argv[1], sys.argv[2] == "flush"))
"""


def written(root: Path, how: str) -> dict[bytes, bytes]:
    root.mkdir()
    repo = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", WRITER, str(root), how], cwd=repo, check=True)
    db = Rdict(str(root / "p1"), options=Options(raw_mode=True))
    try:
        return dict(db.items())
    finally:
        db.close()


def test_writes_skip_the_wal_so_only_a_flush_keeps_them_past_the_process(
    tmp_path: Path,
) -> None:
    assert written(tmp_path / "killed", "no-flush") == {}, "no WAL: the memtable died with it"
    assert written(tmp_path / "flushed", "flush") == {
        b"F|s|1": b"a",
        b"F|s|2": b"b",
        FaustStore.offset_key: b"41",
    }
    wal = [f for f in (tmp_path / "flushed" / "p1").iterdir() if f.suffix == ".log"]
    assert wal and all(f.stat().st_size == 0 for f in wal), "nothing written to a WAL"


class StoppedRocks(PartitionedRocks):
    """Faust's rocksdb Store at its stop: it drops its DBs without closing them."""

    def __init__(self, dbs: list[Rdict]) -> None:
        super().__init__(dbs)
        self._dbs = dict(enumerate(dbs))
        self.stops = 0

    async def stop(self) -> None:
        self.stops += 1
        self._dbs.clear()


async def test_the_store_s_stop_flushes_every_db_first(tmp_path: Path) -> None:
    options = SharedRocksDBOptions(use_rocksdict=True)
    dbs = [options.open(tmp_path / f"p{p}") for p in (0, 1)]
    for number, db in enumerate(dbs):
        db.put(b"F|s|%d" % number, b"x")
    rocks = StoppedRocks(dbs)
    store = TableStore(WrittenTable(rocks, producer=None))
    store.flush_at_stop()
    assert store.flushed is None
    try:
        assert all(db.property_int_value("rocksdb.num-entries-active-mem-table") for db in dbs)
        await rocks.stop()
        assert store.flushed is True and rocks.stops == 1
        assert not any(db.property_int_value("rocksdb.num-entries-active-mem-table") for db in dbs)
        assert all(db.live_files() for db in dbs), "in table files"
    finally:
        for db in dbs:
            db.close()


async def test_a_flush_that_fails_at_stop_vouches_for_nothing(tmp_path: Path) -> None:
    options = SharedRocksDBOptions(use_rocksdict=True)
    dbs = [options.open(tmp_path / f"p{p}") for p in (0, 1)]
    dbs[1].close()  # its flush raises
    rocks = StoppedRocks(dbs)
    store = TableStore(WrittenTable(rocks, producer=None))
    store.flush_at_stop()
    try:
        await rocks.stop()
        assert store.flushed is False and rocks.stops == 1  # no clean mark; stopped still
    finally:
        dbs[0].close()


def test_a_store_without_rocksdb_has_nothing_to_flush() -> None:
    store = TableStore(Table({}, {}))
    store.flush_at_stop()
    assert store.flushed is None
