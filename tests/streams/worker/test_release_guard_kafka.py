"""One release at a time on an app id, on a real broker: a worker finding a member of
another release in its groups (an older worker, by its Kafka client id) waits for it to
leave, then starts and counts exact; if it stays, the worker refuses to start (exit 2) and
says what to do."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from streams.brokers._common import free_port
from streams.testing import SUNES, WorkerProcess, publish
from streams.worker.release_guard import WAIT_SECONDS
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows

pytestmark = pytest.mark.kafka


@contextmanager
def older_member(brokers: str, group: str, client: str) -> Iterator[threading.Event]:
    """A member of `group` with an older release's client id (Faust's or aiokafka's default),
    in its own thread until the yielded event is set (it then leaves the group)."""
    joined, leave = threading.Event(), threading.Event()

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            f"{group}-topic", bootstrap_servers=brokers, group_id=group, client_id=client,
            session_timeout_ms=6000, heartbeat_interval_ms=1000,
        )  # fmt: skip
        await consumer.start()
        try:
            while not leave.is_set():
                await consumer.getmany(timeout_ms=200)
                joined.set()
        finally:
            await consumer.stop()  # LeaveGroup: gone at once

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert joined.wait(60), "the older member did not join"
    try:
        yield leave
    finally:
        leave.set()
        thread.join(30)


def test_a_worker_refuses_to_start_next_to_an_older_release(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    app_id = f"guard-{uuid.uuid4().hex[:6]}"
    with older_member(kafka_bootstrap_servers, app_id, "faust-0.11.3"):
        started = time.monotonic()
        done = subprocess.run(
            [SUNES, "worker", "--brokers", kafka_bootstrap_servers, "--app-id", app_id,
             "--data-dir", str(tmp_path / "state"), "--web-port", str(free_port())],
            capture_output=True, text=True, timeout=WAIT_SECONDS + 90,
        )  # fmt: skip
        waited = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: workers of another release still run on this app id" in done.stderr
    assert f"(faust-0.11.3 in {app_id}; this release is sunes-b3-" in done.stderr
    assert "Stop every worker of the app id" in done.stderr
    assert waited >= WAIT_SECONDS  # it waited for the member to leave before refusing
    assert not (tmp_path / "state").exists()  # refused before touching its state


def test_a_worker_waits_for_an_older_release_to_leave_then_counts_exact(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    messages, finess = dataset(seed=43, establishments=2, days=8)
    app_id = f"guard-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(kafka_bootstrap_servers, app_id, tmp_path)
    with older_member(kafka_bootstrap_servers, f"{app_id}-ingest", "aiokafka-0.11.0") as leave:

        def leave_once_the_worker_waits() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if worker.log_path.exists() and "waiting up to" in worker.log_path.read_text():
                    break
                time.sleep(0.2)
            leave.set()

        threading.Thread(target=leave_once_the_worker_waits, daemon=True).start()
        try:
            worker.start()
            log = worker.log_path.read_text()
            assert f"(aiokafka-0.11.0 in {app_id}-ingest)" in log, log[-2000:]
            assert "waiting up to" in log
            publish(kafka_bootstrap_servers, messages)
            wait_for_rows([worker], finess, reference(messages, finess))
        finally:
            worker.stop()
