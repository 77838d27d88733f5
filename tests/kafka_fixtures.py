"""Kafka fixtures for every test suite: one broker for the whole session.

Use from the root conftest (tests/conftest.py):

    from tests.kafka_fixtures import kafka_broker, kafka_bootstrap_servers, unique_kafka_name

    __all__ = ["kafka_broker", "kafka_bootstrap_servers", "unique_kafka_name"]

or `pytest_plugins = ["tests.kafka_fixtures"]` in that conftest.

The broker is `start_broker(kind)` with kind from $SUNES_BROKER, "auto" by default:
$KAFKA_BOOTSTRAP_SERVERS if set, else real Apache Kafka from the Maven jars
(`scripts/fetch-kafka-jars.sh`, run by `make test`). Tests that share it must not share
topic names or consumer group ids: take them from `unique_kafka_name`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from streams.brokers import KIND_ENV, Broker, start_broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """A running Kafka broker, started once per session and stopped at its end."""
    broker = start_broker(os.environ.get(KIND_ENV, "").strip() or "auto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(kafka_broker: Broker) -> str:
    """The session broker's address, "127.0.0.1:PORT"."""
    return kafka_broker.bootstrap_servers


@pytest.fixture
def unique_kafka_name() -> Callable[[str], str]:
    """unique_kafka_name("admissions") -> "admissions-1a2b3c4d5e": per-test topics and groups."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"
