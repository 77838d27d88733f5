"""Every partition's RocksDB of the worker's table shares one block cache (index and filter
blocks in it) and one memtable cap: real Faust table, real rocksdict databases."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streams.worker.rocksdb_memory import (
    BLOCK_CACHE_BYTES,
    MEMTABLE_BYTES,
    RocksDBMemoryCollector,
    SharedRocksDBOptions,
    memory_of,
    share_memory,
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
    # index and filter blocks live in the cache (and L0's are pinned there), not in table
    # readers outside it
    assert memory["block_cache"] > 0 and memory["block_cache_pinned"] > 0
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
