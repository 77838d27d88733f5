"""`sunes hl7 listen` on a real Kafka broker, with the real converter, over plain MLLP sockets.

- Every AA comes after Kafka has the message's events: right after each AA the topics' end
  offsets already count them; at the end the topics hold exactly the events the in-process
  converter gives for the same messages, keyed by FINESS.
- Malformed messages (tests/fixtures/hl7/malformed/, named after their reason code), a 5 MB
  message and a connection cut mid-frame: AE/AR with the reason in ERR, the original bytes on
  sunes.hl7.deadletter.v1 with the reason in headers, and the listener still answers.
- The converter's state survives SIGKILL: a ZAM sent to the restarted listener finds the ORU
  it acknowledges.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import orjson
import pytest

from processors.store import MemoryStore
from streams.hl7.conversion import Hl7Converter, topic_of
from streams.hl7.mapping import load_mapping
from streams.hl7.mllp import START, frame
from streams.hl7.publishing import hl7_deadletter_spec
from streams.hl7.testing import Ack, ListenerProcess, send
from streams.worker.deadletter import VALUE_PREFIX_BYTES
from tests.kafka_tools import read_deadletters
from tests.streams.hl7.listening import (
    FIXTURES,
    MALFORMED,
    SCENARIO,
    end_offsets,
    event_topics,
    read_topics,
)
from topics.names import TopicNames

pytestmark = pytest.mark.kafka


def expected_events(files: list[Path]) -> list[list[dict[str, object]]]:
    """What the converter gives for each file, in order, in-process (the reference)."""
    converter = Hl7Converter(load_mapping(None), MemoryStore())
    return [converter.convert(path.read_bytes()).events for path in files]


def test_each_aa_comes_after_kafka_has_the_events_of_its_message(
    hl7_listener: ListenerProcess, kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    assert len(SCENARIO) >= 10, f"the scenario fixtures are missing in {FIXTURES}"
    expected = expected_events(SCENARIO)
    names = event_topics(kafka_topics)
    before = end_offsets(kafka_bootstrap_servers, names)
    for path, events in zip(SCENARIO, expected, strict=True):
        (ack,) = send("127.0.0.1", hl7_listener.port, [path.read_bytes()])
        assert ack is not None and ack.code == "AA", (path.name, ack)
        now = end_offsets(kafka_bootstrap_servers, names)
        grew = {t: now[t] - before[t] for t in names if now[t] != before[t]}
        wanted = Counter(kafka_topics.named(topic_of(e)) for e in events)
        assert grew == dict(wanted), path.name
        before = now
    published = read_topics(kafka_bootstrap_servers, names)
    want = sorted(
        (kafka_topics.named(topic_of(e)), str(e["finess"]).encode(), orjson.dumps(e))
        for events in expected
        for e in events
    )
    assert sorted(published) == want
    assert sum(map(len, expected)) >= 10  # the scenario gives events of every topic
    assert {t for t, _, _ in published} == set(names)
    metrics = hl7_listener.metrics()
    assert 'sunes_hl7_messages_total{ack="AA",outcome="accepted",reason=""}' in metrics


def test_malformed_messages_get_ae_or_ar_are_dead_lettered_and_the_listener_goes_on(
    hl7_listener: ListenerProcess, kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    assert len(MALFORMED) >= 5, f"the malformed fixtures are missing in {FIXTURES}"
    reference = Hl7Converter(load_mapping(None), MemoryStore())
    sent: dict[str, bytes] = {}
    for path in MALFORMED:
        raw = path.read_bytes()
        (ack,) = send("127.0.0.1", hl7_listener.port, [raw])
        assert ack is not None, path.name
        assert (ack.code, ack.reason) == (reference.convert(raw).ack_code, path.stem)
        assert ack.code in ("AE", "AR")
        sent[path.stem] = raw
    # 5 MB: over the 4 MiB limit, read to its end, refused; the same connection goes on
    big = SCENARIO[2].read_bytes().rstrip(b"\r") + b"\rNTE|1||" + b"x" * 5_000_000 + b"\r"
    big_ack, after = send("127.0.0.1", hl7_listener.port, [big, SCENARIO[0].read_bytes()])
    assert isinstance(big_ack, Ack) and (big_ack.code, big_ack.reason) == ("AR", "too_large")
    assert big_ack.control_id == "DOC0001"
    assert after is not None and after.code == "AA"
    # a connection cut mid-frame: nothing of it is used, the listener still answers
    cut_mid_frame(hl7_listener.port, frame(SCENARIO[1].read_bytes())[:-200])
    (ack,) = send("127.0.0.1", hl7_listener.port, [SCENARIO[0].read_bytes()])
    assert ack is not None and ack.code == "AA"
    assert hl7_listener.health() == 200

    topic = hl7_deadletter_spec(kafka_topics).name  # behind the same prefix
    letters = read_deadletters(kafka_bootstrap_servers, topic, lambda _: True, len(sent) + 1)
    by_reason = {headers["sunes-reason-code"]: (value, headers) for value, headers in letters}
    assert set(by_reason) == {*sent, "too_large"}
    for reason, raw in sent.items():
        value, headers = by_reason[reason]
        assert value == raw, reason  # the original bytes, replayable
        assert headers["sunes-reason"], reason
        assert headers["sunes-original-size"] == str(len(raw))
    value, headers = by_reason["too_large"]
    assert value == big[:VALUE_PREFIX_BYTES]
    assert headers["sunes-value-truncated"] == "true"
    assert headers["sunes-original-size"] == str(len(big))
    assert headers["sunes-hl7-control-id"] == "DOC0001"
    # the discharge whose frame was cut never reached the topics
    stays = read_topics(kafka_bootstrap_servers, [kafka_topics.stays])
    assert stays == []
    metrics = hl7_listener.metrics()
    assert "sunes_hl7_frames_cut_total 1.0" in metrics
    assert 'sunes_hl7_deadletters_total{reason="too_large"} 1.0' in metrics


def cut_mid_frame(port: int, partial: bytes) -> None:
    async def run() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(partial)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    assert partial.startswith(START)
    asyncio.run(run())


def test_a_zam_after_a_sigkill_still_finds_the_documents_of_its_message(
    hl7_listener: ListenerProcess, kafka_bootstrap_servers: str, kafka_topics: TopicNames
) -> None:
    oru = next(p for p in SCENARIO if "_oru_" in p.name)
    zam = SCENARIO[SCENARIO.index(oru) + 1]
    assert "_zam_" in zam.name
    (ack,) = send("127.0.0.1", hl7_listener.port, [oru.read_bytes()])
    assert ack is not None and ack.code == "AA"
    hl7_listener.kill()
    hl7_listener.start()
    (ack,) = send("127.0.0.1", hl7_listener.port, [zam.read_bytes()])
    assert ack is not None and (ack.code, ack.reason) == ("AA", "")
    dmp = read_topics(kafka_bootstrap_servers, [kafka_topics.dmp])
    deposited = [orjson.loads(v) for _, _, v in dmp if b'"document.deposited"' in v]
    reference = expected_events([oru, zam])[1]
    assert deposited == [e for e in reference if e["type"] == "document.deposited"]
    assert len(deposited) == 2  # the ORU carried two documents (levels 1 and 3)
