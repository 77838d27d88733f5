"""Shared fixtures: the session's Kafka broker (real Apache Kafka in CI)."""

from tests.kafka_fixtures import kafka_bootstrap_servers, kafka_broker, unique_kafka_name

__all__ = ["kafka_bootstrap_servers", "kafka_broker", "unique_kafka_name"]
