"""processors/ compiled with mypyc vs pure Python: the domain code in-process, CPU per event.

Two copies of the code in a temporary directory, one compiled with mypyc (scripts/build_mypyc.py,
the product's build), one left as it is; each measured in its own process, alternately,
on the same simulated events: bench.profiling's domain loop (parse_record, then
Establishments.apply + flush every 1,000 events over a MemoryStore, then one rows()). CPU time
(process_time), not wall time, because the machine is shared; the 1-minute load is printed with
every figure. See bench/README.md, "Compiling the domain with mypyc".
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the child imports the domain from its copy (PYTHONPATH), not the parent
    from bench.common import Dataset

ROOT = Path(__file__).resolve().parents[1]
# what the measuring child imports: the domain, its record types, the simulator, the bench
PACKAGES = ("processors", "topics", "simulator", "bench")
SIDES = ("pure", "compiled")
# the worker's default cache, and one small enough that entries are evicted and decoded again
DIGEST_CACHES = (100_000, 500)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mypyc", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=50_000, help="events to simulate")
    parser.add_argument("--rounds", type=int, default=3, help="pure/compiled alternations")
    parser.add_argument("--reps", type=int, default=3, help="domain loops per process")
    parser.add_argument("--opt-level", default="3", help="mypyc's C optimisation level")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=0,
        help="gc.set_threshold(N) in both children (0: CPython's default, 700): GC's share",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.gc_threshold:
            gc.set_threshold(args.gc_threshold)
        print(json.dumps(_measure(args.events, args.reps)))
        return 0
    work = Path(tempfile.mkdtemp(prefix="sunes-bench-mypyc-"))
    try:
        _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _run(args: argparse.Namespace, work: Path) -> None:
    print(
        f"sunes-stream mypyc: {args.events:,} events, {args.rounds} rounds × {args.reps} loops; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; copies in {work}",
        flush=True,
    )
    for side in SIDES:
        for package in PACKAGES:
            shutil.copytree(
                ROOT / package,
                work / side / package,
                ignore=shutil.ignore_patterns("__pycache__", "*.so", "compiled.sha256", "results"),
            )
        (work / side / "scripts").mkdir()
        shutil.copy(ROOT / "scripts" / "build_mypyc.py", work / side / "scripts")
    load = os.getloadavg()[0]
    began, cpu = time.monotonic(), _children_cpu()
    build = subprocess.run(
        [sys.executable, "scripts/build_mypyc.py", "--opt-level", args.opt_level],
        cwd=work / "compiled",
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        raise SystemExit(f"mypyc failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
    # one extension module per compiled module, and the shared library they all call
    modules = len(list((work / "compiled" / "processors").glob("*.so"))) - 1
    print(
        f"compile: {modules} modules in {time.monotonic() - began:.0f} s wall, "
        f"{_children_cpu() - cpu:.0f} s CPU (mypy + gcc), load {load:.2f}",
        flush=True,
    )
    results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for round_ in range(1, args.rounds + 1):
        for side in SIDES:
            child = subprocess.run(
                [
                    *(sys.executable, "-m", "bench.mypyc", "--child"),
                    *("--events", str(args.events), "--reps", str(args.reps)),
                    *("--gc-threshold", str(args.gc_threshold)),
                ],
                cwd=work / side,
                env={**os.environ, "PYTHONPATH": str(work / side)},
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            results[side].append(figures)
            print(
                f"round {round_} {side:8} ({figures['build']}): parse "
                f"{figures['parse_us']:.1f} µs + apply {figures['apply_us']:.1f} µs CPU/event "
                f"(best of {args.reps}; median apply {figures['apply_median_us']:.1f}), rows() "
                f"{figures['rows_ms']:.0f} ms, load {figures['load']:.2f}",
                flush=True,
            )
    for cache in DIGEST_CACHES:
        digests = {figures[f"digest_cache_{cache}"] for side in SIDES for figures in results[side]}
        print(
            f"rows() and every stored entry, cache {cache:,}: "
            + ("identical in both builds" if len(digests) == 1 else f"DIFFER: {sorted(digests)}")
        )
    pure, compiled = (_medians(results[side]) for side in SIDES)
    print(
        f"median over rounds: apply {pure['apply_us']:.1f} → {compiled['apply_us']:.1f} µs "
        f"({pure['apply_us'] / compiled['apply_us']:.2f}×), parse + apply "
        f"{pure['parse_us'] + pure['apply_us']:.1f} → "
        f"{compiled['parse_us'] + compiled['apply_us']:.1f} µs "
        f"({(pure['parse_us'] + pure['apply_us']) / (compiled['parse_us'] + compiled['apply_us']):.2f}×), "
        f"rows() {pure['rows_ms']:.0f} → {compiled['rows_ms']:.0f} ms"
    )


def _medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    keys = [key for key, value in rounds[0].items() if isinstance(value, float)]
    return {key: statistics.median(r[key] for r in rounds) for key in keys}


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def _measure(events: int, reps: int) -> dict[str, float | str]:
    from bench.common import build_dataset
    from bench.profiling import domain_apply
    from processors import rules

    dataset = build_dataset(events, 50, 30.0, 1)
    digests = {f"digest_cache_{cache}": _digest(dataset, cache) for cache in DIGEST_CACHES}
    runs = [domain_apply(dataset, clock=time.process_time) for _ in range(reps)]
    apply = [run.apply_seconds / run.events * 1e6 for run in runs]
    return {
        "build": "mypyc" if str(rules.__file__).endswith(".so") else "pure Python",
        "parse_us": min(run.parse_seconds / run.events * 1e6 for run in runs),
        "apply_us": min(apply),
        "apply_median_us": statistics.median(apply),
        "rows_ms": min(run.rows_ms for run in runs),
        "load": os.getloadavg()[0],
        **digests,
    }


def _digest(dataset: Dataset, cache_entries: int) -> str:
    """sha256 of rows() and of every stored entry (key and bytes) after the data set, applied
    as the agent does (a flush every FLUSH_EVERY events): the two builds must agree."""
    from bench.profiling import FLUSH_EVERY
    from processors.collection import Establishments
    from processors.settings import Settings
    from processors.store import MemoryStore
    from topics.records import EstablishmentRecord, Event
    from topics.validation import parse_record

    store = MemoryStore()
    domain = Establishments(Settings(), store, cache_entries)
    for start in range(0, len(dataset.messages), FLUSH_EVERY):
        for _, _, value in dataset.messages[start : start + FLUSH_EVERY]:
            record = parse_record(value)
            if isinstance(record, EstablishmentRecord):
                domain.set_registry(record)
            elif isinstance(record, Event):
                domain.apply(record)
        domain.flush()
    digest = hashlib.sha256(repr(domain.rows()).encode())
    for key, value in sorted(store.data.items()):
        digest.update(key + b"\0" + value + b"\0")
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
