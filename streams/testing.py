"""A real `sunes worker` process for tests and benchmarks: start, query, kill, restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.brokers._common import free_port, terminate

SUNES = str(Path(sys.executable).with_name("sunes"))


class ChildProcess:
    """A `sunes` command run by a test: SIGKILL, a clean stop, its log's tail."""

    name = "the process"
    process: subprocess.Popen[bytes] | None
    log_path: Path

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """A clean stop (SIGTERM; SIGKILL after 30 s)."""
        if self.process is not None:
            terminate(self.process, 30, self.name)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class WorkerProcess(ChildProcess):
    name = "the worker"

    def __init__(
        self, brokers: str, app_id: str, log_dir: Path, *extra: str, data_dir: Path | None = None
    ) -> None:
        self.brokers = brokers
        self.app_id = app_id
        self.port = free_port()
        self.log_path = log_dir / f"worker-{app_id}-{self.port}.log"
        # its own RocksDB state (the default store); give a killed worker's to restart on it
        self.data_dir = data_dir or log_dir / f"state-{app_id}-{self.port}"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, settings_env: dict[str, str] | None = None) -> WorkerProcess:
        """Start it with flags; or, given `settings_env`, with those SUNES_* variables only
        (as a container would be: the web port and data dir are then taken from them)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if settings_env is not None:
            self.port = int(settings_env["SUNES_WEB_PORT"])
            self.data_dir = Path(settings_env["SUNES_DATA_DIR"])
            self.process = subprocess.Popen(
                [SUNES, "worker", "--loglevel", "info"],
                stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
                env={**env, **settings_env},
            )  # fmt: skip
            self.wait_until(lambda: self.get("/health") is not None, 60, "the worker to be ready")
            return self
        self.process = subprocess.Popen(
            [SUNES, "worker", "--brokers", self.brokers, "--app-id", self.app_id,
             "--web-port", str(self.port), "--loglevel", "info", "--partitions", "4",
             "--data-dir", str(self.data_dir), *self.extra],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        # /health answers 503 until the table's recovery has ended
        self.wait_until(lambda: self.get("/health") is not None, 60, "the worker to be ready")
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                body = response.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        return body if path == "/metrics" else orjson.loads(body)

    def fetch(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        """(HTTP status, body) of a GET, errors included; with the worklists' bearer token."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        request = urllib.request.Request(self.url(path), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def indicators(self) -> list[dict[str, Any]]:
        rows = self.get("/indicators")
        return rows if isinstance(rows, list) else []

    def wait_until(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out after {seconds}s waiting for {what}:\n{self.log_tail()}")


def publish(
    brokers: str, messages: Iterable[tuple[str, bytes | None, bytes]], **overrides: Any
) -> int:
    """Publish (topic, key, value) messages; return how many."""

    async def run() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=5, **overrides)
        await producer.start()
        count = 0
        try:
            for topic, key, value in messages:
                await producer.send(topic, value, key=key)
                count += 1
            await producer.flush()
        finally:
            await producer.stop()
        return count

    return asyncio.run(run())


def rows_of(rows: Iterable[dict[str, Any]], finess: set[str]) -> list[dict[str, Any]]:
    """The rows of some establishments, in a canonical order, ratios rounded for comparison."""
    picked = [{**r, "ratio": round(r["ratio"], 9)} for r in rows if r["finess"] in finess]
    return sorted(picked, key=lambda r: (r["finess"], r["indicator"], r["period"]))
