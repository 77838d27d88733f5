"""/metrics at national size: 1,000 establishments over three years, in process.

    .venv/bin/python -m bench.metrics_scale [--establishments 1000] [--days 1095]
        [--stays-per-day 30] [--changed 0.05] [--runs 3] [--worker-gc]

One establishment is simulated for `--days` days (seed 1) through the domain code over a
memory store; its aggregates (every month, reason and deadline of three years) are then given
to `--establishments` registered FINESS. The indicator collector (monitoring.collector) is
then scraped as the worker's /metrics renders it (`IndicatorCollector.exposition`: the kept
text of the establishments that did not change), and the bench prints the series count, the
bytes and the time (median of `--runs`) of:
  - a cold scrape: every establishment changed since the last one (a worker catching up);
  - a steady scrape: `--changed` of them changed (live: national volume is a few events per
    second, so few establishments change between two scrapes);
  - a scrape where none changed.
Then once more each (the same establishments changed again) as /metrics runs it on the
worker's event loop (`IndicatorCollector.serve`, which gives the loop back between slices of
rendering), beside a task that only ticks, as the apply loop would: the scrape's time and the
longest the ticking task waited (the apply loop's longest stall). Never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from bench.common import feed_simulation
from monitoring.collector import IndicatorCollector
from processors.collection import Establishments
from processors.establishment import Establishment
from processors.settings import Settings
from simulator.config import SimulationConfig
from streams.worker import gc_tuning


def source_establishment(days: int, stays_per_day: float, seed: int) -> Establishment:
    """One establishment simulated over `days` days through the domain code."""
    config = SimulationConfig(establishments=1, stays_per_day=stays_per_day, days=days, seed=seed)
    domain = Establishments(Settings())
    events = feed_simulation(domain, config)
    (source,) = domain.all()
    totals = source.aggregates.totals
    print(
        f"   source: 1 establishment × {days} days, {events:,} events, "
        f"{len(totals):,} aggregate keys ({_kinds(totals)}), "
        f"{_deep_size(source.aggregates) / 1e6:.1f} MB in RAM (its dicts, keys, their strings "
        f"and counts; as one flat dict of keys: {_deep_size(totals) / 1e6:.1f} MB)"
    )
    return source


def _kinds(totals: dict[Any, int]) -> str:
    kinds = Counter(type(key).__name__ for key in totals)
    return ", ".join(f"{name} {count:,}" for name, count in kinds.most_common())


def _deep_size(root: object) -> int:
    """Bytes of an object and of everything it holds (dicts, tuples, slots, strings,
    counts), each object once."""
    seen: set[int] = set()
    size, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, tuple | list | set):
            stack.extend(obj)
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, name) for name in obj.__slots__ if hasattr(obj, name))
    return size


def clones(source: Establishment, count: int) -> list[Establishment]:
    """`count` registered establishments holding the source's aggregates."""
    assert source.registry is not None
    out = []
    for i in range(count):
        finess = f"{990000000 + i}"
        record = replace(source.registry, finess=finess, finess_ej=f"{980000000 + i // 10}")
        est = Establishment(finess, source.settings, source.state, record)
        est.aggregates = source.aggregates.copy()
        out.append(est)
    return out


def _changed(establishments: list[Establishment]) -> None:
    """As a new event does: the establishment's derived figures must be computed again."""
    for est in establishments:
        est.load_contribution({})  # an empty contribution: the figures are read again


def _scrape(collector: IndicatorCollector) -> tuple[float, bytes]:
    began = time.perf_counter()
    text = collector.exposition()
    return time.perf_counter() - began, text


def _served(collector: IndicatorCollector) -> tuple[float, float]:
    """`serve()` (what /metrics awaits) on an event loop beside a task that only ticks, as
    the apply loop would: (the scrape's seconds, the longest wait of the ticking task)."""

    async def run() -> tuple[float, float]:
        gaps: list[float] = []
        serving = True

        async def tick() -> None:
            last = time.perf_counter()
            while serving:
                await asyncio.sleep(0)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        began = time.perf_counter()
        await collector.serve()
        seconds = time.perf_counter() - began
        serving = False
        await ticker
        return seconds, max(gaps)

    return asyncio.run(run())


def _series(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.metrics_scale", description=__doc__)
    parser.add_argument("--establishments", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1095, help="history of each establishment")
    parser.add_argument("--stays-per-day", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changed", type=float, default=0.05, help="steady: fraction changed")
    parser.add_argument("--runs", type=int, default=3, help="scrapes per case (the median)")
    parser.add_argument(
        "--worker-gc",
        action="store_true",
        help="the garbage collector as `sunes worker` sets it (streams/worker/gc_tuning.py: "
        "young threshold raised, the loaded heap frozen); default: Python's, whose full "
        "collections walk every establishment's aggregates during a scrape",
    )
    args = parser.parse_args(argv)
    print(
        f"/metrics at scale: {args.establishments:,} establishments × {args.days} days, "
        f"{args.stays_per_day:g} stays/day; cpus {os.cpu_count()}"
    )
    source = source_establishment(args.days, args.stays_per_day, args.seed)
    establishments = clones(source, args.establishments)
    if args.worker_gc:
        gc_tuning.tune()
        gc_tuning.after_recovery()  # as after the worker's recovery: the loaded heap frozen
    print(f"   garbage collector: {'the worker' if args.worker_gc else 'Python'}'s settings")
    collector = IndicatorCollector(lambda: establishments)
    rng = random.Random(args.seed)
    some = rng.sample(establishments, max(1, int(len(establishments) * args.changed)))
    for name, changed in (
        ("cold (all changed)", establishments),
        (f"steady ({len(some):,} changed)", some),
        ("none changed", []),
    ):
        times = []
        for _ in range(args.runs):
            _changed(changed)
            seconds, text = _scrape(collector)
            times.append(seconds)
        _changed(changed)
        served, stall = _served(collector)
        print(
            f"   {name:<24} {_series(text):>9,} series, {len(text) / 1e6:6.1f} MB, "
            f"scrape {sorted(times)[len(times) // 2] * 1000:8,.0f} ms (median of {len(times)}); "
            f"served on a loop {served * 1000:8,.0f} ms, longest stall {stall * 1000:5.0f} ms; "
            f"load {os.getloadavg()[0]:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
