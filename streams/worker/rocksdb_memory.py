"""RocksDB's memory in the worker: one budget for every partition's DB, and its gauges.

Faust opens one RocksDB per table partition, each with its own block cache and memtables,
and keeps the index and filter blocks of every open table file outside any cache (table
readers): RocksDB's memory then grows with the partitions and with the data on disk. Here
every DB of the worker shares one block cache that also holds the index and filter blocks,
and one write buffer manager caps the memtables of all DBs together: RocksDB's share of the
RSS is bounded by BLOCK_CACHE_BYTES + MEMTABLE_BYTES whatever the history kept
(docs/monitoring.md, "Memory budget").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# The worker's RocksDB budget, shared by every partition's DB.
BLOCK_CACHE_BYTES = 64 * 1024 * 1024  # data, index and filter blocks
MEMTABLE_BYTES = 32 * 1024 * 1024  # memtables of all DBs (flushed to disk beyond)

# RocksDB property → the `kind` label of sunes_rocksdb_memory_bytes
PROPERTIES = {
    "rocksdb.cur-size-all-mem-tables": "memtables",
    "rocksdb.estimate-table-readers-mem": "table_readers",
}


# RocksDBOptions kept as the table set them
_KEPT = (
    "max_open_files",
    "write_buffer_size",
    "max_write_buffer_number",
    "target_file_size_base",
    "bloom_filter_size",
    "ttl",
)


class SharedRocksDBOptions(RocksDBOptions):
    """Faust's options for the rocksdict driver, with one cache and one memtable cap shared
    by every DB opened through them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cache = rocksdict.Cache(BLOCK_CACHE_BYTES)
        self.write_buffers = rocksdict.WriteBufferManager(MEMTABLE_BYTES, False)

    def as_options(self) -> rocksdict.Options:
        options: rocksdict.Options = super().as_options()  # Faust's, then ours over them
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        # index and filter blocks in the (bounded) cache, not held per open file; L0's
        # pinned there, as they are read by every get
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.write_buffers)
        return options


def share_memory(table: Any) -> SharedRocksDBOptions | None:
    """Give a Faust table's RocksDB store (rocksdict driver) the shared options, before any of
    its DBs is opened (they open when partitions are assigned). None for another store."""
    store = table.data
    options = getattr(store, "rocksdb_options", None)
    if not isinstance(options, RocksDBOptions) or not options.use_rocksdict:
        return None
    kept = {name: getattr(options, name) for name in _KEPT}  # Faust's values, from the table
    shared = SharedRocksDBOptions(**kept, block_cache_size=BLOCK_CACHE_BYTES, use_rocksdict=True)
    store.rocksdb_options = shared
    return shared


def memory_of(table: Any, options: SharedRocksDBOptions) -> dict[str, int]:
    """Bytes RocksDB holds in RAM by kind, summed over the table's open DBs."""
    totals = dict.fromkeys(PROPERTIES.values(), 0)
    for db in list(getattr(table.data, "_dbs", {}).values()):
        for prop, kind in PROPERTIES.items():
            totals[kind] += db.property_int_value(prop) or 0
    totals["block_cache"] = options.cache.get_usage()  # shared: counted once
    totals["block_cache_pinned"] = options.cache.get_pinned_usage()
    return totals


class RocksDBMemoryCollector(Collector):
    def __init__(self, table: Any, options: SharedRocksDBOptions) -> None:
        self._table = table
        self._options = options

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "sunes_rocksdb_memory_bytes",
            "RAM held by the worker's RocksDB by kind (memtables, table_readers, block_cache "
            "incl. index and filter blocks, block_cache_pinned: the part of block_cache in use).",
            labels=["kind"],
        )
        for kind, value in memory_of(self._table, self._options).items():
            gauge.add_metric([kind], value)
        yield gauge
        budget = GaugeMetricFamily(
            "sunes_rocksdb_memory_budget_bytes",
            "The worker's RocksDB budget by kind: block_cache and memtables, shared by every "
            "partition's DB.",
            labels=["kind"],
        )
        budget.add_metric(["block_cache"], BLOCK_CACHE_BYTES)
        budget.add_metric(["memtables"], MEMTABLE_BYTES)
        yield budget
