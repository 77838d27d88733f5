"""Registry records only on the registry topic, events only on event topics, and a
tombstone of the compacted registry topic is a deletion, not an invalid message."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests import builders
from tests.builders import F1
from topics.errors import REASON_CODES, WRONG_TOPIC, InvalidRecord
from topics.names import DMP, ESTABLISHMENTS, INPUT_TOPICS, MSS, STAYS, TOPIC_OF_TYPE
from topics.records import RECORD_TYPES, EstablishmentRecord, RegistryTombstone, StayDischarged
from topics.schema import rendered_schemas
from topics.validation import (
    is_registry_tombstone,
    parse_for_topic,
    registry_tombstone,
)

ALL = [
    builders.discharged("S1"),
    builders.cancelled("S1", "2023-01-13T10:00:00+01:00"),
    builders.produced("D1", "11502-2"),
    builders.deposited("D1", "11502-2"),
    builders.deposit_failed("D1"),
    builders.deleted("D1"),
    builders.mss_sent("pro", "R1"),
    builders.establishment(),
]


def refused(raw: bytes | None, topic: str, key: bytes | str | None = None) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as caught:
        parse_for_topic(raw, topic, key)
    return caught.value


def test_wrong_topic_is_a_reason_code() -> None:
    assert WRONG_TOPIC == "wrong_topic" and WRONG_TOPIC in REASON_CODES


@pytest.mark.parametrize("obj", ALL, ids=lambda o: o["type"])
@pytest.mark.parametrize("topic", [spec.name for spec in INPUT_TOPICS])
def test_each_record_type_on_each_input_topic(obj: dict[str, Any], topic: str) -> None:
    on_registry = topic == ESTABLISHMENTS
    if (obj["type"] == EstablishmentRecord.TYPE) == on_registry:
        record = parse_for_topic(orjson.dumps(obj), topic)
        assert isinstance(record, RECORD_TYPES[obj["type"]])
    else:
        assert refused(orjson.dumps(obj), topic).code == WRONG_TOPIC


@pytest.mark.parametrize("topic", [STAYS, DMP, MSS])
def test_a_registry_record_on_an_event_topic_is_refused(topic: str) -> None:
    error = refused(orjson.dumps(builders.establishment()), topic)
    assert error.code == "wrong_topic"
    assert error.reason == (
        f"field 'type': an establishment record belongs on the registry topic "
        f"sunes.establishments.v1, not on the event topic {topic}"
    )


def test_an_event_on_the_registry_topic_is_refused() -> None:
    error = refused(orjson.dumps(builders.discharged("S1")), ESTABLISHMENTS, F1.encode())
    assert error.code == "wrong_topic"
    assert error.reason == (
        "field 'type': a stay.discharged event belongs on sunes.stays.v1, "
        "not on the registry topic sunes.establishments.v1"
    )


def test_a_misplaced_record_s_other_defects_are_listed_too() -> None:
    error = refused(orjson.dumps({**builders.establishment(), "window": "F9"}), STAYS)
    assert error.code == "wrong_topic"
    assert "not on the event topic sunes.stays.v1; field 'window': expected one of" in error.reason


def test_events_are_routed_by_type_not_refused_on_another_event_topic() -> None:
    assert TOPIC_OF_TYPE["stay.discharged"] == STAYS
    assert isinstance(parse_for_topic(orjson.dumps(builders.discharged("S1")), DMP), StayDischarged)


def test_an_unknown_type_on_the_registry_topic_is_an_unknown_type() -> None:
    assert refused(b'{"type": "stay.admitted"}', ESTABLISHMENTS).code == "unknown_type"


@pytest.mark.parametrize("value", [None, b""])
@pytest.mark.parametrize("key", [F1.encode(), F1, b"2A0000012"])
def test_a_tombstone_on_the_registry_topic_deletes_the_key_s_finess(
    value: bytes | None, key: bytes | str
) -> None:
    assert is_registry_tombstone(ESTABLISHMENTS, value)
    finess = key.decode() if isinstance(key, bytes) else key
    assert parse_for_topic(value, ESTABLISHMENTS, key) == RegistryTombstone(finess)
    assert registry_tombstone(key) == RegistryTombstone(finess)


@pytest.mark.parametrize(
    ("key", "found"),
    [
        (None, "found no key"),
        (b"750000001\n", "found a key of 10 bytes that is not a FINESS"),
        (b"000000000", "found a key of 9 bytes that is not a FINESS"),
        (b"\xff\xfe", "found a key of 2 bytes that is not a FINESS"),
        (b"jean.dupont@patient.mssante.fr", "found a key of 30 bytes that is not a FINESS"),
        ("185077512345678", "found a key that is not a FINESS (a string of 15 characters)"),
    ],
)
def test_a_tombstone_whose_key_is_not_a_finess_is_invalid(
    key: bytes | str | None, found: str
) -> None:
    error = refused(None, ESTABLISHMENTS, key)
    assert error.code == "invalid_finess"
    assert error.reason.startswith("message key: a tombstone (message without value) on ")
    assert error.reason.endswith(found)


@pytest.mark.parametrize("topic", [STAYS, DMP, MSS])
@pytest.mark.parametrize("value", [None, b""])
def test_an_empty_message_on_an_event_topic_is_invalid(topic: str, value: bytes | None) -> None:
    assert not is_registry_tombstone(topic, value)
    error = refused(value, topic, F1.encode())
    assert (error.code, error.reason) == (
        "invalid_json",
        "not valid JSON (UTF-8): empty message (no value)",
    )


def test_whitespace_is_no_tombstone() -> None:
    assert not is_registry_tombstone(ESTABLISHMENTS, b" ")
    assert refused(b" ", ESTABLISHMENTS, F1.encode()).code == "invalid_json"


def test_tombstones_leave_the_json_schemas_alone() -> None:
    assert RegistryTombstone.__name__ not in {cls.__name__ for cls in RECORD_TYPES.values()}
    registry = orjson.loads(rendered_schemas()["sunes.establishments.v1.schema.json"])
    assert registry["properties"]["type"]["const"] == "establishment"
