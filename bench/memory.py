"""Memory: the worker's resident set before and after it holds the data; its state on disk."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.common import Http, dir_bytes, worker_rss_bytes
from streams.testing import WorkerProcess

# The worker's default store: the facts table on RocksDB, one DB per partition under
# --data-dir. Every bench worker gets its own data dir (a fresh app id must not find another
# run's tables there).
DEFAULT_STORE = "rocksdb://"


def bench_worker(
    bootstrap_servers: str, app_id: str, log_dir: Path, store: str = DEFAULT_STORE
) -> WorkerProcess:
    """A `sunes worker` (not started) with its own data dir under log_dir."""
    return WorkerProcess(
        bootstrap_servers, app_id, log_dir, "--store", store, data_dir=log_dir / f"state-{app_id}"
    )


@dataclass
class IdleWorker:
    rss: int  # VmRSS once started, joined and idle, with nothing to hold
    ready_after: float  # spawn → /health answers 200 (recovery done)


def idle_worker_rss(
    bootstrap_servers: str,
    app_id: str,
    log_dir: Path,
    store: str = DEFAULT_STORE,
    settle: float = 5.0,
) -> IdleWorker:
    """A worker on empty topics: its RSS after `settle` s of idling (the baseline)."""
    spawned = time.monotonic()
    worker = bench_worker(bootstrap_servers, app_id, log_dir, store).start()
    ready = time.monotonic()
    try:
        assert worker.process is not None
        time.sleep(settle)  # the group settles after /health first answers
        return IdleWorker(worker_rss_bytes(worker.process.pid), ready - spawned)
    finally:
        worker.stop()


@dataclass
class Held:
    rss: int  # VmRSS after loading, caught up
    cached_entries: int  # /health: decoded state entries in the worker's cache
    establishments: int
    disk_bytes: int  # the worker's --data-dir (RocksDB files, as they are: not compacted)


def held(pid: int, port: int, data_dir: Path, settle: float = 2.0) -> Held:
    time.sleep(settle)
    http = Http(port)
    try:
        health = orjson.loads(http.get("/health") or b"{}")  # 503 while recovering: {}
    finally:
        http.close()
    return Held(
        worker_rss_bytes(pid),
        int(health.get("cached_entries", 0)),
        int(health.get("establishments", 0)),
        dir_bytes(data_dir),
    )
