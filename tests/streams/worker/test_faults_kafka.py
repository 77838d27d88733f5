"""Faults on a real broker: frozen, then stopped and started again on its data dir, while a
worker runs; then a worker restart. /health must say so and come back, the figures must end
exact, the log must not flood, and the lag must be 0 once caught up."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from streams.brokers.apache_kafka import ApacheKafkaBroker
from streams.testing import WorkerProcess, publish
from tests.kafka_tools import per_partition
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows

pytestmark = pytest.mark.kafka


def status(worker: WorkerProcess) -> str | None:
    """/health's status, also when it answers 503."""
    import urllib.error
    import urllib.request

    import orjson

    try:
        with urllib.request.urlopen(worker.url("/health"), timeout=5) as response:
            return str(orjson.loads(response.read())["status"])
    except urllib.error.HTTPError as error:
        return str(orjson.loads(error.read())["status"])
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def lag(worker: WorkerProcess) -> dict[str, float]:
    return per_partition(worker, "sunes_consumer_lag")


def test_broker_frozen_then_restarted_and_a_worker_restart(
    own_kafka_broker: ApacheKafkaBroker, tmp_path: Path
) -> None:
    brokers = own_kafka_broker.bootstrap_servers
    messages, finess = dataset(seed=41, establishments=2, days=10)
    expected = reference(messages, finess)
    half = len(messages) // 2
    app_id = f"faults-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(brokers, app_id, tmp_path).start()
    try:
        publish(brokers, messages[:half])
        worker.wait_until(lambda: status(worker) == "ok", 60, "the worker to be ok")

        assert own_kafka_broker.pid is not None
        os.kill(own_kafka_broker.pid, signal.SIGSTOP)  # frozen: connections hang, nothing answers
        worker.wait_until(lambda: status(worker) == "broker_unreachable", 30, "/health to say so")
        time.sleep(20)
        os.kill(own_kafka_broker.pid, signal.SIGCONT)
        worker.wait_until(lambda: status(worker) == "ok", 90, "/health ok after the freeze")

        own_kafka_broker.kill()  # stopped hard, then started again on its data dir
        worker.wait_until(lambda: status(worker) == "broker_unreachable", 30, "/health to say so")
        time.sleep(10)
        own_kafka_broker.start()
        worker.wait_until(lambda: status(worker) == "ok", 120, "/health ok after the restart")
        publish(brokers, messages[half:])
        wait_for_rows([worker], finess, expected, seconds=180)

        errors = [
            line
            for line in worker.log_path.read_text(errors="replace").splitlines()
            if "aiokafka" in line and ("ERROR" in line or "WARNING" in line)
        ]
        assert len(errors) < 200, f"{len(errors)} client error lines: the log floods"
    finally:
        if own_kafka_broker.pid is not None:  # a failure while frozen: thaw it
            with contextlib.suppress(ProcessLookupError):
                os.kill(own_kafka_broker.pid, signal.SIGCONT)
        worker.stop()  # a clean stop (a no-op if it already ended): the restart keeps its disk
    restarted = WorkerProcess(brokers, app_id, tmp_path, data_dir=worker.data_dir).start()
    try:
        wait_for_rows([restarted], finess, expected)
        restarted.wait_until(lambda: bool(lag(restarted)), 30, "the lag gauge")
        assert set(lag(restarted).values()) == {0}, lag(restarted)
    finally:
        restarted.stop()
