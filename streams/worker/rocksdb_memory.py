"""RocksDB's memory in the worker: one budget for every partition's DB, and its gauges.

Faust opens one RocksDB per table partition, each with its own block cache and memtables:
RocksDB's memory then grew with the partitions. Here every DB of the worker shares one block
cache (data blocks) and one write buffer manager that caps the memtables of all DBs together
(docs/monitoring.md, "Memory budget").

Each table file's index and filter blocks are held by its table reader, outside the cache
(`INDEX_AND_FILTERS_IN_CACHE`, below): whole Bloom filters of FILTER_BITS_PER_KEY bits per key
(~1 % false positives), not Faust's 3 bits (~24 %), as most of the domain's gets are of keys
that do not exist yet (a new document's entries). That part grows with the keys stored, ~2 B
a key (`table_readers` in sunes_rocksdb_memory_bytes). Table files written before keep their
own index and filter format; RocksDB reads each file by its own (test_rocksdb_memory.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.worker.local_state import without_wal

# The worker's RocksDB budget, shared by every partition's DB.
BLOCK_CACHE_BYTES = 64 * 1024 * 1024  # data blocks
MEMTABLE_BYTES = 32 * 1024 * 1024  # memtables of all DBs (flushed to disk beyond)
# the partitions of an index or filter, read into the cache one by one (the layout before:
# INDEX_AND_FILTERS_IN_CACHE)
METADATA_BLOCK_BYTES = 4096
# full (not Faust's block-based) Bloom filters: ~1 % false positives at 10 bits per key
FILTER_BITS_PER_KEY = 10
# A Bloom filter over each memtable's keys, this share of its size (allocated in the
# memtable's arena: within MEMTABLE_BYTES): a get of a key the memtable lacks (nearly every
# get) skips its skip-list seek. Callgrind, bench.state over 30k events (memtables only):
# 6,080 → 2,220 instructions per get, +580 per event in memtable inserts; Establishments.apply
# (its gets included) -10 %.
MEMTABLE_BLOOM_RATIO = 0.02
# Universal ("tiered") compaction rather than leveled: the table's keys (FINESS|kind|id)
# spread new entities over the whole key space, so every L0 file overlaps every bottom-level
# file and each leveled L0 compaction rewrote the whole bottom level (bytes compacted per
# event growing with the history: bench.state 242 / 602 / 1,143 B at 100k-500k / 500k-1M /
# 1M-2M events), dropping its blocks from the cache with its files. Universal compaction
# merges sorted runs of similar sizes: 209 / 211 B at 100k-500k / 500k-1M. A get checks
# one more sorted run's filter on average (6.7 → 7.6 per event at 500k-1M).
UNIVERSAL_COMPACTION = True
# Universal compaction merges every sorted run into one (a full merge) once the newer runs
# add up to this share of the last, oldest one (RocksDB's default: 200 %). A get of a key
# the memtables lack checks the filter of every sorted run, and most of the domain's gets
# are of keys that do not exist yet (a new document's entries): fewer runs, cheaper gets.
# bench.state at 500k-1M events: filter checks 7.7 → 6.7 per event, absent keys 4.8 → 3.8
# µs each, for RocksDB's background threads 5.3 → 5.8 µs per event; 20 % took 5.8 checks
# but 11.2 µs in the background (full merges of the whole history too often).
MAX_SIZE_AMPLIFICATION_PERCENT = 50
# The shared block cache a HyperClockCache rather than an LRU cache: its look-ups take no
# shard mutex and touch fewer cache lines, and every get past the memtables looks one up
# (a filter partition; for a key found, an index partition and a data block too).
HYPER_CLOCK_CACHE = True
# A hash index in each data block: a found key's slot without a binary search over the
# block's restart points (files written from now on; a file keeps the format it was written
# in, and the worker before reads these). bench.state at 500k-1M events, both together:
# gets 19.3 → 16.0 µs per event of the main thread (absent keys 4.6 → 3.5 µs each).
DATA_BLOCK_HASH = True

# Data blocks of 8 KiB (RocksDB's default: 4 KiB), before compression. Keys of one kind are
# ordered by id, and ids made about the same time (a day's stays, their documents) are read
# about the same time: a bigger block brings more of the entries read next into the cache
# with the one asked, and compresses better. bench.state at 500k-1M events, with the 50 %
# size amplification: data blocks read from files 0.50 → 0.37 per event, found keys 11.1 →
# 10.3 µs each, disk 92 → 85 MiB; 16 KiB: 0.31 read, but 12.7 µs each (more to read and
# decompress per miss); 1 KiB (4 KiB): 1.00 read (0.46), disk 122 MiB (92).
DATA_BLOCK_BYTES = 8192

# Where each table file's index and filter blocks live. False: held by the file's table
# reader, outside the block cache, whole (one binary-searched index, one full filter). True
# (the worker before, sessions 8-12): charged to the block cache, partitioned in
# METADATA_BLOCK_BYTES blocks read one at a time (a two-level index, partitioned filters), each
# file's top level and L0's partitions pinned: RocksDB's memory bounded by the cache and the
# memtables whatever the history kept. Why the change: a get of a key the memtables lack checks
# one filter per sorted run (~3.6 per absent key at 2M events), and a found key reads an index;
# in the cache, each is a search of the file's top level, a cache look-up and a partition's
# block, in the reader one probe of memory. bench.state --stats, 500k-2M events, alternated with
# the layout before (load ~1.2): the store's gets 17.1 → 9.8-10.6 µs per event (an absent key
# 3,826 → 1,693-1,814 ns, a found one 11,598 → 8,052-8,756), the main thread 78.8 → 63.5-69.0
# µs. The price: 6.8 MiB of table readers at 2M events (3.2M keys, ~2.2 B a key, ~23 B a stay),
# beside the 64 MiB cache; files are kept open (Faust's max_open_files: 90 % of the process's
# file limit), as a reader closed and opened again reads its index and filter whole.
# (Session 8 had measured it at 1M events: 12 µs per read that missed the domain's cache with
# them outside the cache, 17 partitioned in it, 195 whole in it; it chose the bound then.)
INDEX_AND_FILTERS_IN_CACHE = False

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
    "ttl",
)


class SharedRocksDBOptions(RocksDBOptions):
    """Faust's options for the rocksdict driver, with one cache and one memtable cap shared
    by every DB opened through them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cache = (
            rocksdict.Cache.new_hyper_clock_cache(BLOCK_CACHE_BYTES, 0)  # its size: automatic
            if HYPER_CLOCK_CACHE
            else rocksdict.Cache(BLOCK_CACHE_BYTES)
        )
        self.write_buffers = rocksdict.WriteBufferManager(MEMTABLE_BYTES, False)
        self.statistics = False  # RocksDB's counters (bench.state --stats): a few % per get
        self.opened: rocksdict.Options | None = None  # the last DB's, whose get_statistics()

    def as_options(self) -> rocksdict.Options:
        options: rocksdict.Options = super().as_options()  # Faust's, then ours over them
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(FILTER_BITS_PER_KEY, False)
        table.set_block_size(DATA_BLOCK_BYTES)
        table.set_block_cache(self.cache)
        if INDEX_AND_FILTERS_IN_CACHE:
            # in the (bounded) cache, in partitions read one at a time; each file's top
            # level pinned, and L0's partitions, as they are read by every get
            table.set_index_type(rocksdict.BlockBasedIndexType.two_level_index_search())
            table.set_partition_filters(True)
            table.set_metadata_block_size(METADATA_BLOCK_BYTES)
            table.set_cache_index_and_filter_blocks(True)
            table.set_pin_top_level_index_and_filter(True)
            table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        else:
            table.set_cache_index_and_filter_blocks(False)  # held by the table readers
        if DATA_BLOCK_HASH:
            table.set_data_block_index_type(rocksdict.DataBlockIndexType.binary_and_hash())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.write_buffers)
        if UNIVERSAL_COMPACTION:
            options.set_compaction_style(rocksdict.DBCompactionStyle.universal())
            # RocksDB's defaults but this one (max_merge_width 2^31-1, not 2^32-1: no limit)
            universal = rocksdict.UniversalCompactOptions()
            universal.max_size_amplification_percent = MAX_SIZE_AMPLIFICATION_PERCENT
            options.set_universal_compaction_options(universal)
        if MEMTABLE_BLOOM_RATIO:
            options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
            options.set_memtable_whole_key_filtering(True)  # whole keys: no prefix extractor
        if self.statistics:
            options.enable_statistics()
        return options

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        """Faust's open for rocksdict (which ignores `read_only` too), with these options
        given for the default column family as well. Why: on a DB that exists (a restart on
        an intact store), rocksdict takes that family's options from the DB's OPTIONS file,
        so the shared cache (each DB got its own 8 MiB one), the memtable cap and the table
        layout applied only to a DB created by this worker."""
        options = self.opened = self.as_options()
        access = (
            rocksdict.AccessType.read_write()
            if self.ttl is None
            else rocksdict.AccessType.with_ttl(self.ttl)
        )
        db = rocksdict.Rdict(
            str(path), options=options, column_families={"default": options}, access_type=access
        )
        db.set_read_options(rocksdict.ReadOptions())
        db.set_write_options(without_wal())  # every write, Faust's too: local_state.py
        return db


def share_memory(table: Any) -> SharedRocksDBOptions | None:
    """Give a Faust table's RocksDB store (rocksdict driver) the shared options, before any of
    its DBs is opened (they open when partitions are assigned). None for another store."""
    store = table.data
    options = getattr(store, "rocksdb_options", None)
    if not isinstance(options, RocksDBOptions) or not options.use_rocksdict:
        return None
    shared = shared_options(options)
    store.rocksdb_options = shared
    return shared


def shared_options(options: RocksDBOptions) -> SharedRocksDBOptions:
    """The worker's options from Faust's (the table's): what `share_memory` installs, and
    what bench.state opens its RocksDB with."""
    kept = {name: getattr(options, name) for name in _KEPT}  # Faust's values, from the table
    return SharedRocksDBOptions(**kept, block_cache_size=BLOCK_CACHE_BYTES, use_rocksdict=True)


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
            "of data blocks, block_cache_pinned: the part of block_cache in use).",
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
