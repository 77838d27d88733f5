"""Counting settings changed on a kept store, on a real broker: a worker stopped and started
again on the same app id and data dir with other settings recomputes its establishments and
serves `sunes report`'s figures under the new settings, and the same units; then back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from processors.collection import Establishments
from processors.report import compute_report
from processors.settings import Settings
from streams.testing import WorkerProcess, rows_of
from tests.kafka_tools import Message, publish_on
from tests.streams.worker.test_worker_kafka import dataset, wait_for_rows
from tests.streams.worker.test_worklists_kafka import (
    assert_worklists_are_the_batch_units,
    token_flags,
)
from topics.names import TopicNames
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
    assert "recomputed 2 establishment(s)" in log
    health = second.get("/health")
    assert health["status"] == "ok"
    progress = health["recomputing"]
    assert (progress["establishments"], progress["done"], progress["left"]) == (2, 2, 0)
    assert progress["units"] > 0
    second.stop()

    third = workers(app_id, first.data_dir, *token)  # back to the defaults
    wait_for_rows([third], finess, defaults)
    assert_worklists_are_the_batch_units(third, defaults, batch(messages, Settings()))
    assert "recomputed 2 establishment(s)" in third.log_path.read_text()
    third.stop()

    fourth = workers(app_id, first.data_dir, *token)  # the same settings: nothing to redo
    wait_for_rows([fourth], finess, defaults)
    assert "recomputing" not in fourth.log_path.read_text()
