"""Topic names as values: the contract's by default, a pipeline's own behind a prefix."""

from __future__ import annotations

import orjson
import pytest

from tests import builders
from topics.errors import WRONG_TOPIC, InvalidRecord
from topics.names import (
    ALL_TOPICS,
    CONTRACT_TOPICS,
    DEADLETTER,
    ESTABLISHMENTS,
    STAYS,
    TOPIC_OF_TYPE,
    TopicNames,
)
from topics.records import RegistryTombstone, StayDischarged
from topics.validation import parse_for_topic


def test_the_defaults_are_the_contract_names() -> None:
    assert TopicNames.prefixed("") == CONTRACT_TOPICS
    assert [spec.name for spec in CONTRACT_TOPICS.specs()] == [spec.name for spec in ALL_TOPICS]
    for record_type, topic in TOPIC_OF_TYPE.items():
        assert CONTRACT_TOPICS.of_type(record_type) == topic


def test_a_prefix_renames_every_topic_and_keeps_partitions_and_compaction() -> None:
    topics = TopicNames.prefixed("ght-a.")
    assert topics.stays == "ght-a." + STAYS and topics.deadletter == "ght-a." + DEADLETTER
    assert topics.of_type("establishment") == "ght-a." + ESTABLISHMENTS
    assert topics.named(STAYS) == topics.stays
    renamed = {spec.name: spec for spec in topics.specs()}
    for spec in ALL_TOPICS:
        copy = renamed["ght-a." + spec.name]
        assert (copy.partitions, copy.compacted) == (spec.partitions, spec.compacted)
    assert [s.name for s in topics.input_specs()] == list(topics.inputs)
    assert topics.deadletter not in topics.inputs


def test_validation_knows_the_registry_topic_by_its_configured_name() -> None:
    topics = TopicNames.prefixed("t1.")
    registry = orjson.dumps(builders.establishment())
    stay = orjson.dumps(builders.discharged("S1"))
    assert isinstance(parse_for_topic(stay, topics.stays, None, topics), StayDischarged)
    parse_for_topic(registry, topics.establishments, None, topics)
    tombstone = parse_for_topic(None, topics.establishments, b"750000001", topics)
    assert isinstance(tombstone, RegistryTombstone)
    with pytest.raises(InvalidRecord) as caught:
        parse_for_topic(registry, topics.stays, None, topics)
    assert caught.value.code == WRONG_TOPIC
    assert f"belongs on the registry topic {topics.establishments}" in caught.value.reason
    # the contract's registry name is just another event topic for this pipeline
    with pytest.raises(InvalidRecord) as caught:
        parse_for_topic(registry, ESTABLISHMENTS, None, topics)
    assert caught.value.code == WRONG_TOPIC
