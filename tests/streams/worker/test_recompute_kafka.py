"""Counting settings changed on a kept store, on a real broker: a worker stopped and started
again on the same app id and data dir with other settings recomputes its establishments and
serves `sunes report`'s figures under the new settings, and the same units; then back."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from processors.collection import Establishments
from processors.report import compute_report
from processors.settings import Settings
from processors.state import parse_store_key
from streams.testing import WorkerProcess, rows_of
from streams.worker.table_store import partition_of
from tests.kafka_tools import Message, create_topic, publish_on
from tests.processors.test_previous_release import previous_release
from tests.streams.worker.test_worker_kafka import dataset, wait_for_rows
from tests.streams.worker.test_worklists_kafka import (
    assert_worklists_are_the_batch_units,
    token_flags,
)
from topics.names import ESTABLISHMENTS, TopicNames
from topics.validation import parse_record

pytestmark = pytest.mark.kafka

OTHER = Settings(grace_days=5, lookback_days=20, exclude_unqualified_ins=True)
OTHER_FLAGS = ("--grace-days", "5", "--lookback-days", "20", "--exclude-unqualified-ins")


def batch(messages: list[Message], settings: Settings) -> Establishments:
    """`sunes report`'s and `sunes explain`'s collection of the same events."""
    collection = Establishments(settings)
    for _, _, value in messages:
        collection.apply(parse_record(value))
    return collection


def reference(messages: list[Message], finess: set[str], settings: Settings) -> list[Any]:
    records = [parse_record(value) for _, _, value in messages]
    return rows_of((r.as_json() for r in compute_report(records, settings)), finess)


def test_other_counting_settings_on_a_kept_store_give_the_batch_figures_and_units(
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    tmp_path: Path,
) -> None:
    messages, finess = dataset(seed=47, establishments=2, days=40)
    defaults = reference(messages, finess, Settings())
    other = reference(messages, finess, OTHER)
    changed = [row for row in other if row not in defaults]
    assert len(changed) >= 10, "the settings must change figures for the test to mean anything"
    app_id, token = f"it-settings-{uuid.uuid4().hex[:8]}", token_flags(tmp_path)

    first = workers(app_id, None, *token)
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([first], finess, defaults)
    first.stop()

    second = workers(app_id, first.data_dir, *token, *OTHER_FLAGS)
    wait_for_rows([second], finess, other)
    assert_worklists_are_the_batch_units(second, other, batch(messages, OTHER))
    log = second.log_path.read_text()
    assert "recomputing 2 establishment(s) from their stored facts" in log
    assert "grace_days 30 → 5" in log and "lookback_days 365 → 20" in log
    done = re.search(r"recomputed 2 establishment\(s\), (\d+) units in (\d+) steps", log)
    assert done is not None, log
    units, steps = int(done[1]), int(done[2])
    assert steps > 2, "several steps per establishment, bundles free to come in between"
    health = second.get("/health")
    assert health["status"] == "ok"
    progress = health["recomputing"]
    assert (progress["establishments"], progress["done"], progress["left"]) == (2, 2, 0)
    assert progress["units"] == units
    second.stop()

    # the recomputed units and meta went through the changelog: a worker on a new disk
    # reads them back and has nothing to recompute (a standby's case too)
    new_disk = workers(app_id, tmp_path / "new-disk", *token, *OTHER_FLAGS)
    wait_for_rows([new_disk], finess, other)
    assert "recomputing" not in new_disk.log_path.read_text()
    new_disk.stop()

    third = workers(app_id, first.data_dir, *token)  # back to the defaults
    wait_for_rows([third], finess, defaults)
    assert_worklists_are_the_batch_units(third, defaults, batch(messages, Settings()))
    assert "recomputed 2 establishment(s)" in third.log_path.read_text()
    third.stop()

    fourth = workers(app_id, first.data_dir, *token)  # the same settings: nothing to redo
    wait_for_rows([fourth], finess, defaults)
    assert "recomputing" not in fourth.log_path.read_text()


async def write_changelog(brokers: str, topic: str, entries: dict[bytes, bytes]) -> None:
    """A store as its worker's changelog: each entry on its FINESS's partition (of 4)."""
    await create_topic(brokers, topic, 4)
    producer = AIOKafkaProducer(bootstrap_servers=brokers, acks="all")
    await producer.start()
    try:
        for key, value in entries.items():
            partition = partition_of(parse_store_key(key)[0], 4)
            await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def test_the_previous_release_changelog_gives_the_batch_figures_and_units(
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    tmp_path: Path,
) -> None:
    """A worker of this release recovers the changelog the previous one wrote (no meta
    entry), recomputes every establishment and serves the batch figures and units. Only the
    registry is published: the events are in the recovered state."""
    messages, entries = previous_release()
    finess = {key.decode() for _, key, _ in messages}
    expected = reference(messages, finess, Settings())
    app_id = f"it-previous-{uuid.uuid4().hex[:8]}"
    asyncio.run(write_changelog(kafka_bootstrap_servers, f"{app_id}-facts-changelog", entries))
    registry = [m for m in messages if m[0] == ESTABLISHMENTS]
    publish_on(kafka_bootstrap_servers, kafka_topics, registry)

    worker = workers(app_id, None, *token_flags(tmp_path))
    wait_for_rows([worker], finess, expected)
    assert_worklists_are_the_batch_units(worker, expected, batch(messages, Settings()))
    log = worker.log_path.read_text()
    assert "recomputing 2 establishment(s) from their stored facts (state version 0" in log
    assert "recomputed 2 establishment(s)" in log
