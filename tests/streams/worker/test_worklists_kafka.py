"""The worklists of a worker on a real broker equal `sunes explain`'s on the same events, unit
for unit; they need the token; nothing identifying reaches /metrics or the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from processors.collection import Establishments
from processors.settings import Settings
from streams.testing import WorkerProcess
from tests.kafka_tools import Message, publish_on
from tests.streams.worker.test_hostile_kafka import identifiers_of
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows
from topics.names import TopicNames
from topics.validation import parse_record

pytestmark = pytest.mark.kafka

TOKEN = "worklist-token-" + "0123456789abcdef"


def token_flags(tmp_path: Path) -> tuple[str, str]:
    """The worker flags of a token file holding TOKEN."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    return "--api-token-file", str(token_file)


def batch_of(messages: list[Message]) -> Establishments:
    """`sunes explain`'s collection of the same events."""
    batch = Establishments(Settings())
    for _, _, value in messages:
        batch.apply(parse_record(value))
    return batch


def assert_worklists_are_the_batch_units(
    worker: WorkerProcess, rows: list[dict[str, Any]], batch: Establishments
) -> set[str]:
    """Every row's worklist on the worker equals the batch units, unit for unit; counted
    units are the numerator and all units the denominator. Returns the statuses seen."""
    statuses: set[str] = set()
    for row in rows:
        path = f"/indicators/{row['finess']}/{row['indicator']}/{row['period']}/units"
        status, body = worker.fetch(path + "?page_size=10000", TOKEN)
        assert status == 200, body
        page: dict[str, Any] = orjson.loads(body)
        live = page["units"]
        want = [u.as_json() for u in batch.units(row["finess"], row["indicator"], row["period"])]
        assert live == want, f"{row['finess']} {row['indicator']} {row['period']}"
        counted = sum(u["status"] == "counted" for u in live)
        assert (counted, page["total"]) == (row["numerator"], row["denominator"])
        statuses.update(u["status"] for u in live)
    return statuses


def test_worklists_equal_the_batch_units_and_need_the_token(
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    unique_kafka_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    messages, finess = dataset(seed=31, establishments=2, days=45)
    expected = reference(messages, finess)
    worker = workers(unique_kafka_name("worklists"), None, *token_flags(tmp_path))
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([worker], finess, expected)

    first = expected[0]
    path = f"/indicators/{first['finess']}/{first['indicator']}/{first['period']}/units"
    assert worker.fetch(path)[0] == 401
    assert worker.fetch(path, "not-the-token-at-all")[0] == 401
    statuses = assert_worklists_are_the_batch_units(worker, expected, batch_of(messages))
    assert statuses >= {"counted", "missed"}

    # No patient id, stay id or address of the data set in /metrics or the log.
    identifying = identifiers_of([v for _, _, v in messages])
    assert len(identifying) > 50
    metrics = worker.get("/metrics").decode()
    log = worker.log_path.read_text(errors="replace")
    assert "worklist " in log and "served to api-token (static)" in log  # accesses logged
    leaked = sorted(i for i in identifying if i in metrics or i in log)
    assert leaked == [], f"identifying values in /metrics or the log: {leaked[:5]}"
    assert TOKEN not in log
