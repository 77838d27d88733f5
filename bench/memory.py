"""Memory: the worker's resident set before and after it holds the data, per open stay."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.common import Http, rss_bytes
from tests.streams.worker_process import WorkerProcess


@dataclass
class IdleWorker:
    rss: int  # VmRSS once started, joined and idle, with nothing to hold
    ready_after: float  # spawn → /health answers


def idle_worker_rss(
    bootstrap_servers: str, app_id: str, log_dir: Path, settle: float = 5.0
) -> IdleWorker:
    """A worker on empty topics: its RSS after `settle` s of idling (the baseline)."""
    spawned = time.monotonic()
    worker = WorkerProcess(bootstrap_servers, app_id, log_dir, *worker_args(log_dir)).start()
    ready = time.monotonic()
    try:
        assert worker.process is not None
        time.sleep(settle)  # group join and recovery happen after /health first answers
        return IdleWorker(rss_bytes(worker.process.pid), ready - spawned)
    finally:
        worker.stop()


def worker_args(log_dir: Path) -> tuple[str, ...]:
    """Extra `sunes worker` flags: its data dir (unused by memory://) away from the tree."""
    return ("--data-dir", str(log_dir / "data"))


@dataclass
class Held:
    rss: int  # VmRSS after loading, caught up
    open_entities: int  # /health: stays + documents + MSS Pro recipients held
    establishments: int


def held(pid: int, port: int, settle: float = 2.0) -> Held:
    time.sleep(settle)
    http = Http(port)
    try:
        health = orjson.loads(http.get("/health") or b"{}")
    finally:
        http.close()
    return Held(
        rss_bytes(pid), int(health.get("open_entities", 0)), int(health.get("establishments", 0))
    )
