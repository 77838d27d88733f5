"""The worker on a real Kafka broker against the batch reference (`sunes report`).

Tests share the session's broker, each on its own topics (`kafka_topics`, read by its
workers through --topic-prefix) and with its own app id.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from processors.report import compute_report
from simulator.config import SimulationConfig
from simulator.generator import generate
from streams.testing import WorkerProcess, rows_of
from tests.builders import discharged
from tests.kafka_tools import Message, publish_on, read_deadletters
from topics.names import ESTABLISHMENTS, STAYS, TopicNames
from topics.validation import InvalidRecord, parse_record

pytestmark = pytest.mark.kafka


def dataset(seed: int, establishments: int = 3, days: int = 20) -> tuple[list[Message], set[str]]:
    """A simulated feed (with duplicates, late and out-of-order events, corrections,
    cancellations, replacements, deletions), shuffled further; and its FINESS numbers."""
    config = SimulationConfig(establishments=establishments, stays_per_day=15, days=days, seed=seed)
    messages: list[Message] = [(m.topic, m.key, m.value) for m in generate(config) if m.valid]
    registry = [m for m in messages if m[0] == ESTABLISHMENTS]
    events = [m for m in messages if m[0] != ESTABLISHMENTS]
    rng = random.Random(seed)
    rng.shuffle(events)
    events += rng.sample(events, len(events) // 20)  # and more duplicates, anywhere
    return registry + events, {key.decode() for _, key, _ in messages if key}


def reference(messages: list[Message], finess: set[str]) -> list[dict[str, Any]]:
    records = [parse_record(value) for _, _, value in messages]
    return rows_of((r.as_json() for r in compute_report(records)), finess)


def wait_for_rows(
    sources: list[WorkerProcess],
    finess: set[str],
    expected: list[dict[str, Any]],
    seconds: float = 120,
) -> None:
    latest: list[dict[str, Any]] = []

    def matches() -> bool:
        nonlocal latest
        latest = rows_of((row for w in sources for row in w.indicators()), finess)
        return latest == expected

    try:
        sources[0].wait_until(matches, seconds, "/indicators to equal the reference")
    except AssertionError:
        assert latest == expected  # shows the difference, row by row
        raise


def test_indicators_equal_the_batch_report(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    messages, finess = dataset(seed=11)
    expected = reference(messages, finess)
    assert {r["indicator"] for r in expected} >= {"DS1.1", "DS1.2", "DS1.3", "DS4.1", "DS4.2"}
    worker = workers(f"it-{uuid.uuid4().hex[:8]}")
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([worker], finess, expected)


def test_an_internal_topic_refusing_our_batches_loses_nothing(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    """The internal topic created beforehand with a max.message.bytes under our bundles: the
    broker refuses a produce batch whole, so the ingest splits the bundles and sends their
    events one batch each (a batch of several would be refused again, then dead-lettered)."""
    messages, finess = dataset(seed=14, establishments=2, days=6)
    expected = reference(messages, finess)
    app_id = f"it-{uuid.uuid4().hex[:8]}"
    limit = 24_000  # an event fits, a bundle of this feed's polls does not
    assert max(len(value or b"") for _, _, value in messages) < limit // 4
    asyncio.run(create_topic(kafka_bootstrap_servers, f"{app_id}-events-by-finess", 4, limit))
    worker = workers(app_id)
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([worker], finess, expected, seconds=180)
    metrics = worker.get("/metrics").decode()
    assert 'outcome="invalid"' not in metrics  # nothing dead-lettered


async def create_topic(brokers: str, name: str, partitions: int, max_message_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        config = {"max.message.bytes": str(max_message_bytes)}
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()


def test_kill_9_mid_stream_then_restart_still_equal(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    messages, finess = dataset(seed=12)
    expected = reference(messages, finess)
    app_id = f"it-{uuid.uuid4().hex[:8]}"
    first = workers(app_id)
    half = len(messages) // 2
    publish_on(kafka_bootstrap_servers, kafka_topics, messages[:half])
    first.wait_until(lambda: len(rows_of(first.indicators(), finess)) > 0, 60, "some figures")
    first.kill()  # no clean shutdown: offsets and changelog as they were
    publish_on(kafka_bootstrap_servers, kafka_topics, messages[half:])
    second = workers(app_id)
    wait_for_rows([second], finess, expected)


def test_two_workers_sharing_the_partitions_give_the_same_figures(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    messages, finess = dataset(seed=13, establishments=6, days=10)
    expected = reference(messages, finess)
    app_id = f"it-{uuid.uuid4().hex[:8]}"
    one, two = workers(app_id), workers(app_id)

    def shared() -> bool:  # both in both groups (ingest and state), each with its own share
        health = [w.get("/health") or {} for w in (one, two)]
        return all(
            all(parts) and not parts[0] & parts[1]
            for parts in (
                [set(h.get("partitions", [])) for h in health],
                [set(h.get("input_partitions", [])) for h in health],
            )
        )

    one.wait_until(shared, 60, "the two workers to share the partitions")
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([one, two], finess, expected, seconds=180)
    owned_by_one = {r["finess"] for r in rows_of(one.indicators(), finess)}
    owned_by_two = {r["finess"] for r in rows_of(two.indicators(), finess)}
    assert owned_by_one and owned_by_two, "both workers should own establishments"
    assert not owned_by_one & owned_by_two, "an establishment is owned by one worker only"


def test_malformed_events_go_to_the_dead_letter_topic_and_valid_ones_count(
    workers: Callable[..., WorkerProcess], kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    messages, finess = dataset(seed=14, establishments=1, days=3)
    expected = reference(messages, finess)
    marker = uuid.uuid4().hex
    bad: list[Message] = [
        (STAYS, None, b'{"type": "stay.discharged", "event_id": "' + marker.encode() + b'"'),
        (STAYS, None, orjson.dumps({"type": "stay.admitted", "event_id": marker})),
        (STAYS, None, orjson.dumps({"type": "stay.discharge_cancelled", "event_id": marker,
                                    "occurred_at": "2023-01-01T10:00:00", "finess": "750000001",
                                    "stay_id": "S"})),
        (STAYS, None, b"\xff\xfe" + marker.encode()),
    ]  # fmt: skip
    too_old = discharged(marker + "-old", admitted="2012-03-01T08:00:00+01:00",
                         discharged="2012-03-04T10:00:00+01:00")  # fmt: skip
    typo = discharged(marker + "-typo", discharged="2031-01-12T10:00:00+01:00",
                      occurred="2023-01-12T10:00:00+01:00")  # fmt: skip
    refused: list[Message] = [(STAYS, None, orjson.dumps(o)) for o in (too_old, typo)]
    mixed = messages[:10] + bad + messages[10:20] + refused + messages[20:]
    worker = workers(f"it-{uuid.uuid4().hex[:8]}")
    publish_on(kafka_bootstrap_servers, kafka_topics, mixed)
    wait_for_rows([worker], finess, expected)
    letters = read_deadletters(
        kafka_bootstrap_servers,
        kafka_topics.deadletter,
        lambda value: marker.encode() in value,
        len(bad) + len(refused),
    )
    by_value = {bytes(value): headers for value, headers in letters}
    # the original bytes, each once
    assert sorted(by_value) == sorted(v for _, _, v in bad + refused)
    old_headers, typo_headers = (by_value[v] for _, _, v in refused)
    assert old_headers["sunes-reason-code"] == "too_late"
    assert "(period 2012-03) is before the retention horizon" in old_headers["sunes-reason"]
    assert typo_headers["sunes-reason-code"] == "future_timestamp"
    assert "field 'discharged_at'" in typo_headers["sunes-reason"]
    for _, _, value in bad:
        headers = by_value[value]
        with pytest.raises(InvalidRecord) as caught:
            parse_record(value)
        assert headers["sunes-reason"] == caught.value.reason
        assert headers["sunes-reason-code"] == caught.value.code
        assert headers["sunes-source-topic"] == kafka_topics.stays
        assert int(headers["sunes-source-offset"]) >= 0
    assert "not valid JSON" in by_value[bad[0][2]]["sunes-reason"]
    assert 'unknown record type "stay.admitted"' in by_value[bad[1][2]]["sunes-reason"]
    assert "has no UTC offset" in by_value[bad[2][2]]["sunes-reason"]
    metrics = worker.get("/metrics").decode()
    assert (
        f'sunes_deadletter_events_total{{reason="invalid_json",topic="{kafka_topics.stays}"}}'
        in metrics
    )
