"""Real Apache Kafka (KRaft, from the Maven jars): round trip, kill, restart, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.brokers import ApacheKafkaBroker, BrokerSetupError, BrokerStartError
from streams.brokers._common import port_open, split_bootstrap
from streams.brokers.apache_kafka import DEFAULT_KAFKA_VERSION, fetch_jars
from tests.kafka_tools import consume, create_topic, produce, records, unique

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def broker() -> Iterator[ApacheKafkaBroker]:
    with ApacheKafkaBroker(num_partitions=2) as started:
        yield started


async def test_round_trip_through_a_consumer_group(broker: ApacheKafkaBroker) -> None:
    topic, sent = unique("admissions"), records(12)
    await create_topic(broker.bootstrap_servers, topic, partitions=3)
    await produce(broker.bootstrap_servers, topic, sent, broker.client_overrides())

    got, committed, ends = await consume(broker.bootstrap_servers, topic, unique("g"), len(sent))

    assert sorted(got) == sorted(sent)
    assert set(ends) == {0, 1, 2}
    assert sum(ends.values()) == len(sent)
    assert committed == ends


async def test_auto_created_topics_get_the_configured_partitions(
    broker: ApacheKafkaBroker,
) -> None:
    topic, sent = unique("auto"), records(4)
    await produce(broker.bootstrap_servers, topic, sent, {})

    got, _, ends = await consume(broker.bootstrap_servers, topic, unique("g"), len(sent))

    assert sorted(got) == sorted(sent)
    assert set(ends) == {0, 1}


def test_the_broker_runs_in_a_temp_dir_with_its_log(broker: ApacheKafkaBroker) -> None:
    assert broker.kind == "apache"
    assert broker.running
    assert broker.bootstrap_servers.startswith("127.0.0.1:")
    assert broker.workdir is not None and broker.workdir.is_dir()
    assert "Kafka Server started" in (broker.workdir / "broker.log").read_text()
    assert broker.client_overrides() == {}
    assert broker.faust_settings() == {}


def test_kill_then_stop_is_clean() -> None:
    broker = ApacheKafkaBroker()
    with broker:
        host, port = split_bootstrap(broker.bootstrap_servers)
        workdir = broker.workdir
        assert workdir is not None
        broker.kill()
        assert not broker.running
        assert not port_open(host, port)
        assert workdir.is_dir(), "kill() keeps the data, like a crash"
    assert not workdir.exists()
    assert broker.workdir is None
    broker.stop()  # a second stop is a no-op


async def test_restart_after_kill_keeps_the_data() -> None:
    broker = ApacheKafkaBroker()
    broker.start()
    try:
        address = broker.bootstrap_servers
        topic, sent = unique("crash"), records(5)
        await produce(address, topic, sent, {})
        broker.kill()

        broker.start()

        assert broker.bootstrap_servers == address
        got, _, _ = await consume(address, topic, unique("g"), len(sent))
        assert sorted(got) == sorted(sent)
    finally:
        broker.stop()
    assert not broker.running


def test_missing_jars_directory_says_what_to_run(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(BrokerSetupError, match=r"fetch-kafka-jars\.sh") as raised:
        ApacheKafkaBroker(jars_dir=missing).start()
    assert str(missing) in str(raised.value)


def test_empty_cache_without_fetching_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUNES_CACHE_DIR", str(tmp_path))
    with pytest.raises(BrokerSetupError) as raised:
        ApacheKafkaBroker(fetch=False).start()
    message = str(raised.value)
    assert str(tmp_path / f"kafka-{DEFAULT_KAFKA_VERSION}" / "jars") in message
    assert (
        f"SUNES_KAFKA_VERSION={DEFAULT_KAFKA_VERSION} bash scripts/fetch-kafka-jars.sh" in message
    )


def test_fetch_fills_an_empty_cache_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNES_CACHE_DIR", str(tmp_path))
    jars = fetch_jars()
    assert jars == tmp_path / f"kafka-{DEFAULT_KAFKA_VERSION}" / "jars"
    assert (jars / f"kafka_2.13-{DEFAULT_KAFKA_VERSION}.jar").is_file()
    # SLF4J 1.7 binding (not slf4j2), of the same log4j as the core.
    (bridge,) = jars.glob("log4j-slf4j-impl-*.jar")
    (core,) = jars.glob("log4j-core-*.jar")
    assert bridge.name.removeprefix("log4j-slf4j-impl-") == core.name.removeprefix("log4j-core-")
    assert fetch_jars() == jars  # cached: a no-op


def test_a_broker_that_cannot_start_reports_its_log() -> None:
    broker = ApacheKafkaBroker(extra_properties={"node.id": "not-a-number"})
    with pytest.raises(BrokerStartError, match="not-a-number") as raised:
        broker.start()
    assert "last lines of" in str(raised.value)
    assert not broker.running
    broker.stop()


def test_cluster_ids_never_look_like_an_option() -> None:
    # One random id in 64 would start with "-" and StorageTool would read it as a flag.
    from streams.brokers.apache_kafka import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
