"""Time to correct figures after a restart: local store intact, then lost (changelog replay).

    .venv/bin/python -m bench.restart [--events 100000] [--establishments 20]

On a fresh Apache Kafka: the simulation's first `--events` events are published and one
worker (the defaults: RocksDB store) applies them all; its /indicators are kept as the
expected figures and it is stopped cleanly. Then, with the same app id:
  1. intact: a worker on the same --data-dir (its RocksDB as the first one left it);
  2. lost: the --data-dir deleted, a worker that rebuilds its table from the changelog.
Each prints spawn → /health 200 (the table's recovery done) and spawn → /indicators equal to
the expected figures, with the entities stored (stays, documents, MSS Pro recipients, read
from the RocksDB files) and the changelog records replayed. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from rocksdict import AccessType, Options, Rdict

from bench.common import (
    Http,
    build_dataset,
    create_input_topics,
    entities,
    messages_in_topics,
    publish,
    worker_rss_bytes,
)
from bench.memory_growth import wait_applied
from processors.state import parse_store_key
from streams.brokers import make_broker
from streams.testing import WorkerProcess


class PatientWorker(WorkerProcess):
    """A bench worker that may take longer than a test's minute to recover."""

    def wait_until(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        super().wait_until(condition, max(seconds, 3600.0), what)


def _canonical(rows: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) for row in rows)


def stored(data_dir: Path) -> Counter[str]:
    """Entries by kind in every RocksDB (one per partition) under a stopped worker's dir."""
    counts: Counter[str] = Counter()
    for db_dir in sorted(p.parent for p in data_dir.rglob("CURRENT")):
        db = Rdict(str(db_dir), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key in db.keys():  # noqa: SIM118 (an Rdict, not a dict)
                if isinstance(key, bytes) and key.count(b"|") >= 2:
                    counts[parse_store_key(key)[1]] += 1
        finally:
            db.close()
    return counts


def _restart(worker: PatientWorker, expected: list[bytes], what: str) -> None:
    spawned = time.monotonic()
    worker.start()
    ready = time.monotonic() - spawned
    worker.wait_until(lambda: _canonical(worker.indicators()) == expected, 3600, "the figures")
    correct = time.monotonic() - spawned
    assert worker.process is not None
    print(
        f"   {what:<40} /health 200 after {ready:6.1f} s, correct figures after "
        f"{correct:6.1f} s; RSS then {worker_rss_bytes(worker.process.pid) / 2**20:,.0f} MiB; "
        f"load {os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.restart", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--establishments", type=int, default=20)
    parser.add_argument("--stays-per-day", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    dataset = build_dataset(args.events, args.establishments, args.stays_per_day, args.seed)
    print(
        f"restart: {args.establishments} establishments × {args.stays_per_day:g} stays/day, "
        f"{dataset.events:,} events; cpus {os.cpu_count()}"
    )
    broker = make_broker("apache", num_partitions=6)
    broker.start()
    with tempfile.TemporaryDirectory(prefix="sunes-restart-") as tmp:
        log_dir = Path(tmp)
        data_dir = log_dir / "state"
        app_id = f"restart-{uuid.uuid4().hex[:8]}"

        def worker() -> PatientWorker:
            return PatientWorker(
                broker.bootstrap_servers, app_id, log_dir, "--store", "rocksdb://",
                data_dir=data_dir,
            )  # fmt: skip

        try:
            create_input_topics(broker.bootstrap_servers)
            publish(broker.bootstrap_servers, dataset.messages)
            first = worker().start()
            http = Http(first.port)
            try:
                wait_applied(http, dataset.events, timeout=3600)
                time.sleep(5.0)  # the last bundle's changelog writes and commit
                expected = _canonical(first.indicators())
                assert first.process is not None
                print(
                    f"   first worker: all applied, RSS {worker_rss_bytes(first.process.pid) / 2**20:,.0f}"
                    f" MiB; load {os.getloadavg()[0]:.2f}"
                )
            finally:
                http.close()
                first.stop()
            counts = stored(data_dir)
            # the records a lost store replays (the active segment is never compacted)
            changelog = messages_in_topics(broker.bootstrap_servers, [f"{app_id}-facts-changelog"])
            print(
                f"   {entities(counts):,} entities stored ({sum(counts.values()):,} entries, "
                f"{len(expected):,} figure rows); {changelog:,} changelog records"
            )
            intact = worker()
            try:
                _restart(intact, expected, "local store intact")
            finally:
                intact.stop()
            shutil.rmtree(data_dir)
            lost = worker()
            try:
                _restart(lost, expected, "local store lost (changelog replay)")
            finally:
                lost.stop()
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
