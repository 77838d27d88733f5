"""Memory as the history grows: one worker on Apache Kafka, RSS after N1 then N2 events.

    .venv/bin/python -m bench.memory_growth [--before 60000] [--after 240000]
        [--establishments 20] [--stays-per-day 30] [--malloc-arena-max N]
        [--worker-pythonpath DIR]

The same simulation (seed 1) is cut after `--before` events and after `--after` events. The
first part is published and one worker (the defaults: RocksDB store) reads it; once every
event is applied its memory is read; then the rest is published, applied, read again. It
prints, per step, the stays held (distinct stays discharged so far), the RSS and what it is
made of (RssAnon, RssFile; RocksDB's own figures from `sunes_rocksdb_memory_bytes`; the
decoded-entry cache from /health), and the growth per extra stay held. Never asserts.

`--worker-pythonpath DIR` runs the worker from another checkout (e.g. a `git worktree` of
main) to print the figures before a change, on the same run conditions.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    Http,
    build_dataset,
    create_input_topics,
    descendants,
    parse_metrics,
    publish,
)
from bench.memory import bench_worker
from streams.brokers import make_broker
from topics import names

MIB = 1024 * 1024
MEMPROBE = Path(__file__).parent / "memprobe"  # its sitecustomize: the census in the worker
_BUFFER_FULL = re.compile(r"producer buffer full size (\d+)")
_ROCKSDB = re.compile(r'^sunes_rocksdb_memory_bytes\{kind="(\w+)"\} (\S+)$', re.M)


@dataclass
class Step:
    events: int
    stays: int
    rss: int
    anon: int
    file: int
    rocksdb: dict[str, float]
    cached_entries: int
    load: float
    pending_writes: int  # most changelog writes seen waiting in Faust's producer buffer
    census: dict[str, Any] = field(default_factory=dict)  # bench/memprobe, if asked


def ask_probe(folder: Path, what: str = "census", timeout: float = 600.0) -> dict[str, Any]:
    """Ask the worker's memory probe (bench/memprobe) for a census, or for a malloc_trim."""
    done = {p.name for p in folder.glob("census-*.json")}
    (folder / "request").write_text(what)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [p for p in folder.glob("census-*.json") if p.name not in done]
        if fresh:
            found: dict[str, Any] = orjson.loads(fresh[0].read_bytes())
            return found
        time.sleep(0.5)
    return {"error": "no answer from the memory probe"}


def _pending_writes(log: Path) -> int:
    """The largest "producer buffer full size N" Faust logged: changelog writes queued (each
    a FutureMessage with its key and value) faster than its producer sends them."""
    sizes = [int(m) for m in _BUFFER_FULL.findall(log.read_text(errors="replace"))]
    return max(sizes, default=0)


def _status(pid: int) -> dict[str, int]:
    """The memory fields of /proc/PID/status, summed over the worker's process and its
    ingest process (VmHWM: each one's own peak, so an upper bound of the worker's)."""
    out: dict[str, int] = {}
    for each in (pid, *descendants(pid)):
        try:
            lines = Path(f"/proc/{each}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[name] = out.get(name, 0) + int(rest.split()[0]) * 1024
    return out


def _stays(messages: list[tuple[str, bytes, bytes]]) -> int:
    """Distinct stays discharged in these messages: the stays the worker holds."""
    seen = set()
    for topic, key, value in messages:
        if topic == names.STAYS:
            event = orjson.loads(value)
            if event.get("type") == "stay.discharged":
                seen.add((key, event["stay_id"]))
    return len(seen)


def wait_applied(http: Http, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = http.get("/metrics")
        if text is not None and parse_metrics(text.decode()).applied >= expected:
            return
        time.sleep(2.0)
    raise TimeoutError(f"the worker did not apply {expected:,} events in {timeout:.0f} s")


def _measure(
    pid: int,
    http: Http,
    log: Path,
    events: int,
    stays: int,
    settle: float,
    probe: Path | None,
    trim: bool = False,
) -> Step:
    time.sleep(settle)
    status = _status(pid)
    text = (http.get("/metrics") or b"").decode()
    rocksdb = {kind: float(value) for kind, value in _ROCKSDB.findall(text)}
    health = orjson.loads(http.get("/health") or b"{}")
    census = ask_probe(probe) if probe is not None else {}  # after the RSS: it allocates
    if probe is not None and trim:
        census["trimmed"] = ask_probe(probe, "trim")
    return Step(
        events,
        stays,
        status["VmRSS"],
        status.get("RssAnon", 0),
        status.get("RssFile", 0),
        rocksdb,
        int(health.get("cached_entries", 0)),
        os.getloadavg()[0],
        _pending_writes(log),
        census,
    )


def _print_step(step: Step) -> None:
    rocks = ", ".join(f"{k} {v / MIB:.1f}" for k, v in sorted(step.rocksdb.items())) or "n/a"
    print(
        f"   {step.events:>9,} events, {step.stays:>8,} stays held: RSS {step.rss / MIB:,.0f} MiB"
        f" (anon {step.anon / MIB:,.0f}, file {step.file / MIB:,.0f}); RocksDB MiB: {rocks}; "
        f"{step.cached_entries:,} cached entries; up to {step.pending_writes:,} changelog writes "
        f"waited in Faust's producer buffer; load {step.load:.2f}"
    )
    for line in census_lines(step.census):
        print(f"      {line}")


def census_parts(census: dict[str, Any]) -> dict[str, int]:
    """The census's parts in bytes, by name (empty without a census)."""
    if not census or "error" in census:
        return {}
    malloc, py = census["malloc"], census["pymalloc"]
    parts = {
        "glibc malloc in use": malloc["in_use_bytes"] + malloc["mmapped_bytes"],
        "glibc malloc free (held)": malloc["free_bytes"],
        "pymalloc arenas": py.get("arenas", 0) * 1024 * 1024,
        "  pymalloc blocks in use": py.get("allocated_bytes", 0),
        "decoded-entry cache (deep)": sum(c["deep_bytes"] for c in census["state_cache"]),
        "aggregates (deep)": census["aggregates"]["deep_bytes"],
        "producer accumulator (deep)": sum(a["bytes"] for a in census["producer_accumulators"]),
    }
    return parts


def census_lines(census: dict[str, Any]) -> list[str]:
    if not census:
        return []
    if "error" in census:
        return [f"census: {census['error']}"]
    lines = [f"{name}: {value / MIB:,.1f} MiB" for name, value in census_parts(census).items()]
    caches = census["state_cache"]
    lines.append(
        f"(cache {sum(c['entries'] for c in caches):,} entries; aggregates "
        f"{census['aggregates']['keys']:,} keys over {census['aggregates']['establishments']} "
        f"establishments; {census['gc_objects']:,} gc-tracked objects; census took "
        f"{census['seconds']} s)"
    )
    top = ", ".join(f"{n} {b / MIB:,.1f}" for n, b in census["top_types_by_shallow_bytes"][:8])
    lines.append(f"gc-tracked objects by type, shallow MiB: {top}")
    trimmed = census.get("trimmed", {})
    if "rss_after_trim" in trimmed:
        lines.append(
            f"malloc_trim(0): RSS {trimmed['rss_before_trim'] / MIB:,.0f} → "
            f"{trimmed['rss_after_trim'] / MIB:,.0f} MiB"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.memory_growth", description=__doc__)
    parser.add_argument("--before", type=int, default=60_000, help="events of the 1st step")
    parser.add_argument("--after", type=int, default=240_000, help="events of the 2nd step")
    parser.add_argument("--establishments", type=int, default=20)
    parser.add_argument("--stays-per-day", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=10.0, help="s idle before reading")
    parser.add_argument("--malloc-arena-max", type=int, help="MALLOC_ARENA_MAX of the worker")
    parser.add_argument("--worker-pythonpath", help="run the worker from this checkout")
    parser.add_argument(
        "--trim-each-step",
        action="store_true",
        help="after each step's census, malloc_trim(0) in the worker and print the RSS after "
        "(what is live, without glibc's held free memory; it changes what follows)",
    )
    parser.add_argument(
        "--no-census",
        action="store_true",
        help="no memory census in the worker (bench/memprobe: malloc, pymalloc, objects)",
    )
    args = parser.parse_args(argv)

    dataset = build_dataset(args.after, args.establishments, args.stays_per_day, args.seed)
    cut = dataset.registry + args.before  # registry records first, then events
    first, rest = dataset.messages[:cut], dataset.messages[cut:]
    print(
        f"memory growth: {args.establishments} establishments × {args.stays_per_day:g} "
        f"stays/day, {args.before:,} then {args.after:,} events; cpus {os.cpu_count()}"
        + (f"; MALLOC_ARENA_MAX={args.malloc_arena_max}" if args.malloc_arena_max else "")
        + (f"; worker from {args.worker_pythonpath}" if args.worker_pythonpath else "")
    )
    if args.malloc_arena_max:
        os.environ["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
    paths = [] if args.no_census else [str(MEMPROBE)]
    if args.worker_pythonpath:
        paths.append(args.worker_pythonpath)
    if paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)

    broker = make_broker("apache", num_partitions=6)
    broker.start()
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="sunes-memgrowth-") as tmp:
        probe = None
        if not args.no_census:
            probe = Path(tmp) / "memprobe"
            probe.mkdir()
            os.environ["SUNES_MEMPROBE_DIR"] = str(probe)
        try:
            create_input_topics(broker.bootstrap_servers)
            publish(broker.bootstrap_servers, first)
            worker = bench_worker(
                broker.bootstrap_servers, f"mem-{uuid.uuid4().hex[:8]}", Path(tmp)
            )
            worker.start()
            assert worker.process is not None
            http = Http(worker.port)
            try:
                wait_applied(http, args.before, timeout=3600)
                steps.append(
                    _measure(
                        worker.process.pid,
                        http,
                        worker.log_path,
                        args.before,
                        _stays(first),
                        args.settle,
                        probe,
                        args.trim_each_step,
                    )
                )
                _print_step(steps[-1])
                publish(broker.bootstrap_servers, rest)
                wait_applied(http, args.after, timeout=3600)
                steps.append(
                    _measure(
                        worker.process.pid,
                        http,
                        worker.log_path,
                        args.after,
                        _stays(dataset.messages),
                        args.settle,
                        probe,
                        args.trim_each_step,
                    )
                )
                _print_step(steps[-1])
                peak = _status(worker.process.pid)["VmHWM"]
                trimmed = ask_probe(probe, "trim") if probe is not None else {}
            finally:
                http.close()
                worker.stop()
        finally:
            broker.stop()
    a, b = steps
    extra = b.stays - a.stays
    print(
        f"   growth: RSS +{(b.rss - a.rss) / MIB:,.0f} MiB for {extra:,} extra stays → "
        f"{(b.rss - a.rss) / extra:,.0f} B per extra stay held (anon "
        f"{(b.anon - a.anon) / extra:,.0f} B); peak RSS {peak / MIB:,.0f} MiB"
    )
    for kind in sorted(b.rocksdb):
        grown = b.rocksdb[kind] - a.rocksdb.get(kind, 0.0)
        print(f"     RocksDB {kind}: {grown / MIB:+,.1f} MiB ({grown / extra:,.0f} B per stay)")
    before, after = census_parts(a.census), census_parts(b.census)
    for name in after:
        grown = after[name] - before.get(name, 0)
        print(f"     {name}: {grown / MIB:+,.1f} MiB ({grown / extra:,.0f} B per stay)")
    live = [step.census.get("trimmed", {}).get("rss_after_trim") for step in steps]
    if all(live):
        grown = live[1] - live[0]
        print(
            f"   RSS after malloc_trim: {grown / MIB:+,.0f} MiB ({grown / extra:,.0f} B per stay)"
        )
    if "rss_after_trim" in trimmed:
        print(
            f"   malloc_trim(0) at the end: RSS {trimmed['rss_before_trim'] / MIB:,.0f} → "
            f"{trimmed['rss_after_trim'] / MIB:,.0f} MiB (glibc's free memory given back)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
