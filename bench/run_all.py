"""Every benchmark in one run, on one broker; prints a table (and writes JSON). Never asserts.

    .venv/bin/python -m bench.run_all [--events N] [--broker apache|external] [--profile]

Phases: simulate the data set; run it through the domain code in-process; start the broker
(or use $KAFKA_BOOTSTRAP_SERVERS); an idle worker for the baseline RSS; publish; raw
consume; one worker end to end; its RSS once loaded; latency at a fixed rate; with
--profile, a second worker end to end under py-spy. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    LoadSampler,
    build_dataset,
    cpu_seconds,
    create_input_topics,
    messages_in_topics,
    publish,
    worker_peak_rss_bytes,
)
from bench.latency import Latency, make_probe, measure_latency
from bench.memory import DEFAULT_STORE, Held, bench_worker, held, idle_worker_rss
from bench.profiling import (
    CACHE_ENTRIES,
    FLUSH_EVERY,
    PySpy,
    domain_apply,
    print_profile,
    py_spy_path,
    summarize,
)
from bench.throughput import WorkerThroughput, follow_worker, raw_consume
from processors.settings import Settings
from streams.brokers import BOOTSTRAP_ENV, make_broker
from streams.testing import WorkerProcess

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATE, GOAL_RATE, GOAL_RATIO = 10_000, 20_000, 0.3


class Run:
    """Phases with their duration and the machine's load, and the rows of the final table."""

    def __init__(self, sampler: LoadSampler) -> None:
        self.sampler = sampler
        self.began = time.monotonic()
        self.phases: list[dict[str, Any]] = []
        self.rows: list[tuple[str, str, str]] = []  # (figure, value, note)
        self.data: dict[str, Any] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        print(f"\n== {name}  (load {_load()})", flush=True)
        began = time.monotonic()
        try:
            yield
        finally:
            ended = time.monotonic()
            mean, peak = self.sampler.between(began, ended)
            self.phases.append(
                {
                    "phase": name,
                    "seconds": round(ended - began, 1),
                    "load1_mean": round(mean, 2),
                    "load1_max": round(peak, 2),
                }
            )
            print(f"   {ended - began:.1f} s, 1-min load mean {mean:.2f} max {peak:.2f}")

    def row(self, figure: str, value: str, note: str = "") -> None:
        self.rows.append((figure, value, note))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ev/s"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _mib(value: int) -> str:
    return f"{value / 2**20:,.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_all", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=200_000, help="events to pre-publish")
    parser.add_argument("--establishments", type=int, default=50)
    parser.add_argument("--stays-per-day", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--broker",
        choices=("apache", "external"),
        default="external" if os.environ.get(BOOTSTRAP_ENV) else "apache",
        help=f"apache: start Kafka from the cached jars; external: ${BOOTSTRAP_ENV}",
    )
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help=f"the workers' state store (default {DEFAULT_STORE}, the worker's own default: "
        "RocksDB in a fresh data dir per worker; memory:// to compare)",
    )
    parser.add_argument("--rate", type=float, default=500.0, help="latency probes per second")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.25,
        help="seconds between two GET /indicators of the latency poller",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the domain code, and py-spy a second worker run",
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="with --profile: py-spy samples C frames too (slower sampling, bigger stacks)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS / "latest.json",
        help="where to write the figures ('-' for nowhere)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs")
    parser.add_argument(
        "--domain-only",
        action="store_true",
        help="stop after the in-process domain phase (no broker, no worker): to compare builds "
        "of processors/ (pure Python vs mypyc, `make compile`)",
    )
    args = parser.parse_args(argv)

    sampler = LoadSampler().start()
    run = Run(sampler)
    log_dir = Path(tempfile.mkdtemp(prefix="sunes-bench-"))
    print(
        f"sunes-stream benchmarks: {args.events:,} events, broker {args.broker}, "
        f"worker store {args.store}, "
        f"{os.cpu_count()} CPUs, load {_load()}, logs in {log_dir}"
    )
    ok = False
    try:
        _run(run, args, log_dir)
        ok = True
    finally:
        sampler.stop()
        _print_table(run)
        total = time.monotonic() - run.began
        loads = [s[1] for s in sampler.samples]
        summary = {
            "total_seconds": round(total, 1),
            "load1_mean": round(sum(loads) / len(loads), 2) if loads else None,
            "load1_max": round(max(loads), 2) if loads else None,
        }
        print(
            f"\ntotal {total:.0f} s; 1-min load average during the run: mean "
            f"{summary['load1_mean']}, max {summary['load1_max']} on {os.cpu_count()} CPUs "
            "(the machine is shared: figures move with it)"
        )
        if str(args.json) != "-":
            _write_json(args, run, summary)
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"worker logs kept in {log_dir}")
    return 0


def _run(run: Run, args: argparse.Namespace, log_dir: Path) -> None:
    with run.phase("simulate the data set"):
        dataset = build_dataset(args.events, args.establishments, args.stays_per_day, args.seed)
        print(
            f"   {dataset.total:,} messages ({dataset.registry} registry records, "
            f"{dataset.events:,} events) in {dataset.generate_seconds:.1f} s; "
            + ", ".join(f"{k} {v:,}" for k, v in dataset.by_label.most_common())
        )
    run.data["dataset"] = {
        "messages": dataset.total,
        "registry": dataset.registry,
        "events": dataset.events,
        "by_label": dict(dataset.by_label),
    }

    with run.phase("domain code in-process (parse + apply)"):
        domain = domain_apply(dataset, profile_events=50_000 if args.profile else 0)
        print(
            f"   parse {domain.parse_seconds:.1f} s + apply {domain.apply_seconds:.1f} s → "
            f"{domain.rate:,.0f} ev/s; {domain.table_writes:,} store writes; "
            f"{domain.stays:,} stays, {domain.entities:,} entities stored, "
            f"{domain.cached_entries:,} cached; rows() {domain.rows_ms:.0f} ms"
        )
        if domain.hotspots:
            print(domain.hotspots)
    run.data["domain"] = {k: v for k, v in asdict(domain).items() if k != "hotspots"}
    parse_us = domain.parse_seconds / domain.events * 1e6
    apply_us = domain.apply_seconds / domain.events * 1e6
    run.row(
        "domain only, in-process",
        _rate(domain.rate),
        f"parse_record {parse_us:.0f} µs + apply {apply_us:.0f} µs per event (memory store, "
        f"cache {CACHE_ENTRIES:,}, flush every {FLUSH_EVERY:,}); the worker parses once",
    )
    if args.domain_only:
        return

    broker = make_broker(args.broker, num_partitions=6)
    with run.phase(f"start the broker ({args.broker})"):
        broker.start()
    try:
        _with_broker(
            run,
            args,
            log_dir,
            broker.bootstrap_servers,
            getattr(broker, "pid", None),
            dataset,
            domain.stays,
        )
    finally:
        with run.phase("stop the broker"):
            broker.stop()


def _with_broker(
    run: Run,
    args: argparse.Namespace,
    log_dir: Path,
    bootstrap: str,
    broker_pid: int | None,
    dataset: Any,
    stays: int,
) -> None:
    create_input_topics(bootstrap)
    already = messages_in_topics(bootstrap)
    if already:
        print(
            f"   warning: the input topics already hold {already:,} messages: every "
            "worker reads them too; the figures are only fair on a fresh broker"
        )

    with run.phase("baseline: an idle worker"):
        idle = idle_worker_rss(bootstrap, f"bench-idle-{uuid.uuid4().hex[:8]}", log_dir, args.store)
        print(f"   RSS {_mib(idle.rss)}; /health after {idle.ready_after:.1f} s")

    with run.phase("publish the data set"):
        count, seconds = publish(bootstrap, dataset.messages)
        print(f"   {count:,} messages in {seconds:.1f} s ({count / seconds:,.0f}/s)")
    run.data["publish"] = {"messages": count, "seconds": seconds}
    expected = dataset.events + already  # messages already there: assumed to be events

    raws = []
    for decoder in ("orjson", "parse_record"):
        with run.phase(f"raw consume (aiokafka, {decoder})"):
            raw = raw_consume(bootstrap, decoder)
            print(f"   {raw.messages:,} messages in {raw.seconds:.2f} s → {raw.rate:,.0f}/s")
            raws.append(raw)
    run.data["raw_consume"] = [asdict(r) | {"rate": r.rate} for r in raws]
    run.row(
        "raw consume (aiokafka + orjson.loads)",
        _rate(raws[0].rate),
        f"{raws[0].messages:,} messages in {raws[0].seconds:.1f} s, no group",
    )
    run.row("raw consume + parse_record", _rate(raws[1].rate), "the validation's share")

    # One fresh worker: it reads everything from the start.
    worker = bench_worker(bootstrap, f"bench-{uuid.uuid4().hex[:8]}", log_dir, args.store)
    try:
        with run.phase("worker end to end"):
            broker_before = cpu_seconds(broker_pid) if broker_pid else None
            tput = _follow(worker, expected)
            broker_cpu = (
                cpu_seconds(broker_pid) - broker_before
                if broker_pid and broker_before is not None
                else None
            )
        _throughput_rows(run, tput, raws[0].rate, broker_cpu, args.store)
        assert worker.process is not None
        pid = worker.process.pid

        with run.phase("memory once loaded"):
            loaded = held(pid, worker.port, worker.data_dir)
        _memory_rows(run, idle.rss, loaded, worker_peak_rss_bytes(pid), stays, args.store)
        run.data["memory"] = {
            "store": args.store,
            "idle_rss": idle.rss,
            "loaded_rss": loaded.rss,
            "peak_rss": worker_peak_rss_bytes(pid),
            "stays": stays,
            "cached_entries": loaded.cached_entries,
            "establishments": loaded.establishments,
            "disk_bytes": loaded.disk_bytes,
        }

        with run.phase(f"latency: {args.rate:.0f} ev/s for {args.latency_seconds:.0f} s"):
            probe = make_probe(dataset.messages, dataset.finess, Settings())
            print(
                f"   probes: stay.discharged of FINESS {probe.finess}, counted by the "
                f"{probe.indicator} {probe.period} denominator"
            )
            lat = measure_latency(
                bootstrap, worker.port, probe, args.rate, args.latency_seconds, args.poll_interval
            )
        _latency_rows(run, lat)
    finally:
        worker.stop()

    if args.profile:
        _profile_worker(run, bootstrap, log_dir, expected, args.store, args.native)


def _follow(worker: WorkerProcess, expected: int) -> WorkerThroughput:
    spawned = time.monotonic()
    worker.start()
    assert worker.process is not None
    return follow_worker(worker.process.pid, worker.port, spawned, time.monotonic(), expected)


def _throughput_rows(
    run: Run, t: WorkerThroughput, raw_rate: float, broker_cpu: float | None, store: str
) -> None:
    best = t.steady_rate
    run.data["worker"] = {k: v for k, v in asdict(t).items() if k != "samples"} | {
        "rate_with_startup": t.rate_with_startup,
        "rate_after_first": t.rate_after_first,
        "samples": [asdict(s) for s in t.samples],
        "broker_cpu_seconds": broker_cpu,
    }
    if not t.complete:
        run.row("worker end to end", "INCOMPLETE", f"{t.applied:,} of {t.expected:,} applied")
        return
    verdict = (
        "below the 10k target"
        if (best or 0) < TARGET_RATE
        else ("meets the 10k target" if (best or 0) < GOAL_RATE else "meets the 20k goal")
    )
    run.row("worker end to end, steady (10→90 %)", _rate(best), f"store {store}; {verdict}")
    run.row(
        "worker end to end, first→last applied",
        _rate(t.rate_after_first),
        f"{t.expected:,} events; first applied {t.first_applied_after:.1f} s after spawn",
    )
    run.row(
        "worker end to end, incl. start-up",
        _rate(t.rate_with_startup),
        f"spawn → all applied {t.done_after:.1f} s (/health after {t.ready_after:.1f} s)",
    )
    run.row(
        "  of which the ingest stage alone",
        _rate(t.ingest_rate),
        "sunes_events_consumed_total, 10→90 %: decode, validate, bundle",
    )
    ratio = (best or 0) / raw_rate if raw_rate else 0.0
    run.row("ratio worker / raw consume", f"{ratio:.3f}×", f"goal ≥ {GOAL_RATIO}×")
    busy = t.cpu_seconds / t.done_after * 100 if t.done_after else 0.0
    note = f"worker (its process and ingest process) busy {busy:.0f} % of one core, spawn → done"
    if broker_cpu is not None and t.done_after:
        note += f"; broker {broker_cpu / t.done_after * 100:.0f} %"
    steady_cpu = f"{t.steady_cpu_us:.0f} µs" if t.steady_cpu_us else "n/a"
    run.row("worker CPU per event (steady)", steady_cpu, note)
    run.row("worker CPU per event (incl. start-up)", f"{t.cpu_us_per_event or 0:.0f} µs")
    if t.steady_main_cpu_us is not None and t.steady_main_busy is not None:
        queued = t.steady_main_queued or 0.0
        run.row(
            "  of which its main thread (steady)",
            f"{t.steady_main_cpu_us:.0f} µs",
            f"the event loop (apply, flush, /metrics; ingest too if SUNES_INGEST=inline) busy "
            f"{t.steady_main_busy * 100:.0f} "
            f"% of the wall time, 10→90 %, queued for a core {queued * 100:.0f} %, idle "
            f"{(1 - t.steady_main_busy - queued) * 100:.0f} % (waiting for Kafka or a stage)",
        )
    if t.steady_child_cpu_us:
        run.row(
            "  of which its ingest process (steady)",
            f"{t.steady_child_cpu_us:.0f} µs",
            "SUNES_INGEST=process: poll, validate, bundle, produce, commit, in its own process",
        )
    run.row(
        "GET /metrics while loading",
        _ms(t.scrape_ms),
        f"median of the whole scrapes, one every 5 s; progress read every 1 s with name[] "
        f"({_ms(t.progress_ms)} median)",
    )


def _memory_rows(run: Run, idle: int, loaded: Held, peak: int, stays: int, store: str) -> None:
    grown = loaded.rss - idle
    run.row(
        "worker RSS idle → loaded",
        f"{_mib(idle)} → {_mib(loaded.rss)}",
        f"peak {_mib(peak)}; store {store}",
    )
    run.row(
        "RSS growth per stored stay",
        f"{grown / stays:,.0f} B" if stays else "n/a",
        f"(RSS loaded − idle) / {stays:,} stays stored (in-process count): RAM is bounded by "
        "the cache, not the history",
    )
    run.row(
        "RSS growth per cached entry",
        f"{grown / loaded.cached_entries:,.0f} B" if loaded.cached_entries else "n/a",
        f"/ {loaded.cached_entries:,} entries (/health cached_entries; the worker's "
        f"--cache-entries {os.environ.get('SUNES_CACHE_ENTRIES', 'default, 100000')})",
    )
    if store.startswith("rocksdb"):
        per_stay = f"; {loaded.disk_bytes / stays:,.0f} B per stored stay" if stays else ""
        run.row(
            "worker state on disk",
            _mib(loaded.disk_bytes),
            f"its --data-dir, RocksDB files as left (not compacted){per_stay}",
        )


def _latency_rows(run: Run, lat: Latency) -> None:
    run.data["latency"] = {
        k: v for k, v in asdict(lat).items() if k not in ("upper_ms", "lower_ms")
    } | {
        f"visible_{which}_p{int(q * 100)}_ms": lat.p(q, which) if lat.upper_ms else None
        for which in ("lower", "mid", "upper")
        for q in (0.5, 0.9, 0.99)
    }
    run.row(
        "latency publish rate",
        f"{lat.achieved_rate:,.0f} ev/s",
        f"{lat.sent:,} probes sent, {lat.seen:,} seen in /indicators",
    )
    if lat.upper_ms:
        for q in (0.5, 0.99):
            run.row(
                f"latency send → /indicators p{int(q * 100)}",
                f"≤ {_ms(lat.p(q, 'upper'))}",
                f"first response showing it; ≥ {_ms(lat.p(q, 'lower'))} (the poll before "
                f"did not), polled every {_ms(lat.poll_ms)}",
            )
    run.row(
        "latency histogram p50 / p99",
        f"{_ms(lat.histogram_p50_ms)} / {_ms(lat.histogram_p99_ms)}",
        f"sunes_processing_latency_seconds, {lat.histogram_count:,} obs., bucket interpolation",
    )
    run.row(
        "GET /indicators?finess=… (1 FINESS)",
        _ms(lat.indicators_ms),
        f"median of {lat.polls:,} polls, while loaded",
    )


def _profile_worker(
    run: Run, bootstrap: str, log_dir: Path, expected: int, store: str, native: bool = False
) -> None:
    if py_spy_path() is None:
        print("\n(py-spy is not installed: `.venv/bin/pip install py-spy` for the worker profile)")
        return
    worker = bench_worker(bootstrap, f"bench-prof-{uuid.uuid4().hex[:8]}", log_dir, store)
    output = log_dir / "worker.pyspy.txt"
    try:
        with run.phase("profile: a 2nd worker under py-spy"):
            spawned = time.monotonic()
            worker.start()
            assert worker.process is not None
            spy = PySpy(worker.process.pid, output, native=native)
            tput = follow_worker(
                worker.process.pid, worker.port, spawned, time.monotonic(), expected
            )
            err = spy.stop()
    finally:
        worker.stop()
    if not output.exists():
        print(f"   py-spy wrote nothing: {err.strip()[-500:]}")
        return
    saved = RESULTS / "worker.pyspy.txt"
    RESULTS.mkdir(exist_ok=True)
    shutil.copyfile(output, saved)
    profile = summarize(output)
    run.row("worker under py-spy, steady", _rate(tput.steady_rate), "sampling at 100 Hz")
    print(f"\n   collapsed stacks: {saved}")
    print_profile(profile)
    run.data["profile"] = asdict(profile)


def _print_table(run: Run) -> None:
    if not run.rows:
        return
    width = max(len(r[0]) for r in run.rows)
    vwidth = max(len(r[1]) for r in run.rows)
    print("\n" + "=" * 100)
    for figure, value, note in run.rows:
        print(f"{figure:<{width}}  {value:>{vwidth}}  {note}")
    print("=" * 100)
    print("phases:")
    for p in run.phases:
        print(
            f"  {p['phase']:<58} {p['seconds']:>6.1f} s  load {p['load1_mean']:.2f} "
            f"(max {p['load1_max']:.2f})"
        )


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else ""


def _write_json(args: argparse.Namespace, run: Run, summary: dict[str, Any]) -> None:
    revision = _git("rev-parse", "--short", "HEAD").strip()
    # Product files changed but not committed (read-only: `git status`), for provenance.
    dirty = [
        line[3:]
        for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith("bench/")
    ]
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": revision or None,
        "uncommitted": dirty,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "args": {k: str(v) for k, v in vars(args).items()},
        "summary": summary,
        "table": [{"figure": f, "value": v, "note": n} for f, v, n in run.rows],
        "phases": run.phases,
        **run.data,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    sys.exit(main())
