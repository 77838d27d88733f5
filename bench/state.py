"""The worker's state in one process: the domain over a real RocksDB, as the history grows.

    .venv/bin/python -m bench.state [--events 100000,500000,2000000]

One simulated history is fed incrementally through `processors.collection.Establishments`
over a RocksDB store (rocksdict, the worker's options), with the worker's default cache and
garbage collector, flushed every --flush-every events (the worker flushes once per bundle).
At each size: the domain's events/s and CPU per event (this thread's and RocksDB's
background threads'), the process's RSS, what the store holds, and its bytes on disk once
flushed and compacted; with --stats, where the reads that miss the domain's cache go. At the end, a restart on the intact local store:
`Establishments(..., store=reopened).recover()`. Prints figures, never asserts; no Kafka.

The simulator runs in a forked child (its own state grows with the history and would
otherwise count in the RSS); its time is not in the rates.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import orjson
from faust.stores.rocksdb import RocksDBOptions
from rocksdict import WriteBatch

from bench.common import (
    dir_bytes,
    entities,
    peak_rss_bytes,
    percentile,
    rss_bytes,
    store_counts,
)
from processors.collection import Establishments
from processors.settings import Settings
from processors.state import STAY, UNIT_KINDS
from simulator.config import SimulationConfig
from simulator.generator import generate
from streams.worker import gc_tuning
from streams.worker.rocksdb_memory import shared_options
from streams.worker.table_store import ROCKSDB_OPTIONS
from topics import names
from topics.records import EstablishmentRecord, Event
from topics.validation import parse_record

DEFAULT_SIZES = "100000,500000,2000000"
CHUNK = 1000  # valid messages per transfer from the simulator


class RocksStore:
    """A processors.store.KeyValueStore over one rocksdict.Rdict (raw bytes), opened as the
    worker opens each partition's: Faust's RocksDBOptions from the table's options
    (streams.worker.table_store.ROCKSDB_OPTIONS), with the worker's shared cache, memtable cap
    and index/filter layout over them (streams.worker.rocksdb_memory.shared_options)."""

    def __init__(self, path: Path, *, statistics: bool = False) -> None:
        table_options = {k: v for k, v in ROCKSDB_OPTIONS.items() if k != "driver"}
        self.options = shared_options(RocksDBOptions(**table_options, use_rocksdict=True))
        self.options.statistics = statistics
        self.path = path
        self.db = self.options.open(path)
        # KeyValueStore.get: the DB's own method, no Python frame (as the worker's, bound
        # to the bundle's partition)
        self.get: Callable[[bytes], bytes | None] = self.db.get

    def set(self, key: bytes, value: bytes) -> None:
        self.db[key] = value

    def delete(self, key: bytes) -> None:
        self.db.delete(key)

    def write(self, changes: Sequence[tuple[bytes, bytes | None]]) -> None:
        batch = WriteBatch(raw_mode=True)  # one batch per flush, as the worker's store
        for key, value in changes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self.db.write(batch)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for key, value in self.db.items(from_key=prefix):  # a seek, as the worker's store
            if not key.startswith(prefix):
                break
            yield key, value

    def compact(self) -> None:
        """Memtables to files, then a full compaction: the bytes that stay on disk."""
        self.db.flush(True)
        if hasattr(self.db, "compact_range"):
            self.db.compact_range(None, None)

    def close(self) -> None:
        self.db.close()

    def counters(self) -> dict[str, int]:
        """RocksDB's statistics (--stats) and the properties that say where a get goes."""
        found: dict[str, int] = {}
        options = self.options.opened
        if options is not None and self.options.statistics:
            for line in (options.get_statistics() or "").splitlines():
                name, sep, rest = line.partition(" COUNT : ")
                if sep:
                    found[name.removeprefix("rocksdb.")] = int(rest.split()[0])
        for level in range(7):
            found[f"files L{level}"] = (
                self.db.property_int_value(f"rocksdb.num-files-at-level{level}") or 0
            )
        found["memtables bytes"] = (
            self.db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
        )
        found["block cache bytes"] = self.options.cache.get_usage()
        found["table readers bytes"] = (
            self.db.property_int_value("rocksdb.estimate-table-readers-mem") or 0
        )
        return found


class GcClock:
    """--stats: CPU time in Python's garbage collector, by generation."""

    def __init__(self) -> None:
        self.nanoseconds = Counter[str]()
        self.total = 0  # ns, every generation
        self._start = 0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time_ns()
        else:
            spent = time.thread_time_ns() - self._start
            self.total += spent
            self.nanoseconds[f"gc{info['generation']} ns"] += spent
            self.nanoseconds[f"gc{info['generation']} runs"] += 1


class CountingStore(RocksStore):
    """--stats: the domain's reads that missed its cache, by kind, and how many found no key."""

    def __init__(self, path: Path, gc_clock: GcClock, *, statistics: bool = False) -> None:
        super().__init__(path, statistics=statistics)
        self.reads: Counter[str] = Counter()
        self.absent: Counter[str] = Counter()
        # this thread's CPU in the store's gets and writes: it does not move with the
        # machine's load as a get's wall time does (and a clock read, a system call, is a
        # point where the thread may lose its core: wall times taken here mean nothing)
        self.nanoseconds = Counter[str]()
        read = self.db.get
        split = bytes.split
        cpu_clock = time.thread_time_ns
        spent = self.nanoseconds
        # a thread CPU clock read is a system call (~0.6 µs here): what two reads around
        # nothing measure is taken off each get's CPU
        self.clock_ns = int(
            percentile([float(-cpu_clock() + cpu_clock()) for _ in range(999)], 0.5)
        )

        def get(key: bytes) -> bytes | None:
            kind = split(key, b"|", 2)[1].decode()
            self.reads[kind] += 1
            c0, g0 = cpu_clock(), gc_clock.total
            value: bytes | None = read(key)  # its bytes may start a collection: not counted
            cpu = cpu_clock() - c0 - (gc_clock.total - g0) - self.clock_ns
            spent["get cpu"] += cpu
            if value is None:
                self.absent[kind] += 1
                spent["absent get cpu"] += cpu
            return value

        self.get = get

    def write(self, changes: Sequence[tuple[bytes, bytes | None]]) -> None:
        c0 = time.thread_time_ns()
        super().write(changes)
        self.nanoseconds["write cpu"] += time.thread_time_ns() - c0


def _simulate(config: SimulationConfig, events: int, out: Connection) -> None:
    """In the child: the registry records, then `events` valid events, in chunks."""
    chunk: list[bytes] = []
    applied = 0
    for message in generate(config):
        if not message.valid:
            continue
        chunk.append(message.value)
        if message.topic != names.ESTABLISHMENTS:
            applied += 1
        if len(chunk) >= CHUNK or applied >= events:
            out.send(chunk)
            chunk = []
        if applied >= events:
            break
    out.send(None)
    out.close()


@dataclass
class Checkpoint:
    events: int
    seconds: float  # wall time of parse + apply + flush so far (waits for the simulator excluded)
    cpu: float  # process CPU so far in those spans (RocksDB background threads included)
    segment_rate: float  # events/s since the previous checkpoint
    rss: int
    peak_rss: int
    cached: int
    establishments: int
    stays: int
    entities: int  # stays + documents + recipients
    units: int  # stored contributions (what recover reads)
    keys: int
    disk: int  # bytes of the RocksDB dir after flush + compaction
    live_disk: int  # the same before them, as the run left it (WAL, memtables not flushed)
    counters: dict[str, int]  # RocksStore.counters() before the compaction, and CountingStore's
    settled: dict[str, int]  # RocksStore.counters() after it (the next segment starts there)


def _checkpoint(
    domain: Establishments,
    store: RocksStore,
    events: int,
    seconds: float,
    cpu: float,
    main_cpu_ns: int,
    parse_cpu_ns: int,
    gc_clock: GcClock | None,
    previous: Checkpoint | None,
) -> Checkpoint:
    rss, peak = rss_bytes(os.getpid()), peak_rss_bytes(os.getpid())  # before the key scan
    counters = store.counters()
    counters["main thread ns"] = main_cpu_ns
    counters["parse ns"] = parse_cpu_ns
    if gc_clock is not None:
        counters.update(gc_clock.nanoseconds)
    if isinstance(store, CountingStore):
        for name in ("get cpu", "absent get cpu", "write cpu"):
            counters[f"{name} ns"] = store.nanoseconds[name]
        counters["reads"] = sum(store.reads.values())
        counters["absent"] = sum(store.absent.values())
        for kind, n in store.reads.items():
            counters[f"reads {kind}"] = n
            counters[f"absent {kind}"] = store.absent[kind]
    counts = store_counts(store)
    live_disk = dir_bytes(store.path)
    store.compact()
    settled = store.counters()
    done = previous.events if previous else 0
    span = seconds - (previous.seconds if previous else 0.0)
    return Checkpoint(
        events,
        seconds,
        cpu,
        (events - done) / span if span > 0 else 0.0,
        rss,
        peak,
        len(domain.cache.entries),
        len(domain.by_finess),
        counts[STAY],
        entities(counts),
        sum(counts[k] for k in UNIT_KINDS),
        sum(counts.values()),
        dir_bytes(store.path),
        live_disk,
        counters,
        settled,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.state", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--events",
        default=DEFAULT_SIZES,
        help=f"sizes at which to measure, comma-separated, increasing (default {DEFAULT_SIZES})",
    )
    parser.add_argument("--establishments", type=int, default=20)
    parser.add_argument("--stays-per-day", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-entries", type=int, default=100_000)
    parser.add_argument("--flush-every", type=int, default=1000, help="events per flush")
    parser.add_argument("--keep", action="store_true", help="keep the RocksDB dir")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="Python's default garbage collector, not the worker's (streams/worker/gc_tuning.py)",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="count the reads that miss the domain's cache, and RocksDB's statistics (slower)",
    )
    args = parser.parse_args(argv)
    sizes = sorted({int(s.replace("_", "")) for s in args.events.split(",") if s.strip()})

    work = Path(tempfile.mkdtemp(prefix="sunes-bench-state-"))
    try:
        _run(args, sizes, work)
    finally:
        if args.keep:
            print(f"RocksDB kept in {work / 'facts.db'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _run(args: argparse.Namespace, sizes: list[int], work: Path) -> None:
    config = SimulationConfig(
        establishments=args.establishments,
        stays_per_day=args.stays_per_day,
        days=None,
        seed=args.seed,
    )
    settings = Settings()
    baseline = rss_bytes(os.getpid())
    print(
        f"sunes-stream state: sizes {', '.join(f'{s:,}' for s in sizes)} events; "
        f"{args.establishments} establishments × {args.stays_per_day:g} stays/day, seed "
        f"{args.seed}; cache {args.cache_entries:,} entries, flush every {args.flush_every:,} "
        f"events; one RocksDB in {work}; {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.2f}; RSS before any event {baseline / 2**20:.0f} MiB",
        flush=True,
    )
    gc_clock = GcClock() if args.stats else None
    store = (
        CountingStore(work / "facts.db", gc_clock, statistics=True)
        if gc_clock is not None
        else RocksStore(work / "facts.db")
    )
    domain = Establishments(settings, store=store, cache_entries=args.cache_entries)
    if not args.default_gc:
        gc_tuning.tune()  # as `sunes worker`: the young threshold, the start-up heap frozen
    registry: list[EstablishmentRecord] = []

    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_simulate, args=(config, sizes[-1], send), daemon=True
    )
    child.start()
    send.close()
    checkpoints: list[Checkpoint] = []
    events = 0
    seconds = cpu = 0.0
    main_cpu = 0  # ns of this thread's CPU (the process's minus RocksDB's background threads)
    parse_cpu = 0  # ns of it in parse_record
    pending = list(sizes)
    began = time.monotonic()
    try:
        while pending:
            chunk = receive.recv()
            if chunk is None:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            m0 = time.thread_time_ns()
            # the chunk parsed first: parse_record's CPU does not depend on the history, so
            # its growth from one segment to the next is the process's (a bigger heap, colder
            # CPU caches), not the domain's work
            records = [parse_record(value) for value in chunk]
            parse_cpu += time.thread_time_ns() - m0
            for record in records:
                if isinstance(record, EstablishmentRecord):
                    registry.append(record)
                domain.apply(record)
                if not isinstance(record, Event):
                    continue
                events += 1
                at_size = events == pending[0]
                if at_size or events % args.flush_every == 0:
                    domain.flush()
                if at_size:
                    seconds += time.perf_counter() - t0
                    cpu += time.process_time() - c0
                    main_cpu += time.thread_time_ns() - m0
                    point = _checkpoint(
                        domain,
                        store,
                        events,
                        seconds,
                        cpu,
                        main_cpu,
                        parse_cpu,
                        gc_clock,
                        checkpoints[-1] if checkpoints else None,
                    )
                    checkpoints.append(point)
                    _print_checkpoint(point, time.monotonic() - began)
                    _print_counters(point, checkpoints[-2] if len(checkpoints) > 1 else None)
                    pending.pop(0)
                    t0, c0 = time.perf_counter(), time.process_time()
                    m0 = time.thread_time_ns()
                    if not pending:
                        break
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
            main_cpu += time.thread_time_ns() - m0
    finally:
        receive.close()
        child.join(10)
        if child.is_alive():
            child.kill()
    if pending:
        print(f"   the simulation ended at {events:,} events, before {pending[0]:,}")
    if not checkpoints:
        return

    # A restart on the intact local store: reopen it, read the contributions back.
    rows = _canonical(domain)
    del domain
    store.close()
    t0, c0 = time.perf_counter(), time.process_time()
    reopened = RocksStore(work / "facts.db")
    restarted = Establishments(settings, store=reopened, cache_entries=args.cache_entries)
    units = restarted.recover()
    recover_seconds = time.perf_counter() - t0
    recover_cpu = time.process_time() - c0
    for record in registry:
        restarted.set_registry(record)
    same = _canonical(restarted) == rows
    worklists = _time_worklists(restarted)
    reopened.close()

    _print_table(checkpoints, args.cache_entries)
    last = checkpoints[-1]
    print(
        f"restart on the intact store: reopen + recover() {recover_seconds:.2f} s "
        f"(CPU {recover_cpu:.2f} s), {units:,} units read ({last.units:,} stored) for "
        f"{len(restarted.by_finess)} establishments, "
        f"{units / recover_seconds:,.0f} units/s; rows after recover "
        f"{'identical' if same else 'DIFFERENT'} ({len(rows):,} rows)"
    )
    print(worklists)


def _time_worklists(domain: Establishments) -> str:
    """The worklist of one establishment's DS 1.1 rows: each seeks to that establishment's
    entries in the store (KeyValueStore.items(prefix)), as the worker's table store does."""
    finess = min(domain.by_finess)
    rows = [r for r in domain.rows(finess) if r.indicator == "DS1.1"]
    timings: list[float] = []
    units = 0
    for row in rows:
        t0 = time.perf_counter()
        units += len(domain.units(finess, row.indicator, row.period))
        timings.append(time.perf_counter() - t0)
    if not timings:
        return "worklists: no DS 1.1 row"
    return (
        f"worklists (DS 1.1 of {finess}, {len(rows)} rows, {units:,} units): "
        f"p50 {percentile(timings, 0.5) * 1000:,.0f} ms, max {max(timings) * 1000:,.0f} ms "
        "per list"
    )


def _canonical(domain: Establishments) -> list[bytes]:
    return sorted(orjson.dumps(r.as_json(), option=orjson.OPT_SORT_KEYS) for r in domain.rows())


def _print_checkpoint(p: Checkpoint, elapsed: float) -> None:
    print(
        f"   {p.events:>10,} events: {p.segment_rate:,.0f} ev/s since the last size, RSS "
        f"{p.rss / 2**20:,.0f} MiB, {p.stays:,} stays, disk {p.disk / 2**20:,.1f} MiB "
        f"({p.live_disk / 2**20:,.1f} before the flush and compaction) "
        f"({elapsed:.0f} s in; load {os.getloadavg()[0]:.2f})",
        flush=True,
    )


# RocksDB's statistics printed per segment (--stats)
_STATISTICS = (
    "memtable.hit",
    "memtable.miss",
    "l0.hit",
    "l1.hit",
    "l2andup.hit",
    "bloom.filter.useful",
    "bloom.filter.full.positive",
    "bloom.filter.full.true.positive",
    "block.cache.data.hit",
    "block.cache.data.miss",
    "block.cache.index.hit",
    "block.cache.index.miss",
    "block.cache.filter.hit",
    "block.cache.filter.miss",
    "number.keys.read",
    "flush.write.bytes",
    "number.block.decompressed",
    "bytes.decompressed.to",
    "number.block.compressed",
    "compact.read.bytes",
    "compact.write.bytes",
    "compaction.total.time.cpu_micros",
)


def _print_counters(p: Checkpoint, previous: Checkpoint | None) -> None:
    """Where the segment's reads went: the domain's cache misses (--stats), RocksDB's
    statistics over the segment, and the files per level before the checkpoint's compaction."""
    # the checkpoint's own flush + full compaction out: from the counters after it
    now, before = p.counters, {**previous.counters, **previous.settled} if previous else {}
    events = p.events - (previous.events if previous else 0)

    def delta(name: str) -> int:
        return now.get(name, 0) - before.get(name, 0)

    cpu = (p.cpu - (previous.cpu if previous else 0.0)) * 1e9
    main = delta("main thread ns")
    print(
        f"      CPU µs per event in the segment: {cpu / events / 1000:.1f}, of which this thread "
        f"{main / events / 1000:.1f} (parse_record {delta('parse ns') / events / 1000:.1f}), "
        f"RocksDB's background threads {(cpu - main) / events / 1000:.1f}"
    )
    if "gc0 runs" in now or "gc2 runs" in now:
        print(
            "      garbage collector: "
            + ", ".join(
                f"gen{g} {delta(f'gc{g} runs'):,} runs {delta(f'gc{g} ns') / events / 1000:.1f} "
                "µs per event"
                for g in range(3)
            )
        )
    levels = " ".join(f"L{n}:{now[f'files L{n}']}" for n in range(7) if now[f"files L{n}"])
    print(
        f"      files {levels or 'none'}, memtables {now['memtables bytes'] / 2**20:.1f} MiB, "
        f"block cache {now['block cache bytes'] / 2**20:.1f} MiB, table readers "
        f"{now['table readers bytes'] / 2**20:.1f} MiB"
    )
    if "reads" not in now:
        return
    reads = delta("reads")
    kinds = sorted(
        {name.split(" ", 1)[1] for name in now if name.startswith("reads ")},
        key=lambda kind: -delta(f"reads {kind}"),
    )
    by_kind = ", ".join(
        f"{kind} {delta(f'reads {kind}') / events:.2f} ({delta(f'absent {kind}') / events:.2f})"
        for kind in kinds
    )
    absent, absent_cpu = delta("absent"), delta("absent get cpu ns")
    present, present_cpu = reads - absent, delta("get cpu ns") - absent_cpu
    print(
        "      in the store, this thread's CPU (the collector's pauses out): gets "
        f"{delta('get cpu ns') / events / 1000:.1f} µs per event ({present_cpu / events / 1000:.1f}"
        f" for keys found, {absent_cpu / events / 1000:.1f} for absent keys), per get "
        f"{present_cpu / max(present, 1):,.0f} ns found, {absent_cpu / max(absent, 1):,.0f} ns "
        f"absent; writes {delta('write cpu ns') / events / 1000:.1f} µs per event"
    )
    print(
        f"      store reads per event {reads / events:.2f}, absent {delta('absent') / events:.2f}; "
        f"by kind (absent): {by_kind}"
    )
    if "memtable.hit" in now:
        print(
            "      RocksDB per event: "
            + ", ".join(f"{name} {delta(name) / events:.3f}" for name in _STATISTICS)
        )


def _print_table(points: list[Checkpoint], cache: int) -> None:
    header = (
        f"{'events':>10} {'ev/s':>7} {'ev/s seg':>8} {'CPU µs/ev':>9} {'RSS MiB':>8} "
        f"{'peak MiB':>8} {'cached':>8} {'stays':>8} {'entities':>9} {'units':>9} "
        f"{'keys':>9} {'disk MiB':>8} {'B/stay':>6}"
    )
    print("\n" + "=" * len(header))
    print(header)
    for p in points:
        print(
            f"{p.events:>10,} {p.events / p.seconds:>7,.0f} {p.segment_rate:>8,.0f} "
            f"{p.cpu / p.events * 1e6:>9,.0f} {p.rss / 2**20:>8,.0f} {p.peak_rss / 2**20:>8,.0f} "
            f"{p.cached:>8,} {p.stays:>8,} {p.entities:>9,} {p.units:>9,} {p.keys:>9,} "
            f"{p.disk / 2**20:>8,.1f} {p.disk / p.stays if p.stays else 0:>6,.0f}"
        )
    print("=" * len(header))
    print(
        "ev/s: parse_record + Establishments.apply + flush, cumulative / since the previous "
        "size; CPU: the process's (RocksDB threads included); RSS: VmRSS of this process "
        f"(the simulator runs apart), cache capped at {cache:,} entries; disk: the RocksDB "
        "dir after flush + full compaction (one DB; the worker has one per partition)"
    )


if __name__ == "__main__":
    sys.exit(main())
