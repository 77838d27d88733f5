"""What a purge costs: the daily pass that finds nothing, and one that purges everything.

    .venv/bin/python -m bench.purge [--events 100000] [--establishments 10]

A simulated history (bench.common.build_dataset) goes through
`processors.collection.Establishments` over a `MemoryStore` (in-process, no Kafka, no
RocksDB); then every establishment is purged at a clock that purges nothing (the worker's
daily pass within the horizon: a scan of its stays, documents and recipients), then at a
clock past everything (in the worker's chunks). Prints seconds and entries/s; never asserts.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.common import build_dataset
from processors.collection import Establishments
from processors.settings import Settings
from streams.worker.establishments import PURGE_CHUNK
from topics.validation import parse_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--establishments", type=int, default=10)
    args = parser.parse_args()
    dataset = build_dataset(args.events, args.establishments)
    collection = Establishments(Settings(), cache_entries=100_000)
    latest = datetime(2000, 1, 1, tzinfo=UTC)
    for _, _, value in dataset.messages:
        record = parse_record(value)
        collection.apply(record)
        for stamp in getattr(record, "__dataclass_fields__", {}):
            moment = getattr(record, stamp)
            if isinstance(moment, datetime) and moment > latest:
                latest = moment
    collection.flush()
    entries = len(collection.store.data)  # type: ignore[attr-defined]
    print(f"{args.events:,} events, {args.establishments} establishments, {entries:,} entries")
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")

    began = time.perf_counter()
    chunks = 0
    for finess in list(collection.by_finess):
        while True:
            chunks += 1
            if collection.purge(finess, latest, PURGE_CHUNK).done:
                break
    idle = time.perf_counter() - began
    print(
        f"daily pass, nothing to purge: {idle:.2f} s for all, {chunks} chunks "
        f"({idle / entries * 1e6:.1f} µs/entry, {idle / chunks * 1000:.0f} ms per chunk)"
    )

    days = Settings().retention_days + 800
    clock = latest + timedelta(days=days)
    counts: Counter[str] = Counter()
    chunks = 0
    began = time.perf_counter()
    for finess in list(collection.by_finess):
        while True:
            result = collection.purge(finess, clock, PURGE_CHUNK)
            counts.update(result.counts)
            chunks += 1
            if result.done:
                break
    spent = time.perf_counter() - began
    total = sum(counts.values())
    print(
        f"purge of everything: {total:,} entries in {chunks} chunks, {spent:.2f} s "
        f"({total / spent:,.0f} entries/s, {spent / chunks * 1000:.0f} ms per chunk); "
        + ", ".join(f"{kind} {count:,}" for kind, count in sorted(counts.items()))
    )
    print(f"left in the store: {len(collection.store.data):,} entries")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
