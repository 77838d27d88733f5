"""The retention each topic the product creates gets, and the check of existing topics: what
is short, what is needed, the kafka-configs command. (On a real broker:
tests/streams/worker/test_expired_kafka.py.)"""

from __future__ import annotations

from types import SimpleNamespace

from processors.settings import Settings
from streams.hl7.publishing import HL7_DEADLETTER_TOPIC
from streams.topic_configs import (
    DAY_MS,
    DEADLETTER_RETENTION_MS,
    configs_for,
    configs_of,
    horizon_retention_ms,
    shortfalls,
    warning_for,
)
from topics.names import DEADLETTER_TOPIC, INPUT_TOPICS, TopicSpec

STAYS, _, _, REGISTRY = INPUT_TOPICS
HORIZON = horizon_retention_ms()


def test_the_horizon_retention_covers_the_retention_days_the_skew_and_a_margin() -> None:
    assert HORIZON == (3653 + 7) * DAY_MS + 24 * 3_600_000
    assert horizon_retention_ms(Settings(retention_days=800, future_skew_hours=0)) == 807 * DAY_MS


def test_each_kind_of_topic_is_created_with_its_retention() -> None:
    assert configs_for(STAYS, HORIZON) == {
        "cleanup.policy": "delete",
        "retention.ms": str(HORIZON),
        "retention.bytes": "-1",
    }
    internal = TopicSpec("app-events-by-finess", 6, False, "bundles")
    assert configs_for(internal, 5)["retention.ms"] == "5"
    assert configs_for(REGISTRY, HORIZON) == {"cleanup.policy": "compact"}
    for dead_letters in (DEADLETTER_TOPIC, HL7_DEADLETTER_TOPIC):
        assert configs_for(dead_letters, HORIZON) == {
            "cleanup.policy": "delete",
            "retention.ms": str(DEADLETTER_RETENTION_MS),
        }
    assert DEADLETTER_RETENTION_MS == 30 * DAY_MS


def test_an_input_topic_kept_long_enough_or_for_ever_is_fine() -> None:
    for retention in (str(HORIZON), str(HORIZON * 2), "-1"):
        found = {"cleanup.policy": "delete", "retention.ms": retention, "retention.bytes": "-1"}
        assert shortfalls(STAYS, found, HORIZON) == {}


def test_what_could_lose_records_is_named_with_its_fix() -> None:
    week = {"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1"}
    assert shortfalls(STAYS, week, HORIZON) == {"retention.ms": str(HORIZON)}
    by_size = {**week, "retention.ms": "-1", "retention.bytes": "1073741824"}
    assert shortfalls(STAYS, by_size, HORIZON) == {"retention.bytes": "-1"}
    compacted = {**week, "retention.ms": "-1", "cleanup.policy": "compact,delete"}
    assert shortfalls(STAYS, compacted, HORIZON) == {"cleanup.policy": "delete"}
    assert shortfalls(REGISTRY, {"cleanup.policy": "delete"}, HORIZON) == {
        "cleanup.policy": "compact"
    }
    assert shortfalls(REGISTRY, {"cleanup.policy": "compact"}, HORIZON) == {}
    # Dead letters: whatever their owner chose.
    assert shortfalls(DEADLETTER_TOPIC, {"retention.ms": "1000"}, HORIZON) == {}

    line = warning_for(STAYS, week, {"retention.ms": str(HORIZON)}, "k1:9092,k2:9092")
    assert line.startswith(
        "topic sunes.stays.v1 has retention.ms=604800000 (records deleted after 7 days, "
        "needed 3661 days); needed: retention.ms="
    )
    assert line.endswith(
        "Fix: kafka-configs.sh --bootstrap-server k1:9092,k2:9092 --alter --entity-type "
        f"topics --entity-name sunes.stays.v1 --add-config retention.ms={HORIZON}"
    )
    seconds = warning_for(STAYS, {"retention.ms": "30000"}, {"retention.ms": "5"}, "k:1")
    assert "records deleted after 30 s" in seconds


def test_describe_configs_responses_are_read_per_topic() -> None:
    response = SimpleNamespace(
        resources=[
            (0, None, 2, "a", [("retention.ms", "5", False, 5, False)]),
            (3, "unknown topic", 2, "b", []),
        ]
    )
    assert configs_of([response]) == {"a": {"retention.ms": "5"}}
