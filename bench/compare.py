"""End-to-end worker throughput under several environments, on the same data and broker.

Faust reads most of its settings from the environment when the app does not set them
(PRODUCER_LINGER, STREAM_BUFFER_MAXSIZE, BROKER_MAX_POLL_RECORDS...), so tuning can be tried
without touching the product:

    .venv/bin/python -m bench.compare --events 50000 \\
        --variant base --variant linger10ms:PRODUCER_LINGER=0.01

Each variant is `name[:KEY=VALUE[,KEY=VALUE...]]`; every run is a fresh worker (fresh app id)
reading the whole data set from the start. `SUNES_BIN=PATH` runs another build's worker
(e.g. a pristine main's `.venv/bin/sunes`), to alternate code versions on one broker and one
data set. Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import streams.testing
from bench.common import build_dataset, create_input_topics, publish, worker_peak_rss_bytes
from bench.memory import DEFAULT_STORE, bench_worker
from bench.profiling import PySpy, print_profile, summarize
from bench.throughput import WorkerThroughput, follow_worker
from streams.brokers import BOOTSTRAP_ENV, make_broker

RESULTS = Path(__file__).resolve().parent / "results"
# A variant's setting naming the `sunes` executable to run instead of this tree's
SUNES_BIN = "SUNES_BIN"


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, settings = text.partition(":")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    return name, env


def run_variant(
    bootstrap: str,
    log_dir: Path,
    expected: int,
    env: dict[str, str],
    profile: bool = False,
    store: str = DEFAULT_STORE,
) -> tuple[WorkerThroughput, int]:
    """One fresh worker with `env` added to its environment; (throughput, peak RSS).
    With `profile`, py-spy samples it and its summary is printed."""
    env = dict(env)
    command = env.pop(SUNES_BIN, None)  # another build's `sunes` (a pristine main, say)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # WorkerProcess passes the bench's environment on
    saved_command = streams.testing.SUNES
    if command is not None:
        streams.testing.SUNES = command
    worker = bench_worker(bootstrap, f"bench-cmp-{uuid.uuid4().hex[:8]}", log_dir, store)
    try:
        spawned = time.monotonic()
        worker.start()
        assert worker.process is not None
        stacks = log_dir / f"{worker.app_id}.pyspy.txt"
        spy = PySpy(worker.process.pid, stacks) if profile else None
        result = follow_worker(
            worker.process.pid, worker.port, spawned, time.monotonic(), expected, poll=1.0
        )
        if spy is not None:
            spy.stop()
            if stacks.exists():
                RESULTS.mkdir(exist_ok=True)
                kept = shutil.copy(stacks, RESULTS / stacks.name)
                print(f"   collapsed stacks: {kept}")
                print_profile(summarize(stacks))
        return result, worker_peak_rss_bytes(worker.process.pid)
    finally:
        worker.stop()
        streams.testing.SUNES = saved_command
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--establishments", type=int, default=50)
    parser.add_argument("--variant", action="append", default=[], help="name[:KEY=VALUE,...]")
    parser.add_argument("--profile", action="store_true", help="py-spy every run")
    parser.add_argument(
        "--store", default=DEFAULT_STORE, help=f"workers' store (default {DEFAULT_STORE})"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant, in turn")
    parser.add_argument(
        "--broker",
        choices=("apache", "external"),
        default="external" if os.environ.get(BOOTSTRAP_ENV) else "apache",
    )
    args = parser.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant or ["base"]]

    dataset = build_dataset(args.events, args.establishments)
    log_dir = Path(tempfile.mkdtemp(prefix="sunes-bench-cmp-"))
    results: list[tuple[str, WorkerThroughput, int, float]] = []
    try:
        with make_broker(args.broker, num_partitions=6) as broker:
            create_input_topics(broker.bootstrap_servers)
            publish(broker.bootstrap_servers, dataset.messages)
            for round_ in range(args.repeat):
                for name, env in variants:
                    load = os.getloadavg()[0]
                    print(f"== {name} (run {round_ + 1}) {env or ''}  load {load:.2f}")
                    tput, peak = run_variant(
                        broker.bootstrap_servers,
                        log_dir,
                        dataset.events,
                        env,
                        args.profile,
                        args.store,
                    )
                    results.append((name, tput, peak, os.getloadavg()[0]))
    except BaseException:
        print(f"worker logs kept in {log_dir}")
        raise
    shutil.rmtree(log_dir, ignore_errors=True)

    print(f"\n{dataset.events:,} events, {os.cpu_count()} CPUs, worker store {args.store}")
    print(
        f"{'variant':<24} {'steady ev/s':>12} {'1st→last':>10} {'CPU µs/ev':>10} "
        f"{'main µs/ev':>10} {'child µs/ev':>11} {'busy':>5} {'idle':>5} {'peak RSS':>10} {'progress p50/max ms':>20} "
        f"{'load1':>6}"
    )
    for name, t, peak, load in results:
        steady = f"{t.steady_rate:,.0f}" if t.steady_rate else "n/a"
        after = f"{t.rate_after_first:,.0f}" if t.rate_after_first else "n/a"
        cpu = f"{t.steady_cpu_us:,.0f}" if t.steady_cpu_us else "n/a"
        main = f"{t.steady_main_cpu_us:,.0f}" if t.steady_main_cpu_us else "n/a"
        child = f"{t.steady_child_cpu_us:,.0f}" if t.steady_child_cpu_us is not None else "n/a"
        busy = f"{t.steady_main_busy * 100:.0f} %" if t.steady_main_busy else "n/a"
        queued = t.steady_main_queued or 0.0
        idle = f"{(1 - (t.steady_main_busy or 0.0) - queued) * 100:.0f} %"
        print(
            f"{name:<24} {steady:>12} {after:>10} {cpu:>10} {main:>10} {child:>11} {busy:>5} {idle:>5} "
            f"{peak / 2**20:>7.0f} MiB "
            f"{f'{t.progress_ms:.0f} / {t.progress_max_ms:.0f}':>20} {load:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
