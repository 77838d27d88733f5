"""Kafka down while `sunes hl7 listen` runs (a broker of this test only, stopped hard, then
started again on its data dir): the message Kafka could not take gets no ACK — the listener
closes the connection — and once the broker is back the re-sent message gets its AA and its
event is on the topic. Nothing is acknowledged before Kafka has it."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from processors.store import MemoryStore
from streams.brokers.apache_kafka import ApacheKafkaBroker
from streams.hl7.conversion import Hl7Converter
from streams.hl7.mapping import load_mapping
from streams.hl7.testing import ListenerProcess, send
from tests.streams.hl7.listening import SCENARIO, read_topics

pytestmark = pytest.mark.kafka


def test_no_ack_while_kafka_is_down_then_the_resent_message_is_published(tmp_path: Path) -> None:
    # A broker of this test only: stopping the session's would fail every other test.
    with ApacheKafkaBroker() as own_broker:
        check_no_ack_while_down(own_broker, tmp_path)


def check_no_ack_while_down(own_broker: ApacheKafkaBroker, tmp_path: Path) -> None:
    admission, discharge = (path.read_bytes() for path in SCENARIO[:2])
    listener = ListenerProcess(
        own_broker.bootstrap_servers, tmp_path, "--ack-timeout", "10"
    ).start()
    try:
        (ack,) = send("127.0.0.1", listener.port, [admission])
        assert ack is not None and ack.code == "AA"
        own_broker.kill()
        (ack,) = send("127.0.0.1", listener.port, [discharge], timeout=60)
        assert ack is None  # the connection was closed without an answer
        assert 'outcome="kafka_error"' in listener.metrics()
        assert listener.health() == 503  # until Kafka acknowledges again
        assert listener.running()
        time.sleep(2)
        own_broker.start()
        deadline = time.monotonic() + 120
        while (ack := send("127.0.0.1", listener.port, [discharge], timeout=60)[0]) is None:
            assert time.monotonic() < deadline, listener.log_tail()
        assert (ack.code, ack.control_id) == ("AA", "ADT0002")
        assert listener.health() == 200
    finally:
        listener.stop()
    converter = Hl7Converter(load_mapping(None), MemoryStore())
    expected = [converter.convert(raw).events for raw in (admission, discharge)][1]
    stays = read_topics(own_broker.bootstrap_servers, ["sunes.stays.v1"])
    assert {orjson.loads(v)["event_id"] for _, _, v in stays} == {e["event_id"] for e in expected}
