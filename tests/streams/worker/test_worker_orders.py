"""The live figures are the batch figures: a two-year history in the orders real feeds have.

On a real Kafka broker, with the worker's default store (RocksDB): the simulator's two-year
history of 20 establishments published live, as a backfill from three systems (all stays,
then all documents, then all messages) and fully shuffled; then the shuffled feed read by
three workers while a fourth joins, one leaves and one is killed with SIGKILL and restarted
on its data dir. Each time the union of the workers' /indicators must equal `sunes report`
on the same events, cell for cell, with no FINESS reported by two workers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.config import SimulationConfig
from simulator.generator import generate
from simulator.orders import ORDERS, FeedOrder, in_order
from streams.testing import WorkerProcess, rows_of
from tests.kafka_tools import Message, publish_on
from tests.streams.worker.test_worker_kafka import reference
from tests.streams.worker.test_worklists_kafka import (
    assert_worklists_are_the_batch_units,
    batch_of,
    token_flags,
)
from topics.names import TopicNames

pytestmark = pytest.mark.kafka

HISTORY = SimulationConfig(establishments=20, stays_per_day=0.5, days=730, seed=21)
# How many times to run the scale-out scenario in one session (the note gives the count).
SCALE_RUNS = int(os.environ.get("SUNES_SCALE_RUNS", "1"))


def history(order: FeedOrder) -> tuple[list[Message], set[str]]:
    """The valid messages of the history, in `order`; and their FINESS numbers."""
    simulated = [m for m in in_order(generate(HISTORY), order, seed=HISTORY.seed) if m.valid]
    messages: list[Message] = [(m.topic, m.key, m.value) for m in simulated]
    return messages, {m.key.decode() for m in simulated}


def wait_for_exact_union(
    alive: list[WorkerProcess], finess: set[str], expected: list[dict[str, Any]]
) -> None:
    """Until the union of the workers' rows is the reference and each FINESS has one owner."""
    state: dict[str, Any] = {}

    def exact() -> bool:
        per_worker = [rows_of(w.indicators(), finess) for w in alive]
        owners: dict[str, int] = {}
        for rows in per_worker:
            for f in {r["finess"] for r in rows}:
                owners[f] = owners.get(f, 0) + 1
        state["union"] = rows_of((r for rows in per_worker for r in rows), finess)
        state["shared"] = sorted(f for f, n in owners.items() if n > 1)
        return state["union"] == expected and not state["shared"]

    try:
        alive[0].wait_until(exact, 240, "the workers' union to equal the reference")
    except AssertionError:
        assert state.get("shared") == []
        assert state.get("union") == expected  # shows the difference, row by row
        raise


@pytest.mark.parametrize("order", ORDERS)
def test_each_feed_order_gives_the_batch_figures(
    order: FeedOrder,
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    tmp_path: Path,
) -> None:
    messages, finess = history(order)
    expected = reference(messages, finess)
    assert len(expected) > 20 * 24 * 4, "two years of rows for every establishment"
    worker = workers(f"orders-{order}-{uuid.uuid4().hex[:6]}", None, *token_flags(tmp_path))
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_exact_union([worker], finess, expected)
    # the units behind two years of one establishment's rows, as `sunes explain` gives them
    one = min(finess)
    rows = [r for r in expected if r["finess"] == one]
    statuses = assert_worklists_are_the_batch_units(worker, rows, batch_of(messages))
    assert statuses == {"counted", "missed"} | ({"pending"} & statuses)


@pytest.mark.parametrize("run", range(SCALE_RUNS))
def test_scale_out_leave_and_kill_during_a_shuffled_feed(
    run: int,
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
) -> None:
    messages, finess = history("shuffled")
    expected = reference(messages, finess)
    app_id = f"scale-{run}-{uuid.uuid4().hex[:6]}"
    first, second, third = (workers(app_id) for _ in range(3))
    registry = [m for m in messages if m[0].endswith("establishments.v1")]
    events = [m for m in messages if not m[0].endswith("establishments.v1")]
    third_size = len(events) // 3
    publish_on(kafka_bootstrap_servers, kafka_topics, registry + events[:third_size])
    fourth = workers(app_id)  # joins mid-stream
    publish_on(kafka_bootstrap_servers, kafka_topics, events[third_size : 2 * third_size])
    second.stop()  # leaves
    third.kill()  # SIGKILL: no clean shutdown, offsets and changelog as they were
    publish_on(kafka_bootstrap_servers, kafka_topics, events[2 * third_size :])
    # on its data dir: after a crash its local tables are rebuilt from the changelog
    restarted = workers(app_id, data_dir=third.data_dir)
    wait_for_exact_union([first, fourth, restarted], finess, expected)
