"""start_broker / broker_from_env: which kind each setting selects, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import streams.brokers as brokers
from streams.brokers import (
    ApacheKafkaBroker,
    Broker,
    BrokerSetupError,
    BrokerStartError,
    BrokerUnsupportedError,
    ExternalBroker,
    KafkaContainerBroker,
    TansuBroker,
    broker_from_env,
    make_broker,
    start_broker,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SUNES_BROKER", "SUNES_KAFKA_VERSION"):
        monkeypatch.delenv(name, raising=False)


def test_auto_is_apache_without_bootstrap_servers() -> None:
    assert isinstance(make_broker("auto"), ApacheKafkaBroker)


def test_auto_is_external_with_bootstrap_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    broker = make_broker("auto")
    assert isinstance(broker, ExternalBroker)
    assert broker.bootstrap_servers == "127.0.0.1:1"


def test_every_kind_is_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    # The annotation is the real check (mypy); at run time: the kinds and the idle state.
    every: list[Broker] = [
        ApacheKafkaBroker(),
        TansuBroker(),
        ExternalBroker(),
        KafkaContainerBroker(),
    ]
    assert [broker.kind for broker in every] == ["apache", "tansu", "external", "testcontainers"]
    assert not any(broker.running for broker in every)


def test_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(BrokerSetupError, match="apache, testcontainers, tansu"):
        make_broker("zookeeper")


def test_bad_kind_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNES_BROKER", "kafak")
    with pytest.raises(BrokerSetupError, match="SUNES_BROKER='kafak'"):
        broker_from_env()


def test_external_without_bootstrap_servers_says_what_to_set() -> None:
    with pytest.raises(BrokerSetupError, match="KAFKA_BOOTSTRAP_SERVERS is not set"):
        make_broker("external")


def test_external_that_does_not_answer() -> None:
    broker = ExternalBroker("127.0.0.1:1", start_timeout=1.0)
    with pytest.raises(BrokerStartError, match=r"no Kafka broker answers at 127\.0\.0\.1:1"):
        broker.start()
    with pytest.raises(BrokerUnsupportedError):
        broker.kill()
    broker.stop()  # not ours: nothing happens


def test_malformed_bootstrap_servers() -> None:
    with pytest.raises(BrokerSetupError, match="host:port"):
        ExternalBroker("localhost")


def test_testcontainers_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(brokers, "docker_answers", lambda: False)
    with pytest.raises(BrokerSetupError, match="Docker engine"):
        make_broker("testcontainers")


def test_auto_falls_through_to_an_error_naming_every_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(brokers, "docker_answers", lambda: False)
    monkeypatch.setattr(
        brokers,
        "ApacheKafkaBroker",
        lambda **options: ApacheKafkaBroker(jars_dir=f"{tmp_path}/none", **options),
    )
    with pytest.raises(BrokerSetupError) as raised:
        start_broker("auto")
    message = str(raised.value)
    assert "fetch-kafka-jars.sh" in message
    assert "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "Docker" in message


@pytest.mark.kafka
def test_start_broker_tansu_and_back() -> None:
    with start_broker("tansu") as broker:
        assert broker.kind == "tansu"
        assert broker.bootstrap_servers.startswith("127.0.0.1:")
