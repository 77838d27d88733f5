"""The ingest stage in its own process (streams/worker/ingest_process.py), on a real broker,
with real processes: what the worker shows of it, and its lifecycle (a stop, a dead child, a
killed worker)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from streams.testing import WorkerProcess
from tests.kafka_tools import per_partition, publish_on
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows
from topics.names import STAYS, TopicNames

pytestmark = pytest.mark.kafka


def health(worker: WorkerProcess) -> dict[str, object]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(worker.url("/health"), timeout=5) as response:
            return dict(orjson.loads(response.read()))
    except urllib.error.HTTPError as error:
        return dict(orjson.loads(error.read()))


def ingest_pid(worker: WorkerProcess) -> int:
    """The ingest process's pid, once the worker has started it."""
    found: list[int] = []

    def started() -> bool:
        ingest = health(worker)["ingest"]
        assert isinstance(ingest, dict)
        if ingest.get("pid") is not None:
            found.append(int(ingest["pid"]))
        return bool(found)

    worker.wait_until(started, 60, "the ingest process to start")
    return found[0]


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """Running (a zombie, ended but not reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.2)


def committed_and_ends(
    brokers: str, group: str, topics: list[str]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    async def run() -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
        consumer = AIOKafkaConsumer(bootstrap_servers=brokers)
        await admin.start()
        await consumer.start()
        try:
            tps = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
            await admin.close()
        return {tp: meta.offset for tp, meta in offsets.items()}, dict(ends)

    return asyncio.run(run())


def test_the_worker_shows_the_ingest_process_counts_lag_and_partitions(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    messages, finess = dataset(seed=21, establishments=2, days=3)
    expected = reference(messages, finess)
    bad = [(STAYS, None, b"{not json " + uuid.uuid4().hex.encode()) for _ in range(3)]
    worker = workers(f"it-{uuid.uuid4().hex[:8]}")
    pid = ingest_pid(worker)
    assert worker.process is not None and parent_of(pid) == worker.process.pid
    publish_on(kafka_bootstrap_servers, kafka_topics, messages + bad)
    wait_for_rows([worker], finess, expected)

    def counted() -> bool:
        text = worker.get("/metrics").decode()
        consumed = [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "sunes_events_consumed_total"
        ]
        return sum(consumed) == len(messages) + len(bad)

    worker.wait_until(counted, 30, "the ingest process's counts in /metrics")
    metrics = worker.get("/metrics").decode()
    assert (
        f'sunes_deadletter_events_total{{reason="invalid_json",topic="{kafka_topics.stays}"}} 3.0'
        in metrics
    )
    assert f'sunes_last_event_timestamp_seconds{{topic="{kafka_topics.stays}"}}' in metrics
    worker.wait_until(
        lambda: set(per_partition(worker, "sunes_consumer_lag").values()) == {0.0},
        30,
        "the lag of every input partition to be 0",
    )
    body = health(worker)
    assert body["status"] == "ok"
    assert body["broker"] == "ok"
    inputs = body["input_partitions"]
    assert isinstance(inputs, list)
    assert sorted(inputs) == sorted(
        f"{topic}/{partition}"
        for topic in kafka_topics.inputs
        for partition in range(1 if topic == kafka_topics.establishments else 6)
    )
    assert body["ingest"] == {
        "mode": "process", "pid": pid, "last_report_seconds": body["ingest"]["last_report_seconds"],  # type: ignore[index]
        "failure": None,
    }  # fmt: skip


def test_a_stopped_worker_stops_its_ingest_process_after_its_last_commit(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    messages, finess = dataset(seed=22, establishments=2, days=3)
    app_id = f"it-{uuid.uuid4().hex[:8]}"
    worker = workers(app_id)
    pid = ingest_pid(worker)
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([worker], finess, reference(messages, finess))
    worker.stop()  # SIGTERM: the worker asks its ingest process to stop
    assert worker.process is not None and worker.process.returncode == 0
    assert not alive(pid)
    committed, ends = committed_and_ends(
        kafka_bootstrap_servers, f"{app_id}-ingest", list(kafka_topics.inputs)
    )
    assert committed == ends  # every message acked was committed
    log = worker.log_path.read_text()
    assert "ingest stage failed" not in log and "did not stop" not in log


def test_a_dead_ingest_process_stops_the_worker_loudly(
    workers: Callable[..., WorkerProcess],
) -> None:
    worker = workers(f"it-{uuid.uuid4().hex[:8]}")
    pid = ingest_pid(worker)
    os.kill(pid, signal.SIGKILL)
    assert worker.process is not None
    worker.process.wait(60)  # it stops, so that its supervisor starts it again
    assert worker.process.returncode != 0
    log = worker.log_path.read_text()
    assert (
        f"CRITICAL] the ingest stage failed, stopping the worker: the ingest process "
        f"(pid {pid}) ended with status -9" in log
    )


def test_a_killed_worker_takes_its_ingest_process_along(
    workers: Callable[..., WorkerProcess],
) -> None:
    worker = workers(f"it-{uuid.uuid4().hex[:8]}")
    pid = ingest_pid(worker)
    worker.kill()  # SIGKILL: no stop of its own
    wait_for(lambda: not alive(pid), 30, "the ingest process to end with its worker")


def test_the_ingest_stage_inline_still_gives_the_figures(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    messages, finess = dataset(seed=23, establishments=2, days=3)
    worker = workers(f"it-{uuid.uuid4().hex[:8]}", None, "--ingest", "inline")
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([worker], finess, reference(messages, finess))
    body = health(worker)
    assert body["ingest"] == {"mode": "inline", "failure": None}
    assert worker.process is not None
    children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children")
    assert children.read_text().split() == []
