"""The listener over real sockets, with a stand-in converter and a publisher that records what
Kafka would get (or fails as Kafka would): an ACK only after the events are acknowledged,
refusals dead-lettered with their reason, no ACK when Kafka fails, and the listener still up
after oversize, cut and broken messages. On a real broker: test_listener_kafka.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import hl7
import pytest

from streams.hl7.listener import Hl7Listener
from streams.hl7.mllp import END, START, frame
from streams.hl7.parsing import MessageHeader, Refusal, read_header
from streams.hl7.publishing import HL7_DEADLETTER, DeadLetterNote, Hl7Publisher, KafkaUnavailable
from tests import builders
from topics.names import DMP


def message(control_id: str, trigger: str = "T04", body: str = "") -> bytes:
    return (
        f"MSH|^~\\&|RIS|CH-Y|PFI|CH-X|202106060931||MDM^{trigger}^MDM_T02|{control_id}|P|2.6|||||"
        f"FRA|UNICODE UTF-8\rEVN||20211005152908\r{body}"
    ).encode()


@dataclass(frozen=True)
class StandIn:
    """What streams.hl7.conversion.Conversion carries."""

    ack_code: str
    events: list[dict[str, Any]]
    reason: str | None
    detail: str | None
    location: str | None
    control_id: str | None
    header: MessageHeader | None


class StandInConverter:
    """T04 → one document.deleted; T03 → ignored; BOOM → raises; BAD → an invalid event;
    anything else → refused as the parser refuses it, or AE unknown_trigger."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def convert(self, raw: bytes) -> StandIn:
        self.seen.append(raw)
        try:
            header = read_header(raw)
        except Refusal as refusal:
            return StandIn(
                refusal.ack_code, [], refusal.reason, refusal.detail, refusal.location, None, None
            )
        done = {"header": header, "control_id": header.control_id, "location": None}
        if header.trigger_event == "T04":
            event = builders.deleted("doc-" + header.control_id)
            event["event_id"] = "evt-" + header.control_id
            return StandIn("AA", [event], None, None, **done)
        if header.trigger_event == "T03":
            return StandIn("AA", [], "ignored_trigger", None, **done)
        if header.trigger_event == "BOOM":
            raise RuntimeError("a converter bug quoting PAT-TROIS")
        if header.trigger_event == "BAD":
            return StandIn("AA", [{"type": "document.deleted", "finess": "1"}], None, None, **done)
        return StandIn("AE", [], "unknown_trigger", "MSH-9.2: expected T02, T04 or T10, found "
                       f"{header.trigger_event!r}", **{**done, "location": "MSH^1^9"})  # fmt: skip


@dataclass
class RecordingPublisher(Hl7Publisher):
    """Hl7Publisher with the broker replaced by a list; `fail` makes every send fail."""

    sent: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = field(default_factory=list)
    fail: bool = False
    started_ok: bool = True

    def __post_init__(self) -> None:
        super().__init__("unused:9092")

    @property
    def started(self) -> bool:
        return self.started_ok

    async def _send_all(
        self, messages: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]]
    ) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise KafkaUnavailable("Kafka did not acknowledge: KafkaTimeoutError")
        self.sent.extend((t, k, v, dict(h or [])) for t, k, v, h in messages)

    def deadletters(self) -> list[tuple[bytes, dict[str, bytes]]]:
        return [(v, h) for t, _, v, h in self.sent if t == HL7_DEADLETTER]


@dataclass
class Running:
    listener: Hl7Listener
    publisher: RecordingPublisher
    converter: StandInConverter
    port: int

    async def exchange(self, *frames: bytes) -> list[hl7.Message | None]:
        """Send frames on one connection; each ACK parsed (None when the connection ended)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        answers: list[hl7.Message | None] = []
        try:
            for data in frames:
                writer.write(data)
                await writer.drain()
                answers.append(await read_ack(reader))
        finally:
            writer.close()
        return answers


async def read_ack(reader: asyncio.StreamReader) -> hl7.Message | None:
    try:
        data = await asyncio.wait_for(reader.readuntil(END), 10)
    except asyncio.IncompleteReadError:
        return None
    assert data.startswith(START)
    return hl7.parse(data[1 : -len(END)].decode())


def msa(ack: hl7.Message | None) -> list[str]:
    assert ack is not None
    return [str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])]


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    converter, publisher = StandInConverter(), RecordingPublisher()
    listener = Hl7Listener(converter, publisher, max_message_bytes=20_000, max_in_flight=2)
    _, port = await listener.start("127.0.0.1", 0)
    yield Running(listener, publisher, converter, port)
    await listener.stop(grace_seconds=5)


async def test_aa_comes_after_the_events_were_acknowledged_and_names_the_message(
    running: Running,
) -> None:
    (ack,) = await running.exchange(frame(message("c1")))
    assert msa(ack) == ["AA", "c1"]
    ((topic, key, value, _),) = running.publisher.sent
    assert (topic, key) == (DMP, builders.F1.encode())
    assert b'"evt-c1"' in value
    text = running.listener.metrics.render().decode()
    assert 'sunes_hl7_messages_total{ack="AA",outcome="accepted",reason=""} 1.0' in text
    assert 'sunes_hl7_events_published_total{topic="sunes.dmp.v1"} 1.0' in text


async def test_an_ignored_message_is_acknowledged_and_counted_with_its_reason(
    running: Running,
) -> None:
    (ack,) = await running.exchange(frame(message("c2", "T03")))
    assert msa(ack) == ["AA", "c2"]
    assert running.publisher.sent == []
    text = running.listener.metrics.render().decode()
    assert (
        'sunes_hl7_messages_total{ack="AA",outcome="ignored",reason="ignored_trigger"} 1.0' in text
    )


async def test_a_refused_message_is_dead_lettered_whole_then_answered_with_err(
    running: Running,
) -> None:
    raw = message("c3", "Z99", "OBX|1|ED|x\r")
    (ack,) = await running.exchange(frame(raw))
    assert msa(ack) == ["AE", "c3"]
    assert ack is not None
    err = ack.segment("ERR")
    assert [str(err[2]), str(err(5)(1)(1))] == ["MSH^1^9", "unknown_trigger"]
    ((value, headers),) = running.publisher.deadletters()
    assert value == raw
    assert headers["sunes-reason-code"] == b"unknown_trigger"
    assert headers["sunes-reason"].startswith(b"MSH-9.2: expected T02")
    assert headers["sunes-hl7-sender"] == b"RIS^CH-Y"
    assert headers["sunes-hl7-control-id"] == b"c3"
    assert headers["sunes-hl7-ack-code"] == b"AE"
    assert headers["sunes-original-size"] == str(len(raw)).encode()
    assert "sunes-value-truncated" not in headers


async def test_no_msh_is_refused_ar_without_control_id(running: Running) -> None:
    (ack,) = await running.exchange(frame(b"PID|1||000003^^^CHU-X^PI\r"))
    assert msa(ack) == ["AR", ""]
    ((value, headers),) = running.publisher.deadletters()
    assert value == b"PID|1||000003^^^CHU-X^PI\r"
    assert headers["sunes-reason-code"] == b"no_msh"


async def test_when_kafka_fails_no_ack_is_sent_and_the_sender_can_send_again(
    running: Running,
) -> None:
    running.publisher.fail = True
    assert running.listener.healthy()
    assert await running.exchange(frame(message("c4"))) == [None]  # closed, no ACK
    assert not running.listener.healthy()
    assert await running.exchange(frame(message("c5", "Z99"))) == [None]  # nor for a dead letter
    running.publisher.fail = False
    (ack,) = await running.exchange(frame(message("c4")))  # the sender re-sends
    assert msa(ack) == ["AA", "c4"]
    assert running.listener.healthy()
    assert len(running.publisher.sent) == 1
    text = running.listener.metrics.render().decode()
    assert 'outcome="kafka_error"' in text


async def test_a_message_over_the_limit_is_refused_ar_and_the_connection_goes_on(
    running: Running,
) -> None:
    big = message("c6", "T02", "OBX|1|ED|18748-4||^text^XML^Base64^" + "QUJD" * 10_000 + "\r")
    big_ack, next_ack = await running.exchange(frame(big), frame(message("c7")))
    assert msa(big_ack) == ["AR", "c6"]  # the MSH read from the first bytes
    assert big_ack is not None
    assert str(big_ack.segment("ERR")(5)(1)(1)) == "too_large"
    assert msa(next_ack) == ["AA", "c7"]
    ((value, headers),) = running.publisher.deadletters()
    assert big.startswith(value) and len(value) == 1024
    assert headers["sunes-original-size"] == str(len(big)).encode()
    assert headers["sunes-value-truncated"] == b"true"
    assert all(b"c6" not in seen for seen in running.converter.seen)  # never converted


async def test_a_connection_cut_mid_frame_publishes_nothing_and_the_listener_stays_up(
    running: Running,
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(START + message("c8")[:40])
    await writer.drain()
    writer.close()
    (ack,) = await running.exchange(frame(message("c9")))
    assert msa(ack) == ["AA", "c9"]
    assert [b'"evt-c9"' in v for _, _, v, _ in running.publisher.sent] == [True]
    text = running.listener.metrics.render().decode()
    assert "sunes_hl7_frames_cut_total 1.0" in text


async def test_a_converter_that_raises_is_an_ae_dead_letter_without_its_message_text(
    running: Running,
) -> None:
    (ack,) = await running.exchange(frame(message("c10", "BOOM")))
    assert msa(ack) == ["AE", "c10"]
    ((_, headers),) = running.publisher.deadletters()
    assert headers["sunes-reason"] == b"internal error: RuntimeError"


async def test_an_event_the_contract_refuses_is_never_published(running: Running) -> None:
    (ack,) = await running.exchange(frame(message("c11", "BAD")))
    assert msa(ack) == ["AE", "c11"]
    ((_, headers),) = running.publisher.deadletters()
    assert headers["sunes-reason-code"] == b"invalid_event"
    assert all(topic == HL7_DEADLETTER for topic, *_ in running.publisher.sent)


async def test_many_connections_at_once_each_get_their_own_answers(running: Running) -> None:
    answers = await asyncio.gather(
        *(running.exchange(frame(message(f"m{n}-1")), frame(message(f"m{n}-2"))) for n in range(8))
    )
    assert [[msa(a)[1] for a in pair] for pair in answers] == [
        [f"m{n}-1", f"m{n}-2"] for n in range(8)
    ]
    assert len(running.publisher.sent) == 16


async def test_metrics_carry_no_control_id_nor_sender(running: Running) -> None:
    await running.exchange(frame(message("secret-42", "Z99")), frame(message("secret-43")))
    text = running.listener.metrics.render().decode()
    assert "secret" not in text and "RIS" not in text and "CH-Y" not in text


class HangingProducer:
    """An aiokafka producer whose broker never answers (it would retry for ever)."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[None]] = []

    async def send(self, *_args: Any, **_kwargs: Any) -> asyncio.Future[None]:
        self.futures.append(asyncio.get_running_loop().create_future())
        return self.futures[-1]


async def test_a_kafka_that_never_answers_is_unavailable_after_the_ack_timeout() -> None:
    publisher = Hl7Publisher("unused:9092", ack_timeout=0.2)
    producer = HangingProducer()
    publisher._producer = producer
    with pytest.raises(KafkaUnavailable, match=r"within 0\.2 s"):
        await publisher.deadletter(b"MSH|x", DeadLetterNote("no_msh", "d", "AR"), 5)
    assert [f.cancelled() for f in producer.futures] == [False]  # the delivery is left alone
