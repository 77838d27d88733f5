"""SIGTERM to a worker whose broker has just been stopped hard: the worker exits within its
documented grace period (SUNES_STOP_GRACE_SECONDS, 25 s by default), by its own hand; then,
restarted on the same data dir with the broker back, its figures are exact."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Callable

import pytest

from streams.brokers.apache_kafka import ApacheKafkaBroker
from streams.testing import WorkerProcess, publish
from streams.worker.stop_bound import DEFAULT_GRACE_SECONDS, STOP_TIMEOUT_EXIT
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows

pytestmark = pytest.mark.kafka


def test_sigterm_with_the_broker_gone_exits_within_the_grace_period(
    own_kafka_broker: ApacheKafkaBroker, worker_on: Callable[..., WorkerProcess]
) -> None:
    brokers = own_kafka_broker.bootstrap_servers
    messages, finess = dataset(seed=37, establishments=2, days=8)
    half = len(messages) // 2
    app_id = f"stop-{uuid.uuid4().hex[:6]}"
    worker = worker_on(brokers, app_id)
    publish(brokers, messages[:half])
    wait_for_rows([worker], finess, reference(messages[:half], finess))

    own_kafka_broker.kill()  # SIGKILL: the data stays for the restart below
    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)
    try:
        # Above the bound: a worker that did not exit by itself is a failure, not a wait.
        code = worker.process.wait(DEFAULT_GRACE_SECONDS + 20)
    except subprocess.TimeoutExpired:
        worker.kill()
        pytest.fail(f"still running {DEFAULT_GRACE_SECONDS + 20} s after SIGTERM")
    log = worker.log_tail(60)
    assert code in (0, STOP_TIMEOUT_EXIT), f"exit status {code} (negative: killed):\n{log}"
    if code == STOP_TIMEOUT_EXIT:
        assert f"did not stop within {DEFAULT_GRACE_SECONDS} s" in log

    own_kafka_broker.start()
    publish(brokers, messages[half:])
    restarted = worker_on(brokers, app_id, data_dir=worker.data_dir)
    wait_for_rows([restarted], finess, reference(messages, finess), seconds=180)
