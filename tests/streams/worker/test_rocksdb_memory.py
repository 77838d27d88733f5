"""Every partition's RocksDB of the worker's table shares one block cache and one memtable
cap, each table file's index and full Bloom filter held by its reader: real Faust table, real
rocksdict databases; a store written with a former layout still reads back whole."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.stores.rocksdb import RocksDBOptions
from prometheus_client import CollectorRegistry

from streams.worker import rocksdb_memory
from streams.worker.rocksdb_memory import (
    BLOCK_CACHE_BYTES,
    DATA_BLOCK_BYTES,
    DATA_BLOCK_HASH,
    HYPER_CLOCK_CACHE,
    INDEX_AND_FILTERS_IN_CACHE,
    MAX_SIZE_AMPLIFICATION_PERCENT,
    MEMTABLE_BLOOM_RATIO,
    MEMTABLE_BYTES,
    METADATA_BLOCK_BYTES,
    UNIVERSAL_COMPACTION,
    RocksDBMemoryCollector,
    SharedRocksDBOptions,
    memory_of,
    share_memory,
    shared_options,
)
from streams.worker.table_store import ROCKSDB_OPTIONS


def _table(tmp_path: Path, store: str, options: dict[str, Any] | None) -> Any:
    app = faust.App(
        f"rocksdb-memory-{uuid.uuid4().hex}",
        broker="kafka://127.0.0.1:1",
        store=store,
        datadir=str(tmp_path),
    )
    return app.Table("facts", key_type=bytes, value_type=bytes, partitions=4, options=options)


def test_every_partition_db_shares_one_cache_and_one_memtable_cap(tmp_path: Path) -> None:
    table = _table(tmp_path, "rocksdb://", dict(ROCKSDB_OPTIONS))
    shared = share_memory(table)
    assert isinstance(shared, SharedRocksDBOptions)
    assert table.data.rocksdb_options is shared
    assert shared.write_buffer_size == ROCKSDB_OPTIONS["write_buffer_size"]  # Faust's kept
    dbs = [table.data._db_for_partition(p) for p in range(4)]  # as an assignment opens them
    for p, db in enumerate(dbs):
        for i in range(2000):
            db[f"75000000{p}|s|S{i}".encode()] = b"x" * 100
        db.flush()  # to a table file: reads now go through the block cache
    for p, db in enumerate(dbs):
        assert db[f"75000000{p}|s|S7".encode()] == b"x" * 100
        # one cache for all: each DB reports the shared capacity, not its own
        assert db.property_int_value("rocksdb.block-cache-capacity") == BLOCK_CACHE_BYTES
    assert shared.write_buffers.get_buffer_size() == MEMTABLE_BYTES
    memory = memory_of(table, shared)
    assert set(memory) == {"memtables", "table_readers", "block_cache", "block_cache_pinned"}
    # data blocks in the shared cache; each file's index and filter held by its reader
    assert memory["block_cache"] > 0 and memory["table_readers"] > 0
    assert memory["block_cache"] == sum(  # the same cache seen from every DB
        db.property_int_value("rocksdb.block-cache-usage") for db in dbs
    ) / len(dbs)

    registry = CollectorRegistry()
    registry.register(RocksDBMemoryCollector(table, shared))
    assert registry.get_sample_value(
        "sunes_rocksdb_memory_budget_bytes", {"kind": "block_cache"}
    ) == float(BLOCK_CACHE_BYTES)
    assert registry.get_sample_value("sunes_rocksdb_memory_bytes", {"kind": "block_cache"}) == (
        float(shared.cache.get_usage())
    )
    for db in dbs:
        db.close()


def test_a_memory_store_is_left_alone(tmp_path: Path) -> None:
    table = _table(tmp_path, "memory://", None)
    assert share_memory(table) is None


def _recorded(path: Path, section: str) -> dict[str, str]:
    """The options RocksDB recorded for a DB in one section of its newest OPTIONS file."""
    newest = sorted(path.glob("OPTIONS-*"))[-1]
    options: dict[str, str] = {}
    current = ""
    for line in newest.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line
        elif "=" in line and current.startswith(section):
            name, value = line.split("=", 1)
            options[name] = value
    return options


def _table_options(path: Path) -> dict[str, str]:
    """The block-based table options RocksDB recorded for a DB."""
    return _recorded(path, "[TableOptions/BlockBasedTable")


def _faust_options() -> RocksDBOptions:
    table_options = {k: v for k, v in ROCKSDB_OPTIONS.items() if k != "driver"}
    return RocksDBOptions(**table_options, use_rocksdict=True)


def test_index_and_full_bloom_filters_are_held_by_table_readers(tmp_path: Path) -> None:
    assert not INDEX_AND_FILTERS_IN_CACHE
    db = shared_options(_faust_options()).open(tmp_path / "db")
    for i in range(5_000):
        db[f"750000001|d|D{i:06d}".encode()] = b"x" * 50
    db.flush()
    assert db.get(b"750000001|d|absent") is None and db[b"750000001|d|D000007"] == b"x" * 50
    # the file's index and filter in its reader's memory, outside the shared cache
    assert (db.property_int_value("rocksdb.estimate-table-readers-mem") or 0) > 0
    db.close()
    options = _table_options(tmp_path / "db")
    assert options["cache_index_and_filter_blocks"] == "false"
    assert options["index_type"] == "kBinarySearch"
    assert options["partition_filters"] == "false"
    assert options["filter_policy"] == "bloomfilter"


def test_memtables_have_a_bloom_filter_of_whole_keys_inside_their_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gets of keys a memtable lacks skip its skip list; the filter is allocated in the
    memtable's arena, so it counts in the memtables' bytes (the MEMTABLE_BYTES cap)."""
    sizes = {}
    for ratio in (MEMTABLE_BLOOM_RATIO, 0.0):
        monkeypatch.setattr(rocksdb_memory, "MEMTABLE_BLOOM_RATIO", ratio)
        path = tmp_path / str(ratio)
        db = shared_options(_faust_options()).open(path)
        keys = _keys(2_000)
        for i, key in enumerate(keys[:1_000]):
            db[key] = f"v{i}".encode()
        assert all(db[key] == f"v{i}".encode() for i, key in enumerate(keys[:1_000]))
        assert all(db.get(key) is None for key in keys[1_000:])
        sizes[ratio] = db.property_int_value("rocksdb.cur-size-all-mem-tables")
        db.close()
        recorded = _recorded(path, '[CFOptions "default"]')
        assert float(recorded["memtable_prefix_bloom_size_ratio"]) == ratio
        assert recorded["memtable_whole_key_filtering"] == ("true" if ratio else "false")
    bloom_bytes = MEMTABLE_BLOOM_RATIO * _faust_options().write_buffer_size
    assert sizes[MEMTABLE_BLOOM_RATIO] - sizes[0.0] >= bloom_bytes * 0.9
    # a store written without it (the worker before) reads back whole with it
    monkeypatch.setattr(rocksdb_memory, "MEMTABLE_BLOOM_RATIO", MEMTABLE_BLOOM_RATIO)
    db = shared_options(_faust_options()).open(tmp_path / "0.0")
    assert all(db[key] == f"v{i}".encode() for i, key in enumerate(keys[:1_000]))
    assert all(db.get(key) is None for key in keys[1_000:])
    db[keys[1_500]] = b"after"
    assert db[keys[1_500]] == b"after" and db.get(keys[1_501]) is None
    db.close()
    recorded = _recorded(tmp_path / "0.0", '[CFOptions "default"]')
    assert float(recorded["memtable_prefix_bloom_size_ratio"]) == MEMTABLE_BLOOM_RATIO


def _keys(n: int) -> list[bytes]:
    return [f"750000001|d|D{i:06d}".encode() for i in range(n)]


def test_a_store_written_by_an_older_worker_reads_back_whole(tmp_path: Path) -> None:
    """Table files keep the index and filter format they were written with: a store written
    with Faust's own options (block-based 3-bit filters, one index block per file, as the
    worker before this layout) is read by the new options, then written and compacted by them,
    without losing or inventing a key."""
    path = tmp_path / "db"
    old = _faust_options().open(path)
    keys = _keys(20_000)
    for i, key in enumerate(keys[:10_000]):
        old[key] = f"old{i}".encode()
    old.flush()
    old.close()

    new = shared_options(_faust_options()).open(path)
    assert all(new[key] == f"old{i}".encode() for i, key in enumerate(keys[:10_000]))
    assert all(new.get(key) is None for key in keys[10_000:])  # absent: none invented
    for i, key in enumerate(keys[10_000:], start=10_000):
        new[key] = f"new{i}".encode()
    new.flush()
    assert all(new[key] == (f"old{i}" if i < 10_000 else f"new{i}").encode()
               for i, key in enumerate(keys))  # fmt: skip
    new.compact_range(None, None)  # every file rewritten in the new layout
    assert [k for k, _ in new.items()] == keys
    assert new.get(b"750000001|d|absent") is None
    new.close()
    assert _table_options(path)["index_type"] == "kBinarySearch"


def test_a_reopened_store_gets_the_shared_cache_and_layout(tmp_path: Path) -> None:
    """A restart on an intact store: rocksdict would take the existing DB's options from its
    OPTIONS file (an 8 MiB cache of its own, the layout it was created with)."""
    path = tmp_path / "db"
    old = _faust_options().open(path)  # created by an older worker, Faust's own options
    old[b"k"] = b"v"
    old.close()
    shared = shared_options(_faust_options())
    for _ in range(2):  # the upgrade, then a plain restart
        db = shared.open(path)
        assert db[b"k"] == b"v"
        assert db.property_int_value("rocksdb.block-cache-capacity") == BLOCK_CACHE_BYTES
        db[b"k2"] = b"v2"
        db.flush()
        assert db[b"k2"] == b"v2"
        assert shared.cache.get_usage() > 0  # its blocks are in the shared cache
        db.close()
        assert _table_options(path)["index_type"] == "kBinarySearch"


def test_the_cache_is_a_hyper_clock_cache_data_blocks_hashed_compaction_universal(
    tmp_path: Path,
) -> None:
    assert HYPER_CLOCK_CACHE and DATA_BLOCK_HASH and UNIVERSAL_COMPACTION
    db = shared_options(_faust_options()).open(tmp_path / "db")
    db[b"k"] = b"v"
    db.flush()
    assert db[b"k"] == b"v"
    stats = db.property_value("rocksdb.block-cache-entry-stats") or ""
    assert stats.startswith("Block cache AutoHyperClockCache@"), stats[:80]
    db.close()
    assert _table_options(tmp_path / "db")["data_block_index_type"] == "kDataBlockBinaryAndHash"
    assert _table_options(tmp_path / "db")["block_size"] == str(DATA_BLOCK_BYTES)
    recorded = _recorded(tmp_path / "db", '[CFOptions "default"]')
    assert recorded["compaction_style"] == "kCompactionStyleUniversal"
    universal = recorded["compaction_options_universal"]
    assert f"max_size_amplification_percent={MAX_SIZE_AMPLIFICATION_PERCENT};" in universal
    assert "size_ratio=1;" in universal and "min_merge_width=2;" in universal  # defaults kept


def test_stores_of_either_layout_read_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker before (an LRU cache, data blocks searched by binary search alone, leveled
    compaction) and this one read each other's stores whole (an upgrade, a rollback), files
    of both formats and both compactions' placements in one DB, and a full compaction
    rewrites them without losing a key."""
    keys = _keys(30_000)
    values = {key: f"{i}".encode() * (1 + i % 7) for i, key in enumerate(keys[:20_000])}

    def layout(new: bool) -> None:
        monkeypatch.setattr(rocksdb_memory, "HYPER_CLOCK_CACHE", new)
        monkeypatch.setattr(rocksdb_memory, "DATA_BLOCK_HASH", new)
        monkeypatch.setattr(rocksdb_memory, "UNIVERSAL_COMPACTION", new)

    def check(db: Any) -> None:
        assert all(db[key] == value for key, value in values.items() if key in written)
        assert all(db.get(key) is None for key in keys if key not in written)

    for first in (False, True):
        path = tmp_path / f"first-{first}"
        written: set[bytes] = set()
        for new, part in ((first, keys[:10_000]), (not first, keys[10_000:20_000])):
            layout(new)
            db = shared_options(_faust_options()).open(path)
            check(db)  # the other layout's files
            for chunk in range(0, len(part), 1_000):  # 10 table files: compactions run
                for key in part[chunk : chunk + 1_000]:
                    db[key] = values[key]
                    written.add(key)
                db.flush()  # a table file of this layout beside the other's
            check(db)
            db.close()
        for new in (first, not first):
            layout(new)
            db = shared_options(_faust_options()).open(path)
            check(db)
            db.compact_range(None, None)  # every file rewritten in this layout
            check(db)
            assert [k for k, _ in db.items()] == keys[:20_000]
            db.close()


def _write_in_files(db: Any, keys: list[bytes], written: list[bytes]) -> None:
    """Each key's value its last 6 bytes, a table file per 1,000 keys (compactions run)."""
    for chunk in range(0, len(keys), 1_000):
        for key in keys[chunk : chunk + 1_000]:
            db[key] = key[-6:]
            written.append(key)
        db.flush()


def test_stores_of_either_block_size_and_size_amplification_read_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker before (4 KiB data blocks, universal compaction with RocksDB's default
    200 % size amplification) and this one read each other's stores whole (an upgrade, a
    rollback), and each one's compactions keep every key."""
    keys = _keys(30_000)
    path = tmp_path / "db"
    written: list[bytes] = []
    rounds = ((4096, 200), (DATA_BLOCK_BYTES, MAX_SIZE_AMPLIFICATION_PERCENT), (4096, 200))
    for round_, (block, percent) in enumerate(rounds):
        monkeypatch.setattr(rocksdb_memory, "DATA_BLOCK_BYTES", block)
        monkeypatch.setattr(rocksdb_memory, "MAX_SIZE_AMPLIFICATION_PERCENT", percent)
        db = shared_options(_faust_options()).open(path)
        assert all(db[key] == key[-6:] for key in written)
        _write_in_files(db, keys[round_ * 10_000 : (round_ + 1) * 10_000], written)
        assert all(db[key] == key[-6:] for key in written)
        assert db.get(b"750000001|d|absent") is None
        db.close()
        recorded = _recorded(path, '[CFOptions "default"]')["compaction_options_universal"]
        assert f"max_size_amplification_percent={percent};" in recorded
        assert _table_options(path)["block_size"] == str(block)
    db = shared_options(_faust_options()).open(path)
    assert [k for k, _ in db.items()] == keys
    db.close()


def test_stores_of_either_metadata_layout_read_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker before (index and filters in the block cache, partitioned) and this one
    (held by the table readers, whole) read each other's stores whole (an upgrade, a
    rollback); files of both formats in one DB, and each one's compactions keep every key."""
    keys = _keys(30_000)
    path = tmp_path / "db"
    written: list[bytes] = []
    for round_, in_cache in enumerate((True, False, True)):
        monkeypatch.setattr(rocksdb_memory, "INDEX_AND_FILTERS_IN_CACHE", in_cache)
        db = shared_options(_faust_options()).open(path)
        assert all(db[key] == key[-6:] for key in written)
        assert all(db.get(key) is None for key in keys[len(written) :])
        _write_in_files(db, keys[round_ * 10_000 : (round_ + 1) * 10_000], written)
        assert all(db[key] == key[-6:] for key in written)
        assert all(db.get(key) is None for key in keys[len(written) :])
        db.compact_range(None, None)  # every file rewritten in this layout
        assert [k for k, _ in db.items()] == written
        db.close()
        recorded = _table_options(path)
        assert recorded["cache_index_and_filter_blocks"] == str(in_cache).lower()
        assert recorded["index_type"] == ("kTwoLevelIndexSearch" if in_cache else "kBinarySearch")
        assert recorded["partition_filters"] == str(in_cache).lower()
        if in_cache:
            assert recorded["metadata_block_size"] == str(METADATA_BLOCK_BYTES)
