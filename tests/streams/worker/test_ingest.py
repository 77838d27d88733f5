"""The ingest stage in process: no input can stop it, every record is bundled or dead-lettered.

`Ingestor._process` is driven with fake ConsumerRecords and a fake producer that acknowledges
at once, records what it was given, and refuses messages over a size the way aiokafka does:
at `send` above its max_request_size, or in the future (a topic's max.message.bytes).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord, TopicPartition
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitoring.pipeline import PipelineMetrics
from streams.cli import publish as publish_command
from streams.worker import ingest as ingest_module
from streams.worker.bundles import (
    MAX_BUNDLE_VALUE_BYTES,
    MAX_EVENT_BYTES,
    VERSION_2,
    VERSION_3,
    bundle_record,
    decode_bundle,
)
from streams.worker.config import WorkerConfig
from streams.worker.deadletter import VALUE_PREFIX_BYTES, describe
from streams.worker.ingest import MAX_BUNDLE_BYTES, Ingestor
from tests import builders, strategies
from tests.builders import F1, F2
from topics.errors import INTERNAL_ERROR, TOO_LARGE
from topics.fast import fast_struct
from topics.names import DEADLETTER, DMP, ESTABLISHMENTS, MSS, STAYS, TopicNames
from topics.validation import REASON_CODES, InvalidRecord, parse_for_topic

INTERNAL = "test-events-by-finess"
PRODUCER_MAX_REQUEST = 1_048_576  # aiokafka's default max_request_size
TOPIC_MAX_MESSAGE = 1_048_588  # Kafka's default message.max.bytes
CODES = {*REASON_CODES, TOO_LARGE, INTERNAL_ERROR}
MB = 1_000_000


@dataclass
class Sent:
    topic: str
    value: bytes
    key: bytes | None
    headers: dict[str, str]


@dataclass
class FakeProducer:
    """Acknowledges at once; refuses like aiokafka: at send over `max_request_size`, in the
    future over a topic's limit in `topic_limits` (max.message.bytes)."""

    max_request_size: int = PRODUCER_MAX_REQUEST
    topic_limits: Mapping[str, int] = field(default_factory=dict)
    fail_with: BaseException | None = None  # every future fails with it (a broker outage)
    sent: list[Sent] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)

    async def send(  # the ingest stage's Producer protocol; it passes key and headers only
        self, topic: str, value: bytes | None = None, *, key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None, **_: Any,
    ) -> asyncio.Future[Any]:  # fmt: skip
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or [])
        if size > self.max_request_size:
            self.refused.append((topic, size))
            raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_with is not None:
            future.set_exception(self.fail_with)
        elif size > self.topic_limits.get(topic, TOPIC_MAX_MESSAGE):
            self.refused.append((topic, size))
            future.set_exception(MessageSizeTooLargeError())
        else:
            self.sent.append(Sent(topic, value or b"", key, describe(headers or [])))
            future.set_result(None)
        return future

    def bundles(self) -> list[tuple[str, list[Any]]]:
        """(key, events as contract JSON objects) of each bundle sent to the internal topic."""
        out = []
        for sent in self.sent:
            if sent.topic == INTERNAL:
                assert len(sent.value) <= MAX_BUNDLE_VALUE_BYTES
                assert sent.key is not None
                records = [bundle_record(item) for item, _ in decode_bundle(sent.value)]
                out.append((sent.key.decode(), [as_json(record) for record in records]))
        return out

    def deadletters(self) -> list[Sent]:
        return [sent for sent in self.sent if sent.topic == DEADLETTER]


NOW_MS = int(time.time() * 1000)


def record(
    topic: str, value: bytes | None, offset: int, key: bytes | None = None, partition: int = 0
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=NOW_MS,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key) if key is not None else -1,
        serialized_value_size=len(value) if value is not None else -1,
        headers=[],
    )


def batches_of(
    messages: Iterable[tuple[str, bytes | None]],
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """One partition per topic, offsets in order: the position of a message is its index."""
    batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
    for offset, (topic, value) in enumerate(messages):
        batches.setdefault(TopicPartition(topic, 0), []).append(record(topic, value, offset))
    return batches


def run_ingest(
    messages: Iterable[tuple[str, bytes | None]], producer: FakeProducer | None = None
) -> tuple[FakeProducer, PipelineMetrics, CollectorRegistry]:
    producer = producer or FakeProducer()
    registry = CollectorRegistry()
    pipeline = PipelineMetrics(registry)
    ingestor = Ingestor(WorkerConfig(store="memory://"), INTERNAL, pipeline, {})
    asyncio.run(ingestor._process(batches_of(messages), producer))
    return producer, pipeline, registry


def consumed(registry: CollectorRegistry, topic: str, outcome: str) -> float:
    labels = {"topic": topic, "outcome": outcome}
    return registry.get_sample_value("sunes_events_consumed_total", labels) or 0.0


def padded(obj: dict[str, Any], size: int) -> bytes:
    """`obj` as JSON of exactly `size` bytes, padded with an extra field (which the contract
    accepts) placed last, so that a prefix of the bytes keeps the real fields."""
    base = orjson.dumps({**obj, "padding": ""})
    assert len(base) <= size
    return orjson.dumps({**obj, "padding": "x" * (size - len(base))})


def crowded(stay: str, correspondents: int) -> dict[str, Any]:
    """A discharge with many correspondents: a big event whose fields are all the contract's
    (the bundle row carries them, not the fields the contract does not know)."""
    many = [{"rpps": f"{i:011d}", "mss_address": None} for i in range(correspondents)]
    return builders.discharged(stay, correspondents=many)


# --- examples -----------------------------------------------------------------------------


def test_valid_events_are_bundled_per_finess() -> None:
    events = [
        (STAYS, builders.discharged("S1")),
        (DMP, builders.deposited("D1", "11490-0", stay_id="S1")),
        (STAYS, builders.discharged("S2", finess=F2)),
        (MSS, builders.mss_sent("pro", "dr@x.mssante.fr", attachments=[builders.cda_attachment()])),
        (DMP, builders.deleted("D9", finess=F2)),
    ]
    messages = [(topic, orjson.dumps(obj)) for topic, obj in events]
    producer, _, registry = run_ingest(
        [(ESTABLISHMENTS, orjson.dumps(builders.establishment())), *messages]
    )

    assert producer.deadletters() == []
    by_finess = dict(producer.bundles())
    assert sorted(by_finess) == [F1, F2]  # one bundle per FINESS for the whole poll
    for finess, objs in by_finess.items():
        wanted = [as_json(builders.parse(obj)) for _, obj in events if obj["finess"] == finess]
        assert sorted(objs, key=orjson.dumps) == sorted(wanted, key=orjson.dumps)
    assert consumed(registry, STAYS, "valid") == 2
    assert consumed(registry, ESTABLISHMENTS, "valid") == 1  # counted, not bundled


def test_the_largest_poll_of_one_finess_is_cut_into_bundles_kafka_takes() -> None:
    """A poll is bundled whole (one bundle per FINESS), however many messages --ingest-batch
    lets it hold: its events still travel in bundles of at most MAX_BUNDLE_BYTES of rows, each
    under the internal topic's message size (bundles() checks it), every event once, in order."""
    stays = [f"S{i}" for i in range(20_000)]  # bench/README.md's largest poll measured
    values = [orjson.dumps(builders.discharged(stay)) for stay in stays]
    producer, _, registry = run_ingest([(STAYS, v) for v in values])
    bundles = producer.bundles()
    assert {key for key, _ in bundles} == {F1}
    assert len(bundles) > 1
    assert [o["stay_id"] for _, objs in bundles for o in objs] == stays
    rows_per_bundle = [len(sent.value) for sent in producer.sent if sent.topic == INTERNAL]
    assert max(rows_per_bundle) <= MAX_BUNDLE_BYTES + 64 * 1024  # rows + their timestamps
    assert consumed(registry, STAYS, "valid") == len(stays)


def test_an_event_of_the_largest_size_travels_alone() -> None:
    # its bundle row (the fields without their names, no padding) is still over the 256 KiB
    # of a shared bundle
    big = padded(crowded("S-big", 20_000), MAX_EVENT_BYTES)
    small = [orjson.dumps(builders.discharged(f"S{i}")) for i in range(3)]
    producer, _, registry = run_ingest([(STAYS, v) for v in (small[0], big, *small[1:])])

    assert producer.deadletters() == [] and producer.refused == []
    bundles = producer.bundles()
    alone = [objs for _, objs in bundles if any(o["stay_id"] == "S-big" for o in objs)]
    assert len(alone) == 1 and len(alone[0]) == 1
    assert sum(len(objs) for _, objs in bundles) == 4
    assert consumed(registry, STAYS, "valid") == 4


def test_an_event_whose_item_would_be_too_large_travels_as_a_version_2_row() -> None:
    """A bundle item writes every field with its name, so a message of many short nested
    records without their optional fields grows twice over: past MAX_EVENT_BYTES it travels
    as a version 2 row (no names), alone, and is applied as the same record."""
    many = [{"rpps": f"{i}"} for i in range(30_000)]  # mss_address absent: null
    big = orjson.dumps(builders.discharged("S-big", correspondents=many))
    assert len(big) < MAX_EVENT_BYTES // 2 + 30_000  # its item: over MAX_EVENT_BYTES
    small = [orjson.dumps(builders.discharged(f"S{i}")) for i in range(3)]
    producer, _, registry = run_ingest([(STAYS, v) for v in (small[0], big, *small[1:])])

    assert producer.deadletters() == [] and producer.refused == []
    internal = [sent.value for sent in producer.sent if sent.topic == INTERNAL]
    assert sorted(value[:1] for value in internal) == [VERSION_2, VERSION_3, VERSION_3]
    bundles = producer.bundles()
    (alone,) = [objs for _, objs in bundles if any(o["stay_id"] == "S-big" for o in objs)]
    assert alone == [as_json(parse_for_topic(big, STAYS))]
    assert sorted(o["stay_id"] for _, objs in bundles for o in objs) == ["S-big", "S0", "S1", "S2"]
    assert consumed(registry, STAYS, "valid") == 4


def test_an_event_of_1_mb_minus_10_bytes_is_too_large() -> None:
    """1 MB − 10 bytes is over MAX_EVENT_BYTES (1 MB less the bundle overhead): the worker
    could not carry it, so it is dead-lettered as too_large, truncated, not bundled."""
    big = padded(builders.discharged("S-big"), MB - 10)
    assert len(big) > MAX_EVENT_BYTES
    others = [orjson.dumps(builders.discharged(f"S{i}")) for i in range(2)]
    producer, _, registry = run_ingest([(STAYS, others[0]), (STAYS, big), (STAYS, others[1])])

    (letter,) = producer.deadletters()
    assert letter.value == big[:VALUE_PREFIX_BYTES]
    headers = letter.headers
    assert headers["sunes-reason-code"] == TOO_LARGE
    assert headers["sunes-value-truncated"] == "true"
    assert headers["sunes-original-size"] == str(MB - 10)
    assert headers["sunes-source-topic"] == STAYS
    assert headers["sunes-source-offset"] == "1"
    assert f"{MB - 10:,} bytes" in headers["sunes-reason"]
    assert f"{MAX_EVENT_BYTES:,} bytes" in headers["sunes-reason"]
    assert f"the original stays at {STAYS}/0/1" in headers["sunes-reason"]
    assert [o["stay_id"] for _, objs in producer.bundles() for o in objs] == ["S0", "S1"]
    assert consumed(registry, STAYS, "invalid") == 1


def test_a_2_mb_invalid_message_is_dead_lettered_truncated() -> None:
    value = b'{"type": "stay.discharged", "broken": "' + b"y" * (2 * MB) + b"]"
    producer, _, _ = run_ingest([(STAYS, value)])
    (letter,) = producer.deadletters()
    assert letter.value == value[:VALUE_PREFIX_BYTES]
    assert letter.headers["sunes-reason-code"] == TOO_LARGE
    assert letter.headers["sunes-original-size"] == str(len(value))
    assert letter.headers["sunes-value-truncated"] == "true"


@pytest.mark.parametrize("buggy", ["fast_struct", "parse_for_topic"])
def test_an_exception_in_one_record_dead_letters_it_alone(
    buggy: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the fast path, or in the validation it leaves a record to."""
    poison = builders.discharged("S-poison", patient="PATIENT-SECRET")
    real = parse_for_topic

    def parse(raw: bytes | None, topic: str, key: bytes | None, topics: TopicNames) -> Any:
        if raw is not None and b"S-poison" in raw:
            raise RuntimeError("a bug somewhere")
        return real(raw, topic, key, topics)

    def fast(raw: bytes | None, registry_topic: bool) -> Any:
        if raw is not None and b"S-poison" in raw:
            if buggy == "fast_struct":
                raise RuntimeError("a bug somewhere")
            return None  # unsure: the validation decides
        return fast_struct(raw, registry_topic)

    monkeypatch.setattr(ingest_module, "fast_struct", fast)
    if buggy == "parse_for_topic":
        monkeypatch.setattr(ingest_module, "parse_for_topic", parse)
    values = [
        orjson.dumps(builders.discharged("S1")),
        orjson.dumps(poison),
        orjson.dumps(builders.discharged("S2")),
    ]
    with caplog.at_level(logging.INFO):
        producer, _, registry = run_ingest([(STAYS, v) for v in values])

    (letter,) = producer.deadletters()
    assert letter.value == values[1]  # the original bytes, replayable once the bug is fixed
    assert letter.headers["sunes-reason-code"] == INTERNAL_ERROR
    assert (
        letter.headers["sunes-reason"] == "internal error: RuntimeError"
    )  # no message: it may quote data
    assert "PATIENT-SECRET" not in letter.headers["sunes-reason"]
    assert [o["stay_id"] for _, objs in producer.bundles() for o in objs] == ["S1", "S2"]
    assert consumed(registry, STAYS, "valid") == 2
    assert consumed(registry, STAYS, "invalid") == 1
    assert f"{STAYS}[0]@1" in caplog.text
    assert "PATIENT-SECRET" not in caplog.text and "a bug somewhere" not in caplog.text


def test_a_dead_letter_the_topic_refuses_whole_is_sent_truncated() -> None:
    bad = b'{"type": "stay.discharged", "pad": "' + b"z" * 5000 + b'"}'  # invalid, 5 kB
    for producer in (
        FakeProducer(topic_limits={DEADLETTER: 4000}),  # the broker refuses it
        FakeProducer(max_request_size=4000),  # the producer does
    ):
        run_ingest([(STAYS, bad)], producer)
        (letter,) = producer.deadletters()
        assert letter.value == bad[:VALUE_PREFIX_BYTES]
        assert letter.headers["sunes-reason-code"] == "missing_field"
        assert letter.headers["sunes-value-truncated"] == "true"
        assert letter.headers["sunes-original-size"] == str(len(bad))
        assert f"the original stays at {STAYS}/0/0" in letter.headers["sunes-reason"]


def test_even_a_dead_letter_topic_that_refuses_everything_does_not_stop_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = FakeProducer(topic_limits={DEADLETTER: 10})
    good = orjson.dumps(builders.discharged("S1"))
    run_ingest([(STAYS, b"not json"), (STAYS, good)], producer)
    assert producer.deadletters() == []
    assert len(producer.refused) == 3  # whole, truncated, without value
    assert f"cannot dead-letter {STAYS}[0]@0" in caplog.text
    assert len(producer.bundles()) == 1


def test_a_bundle_the_internal_topic_refuses_is_split_then_too_large() -> None:
    """An internal topic with a lower max.message.bytes than ours: the bundle's events travel
    alone; the one too big even alone is dead-lettered as too_large."""
    big = padded(crowded("S-big", 12_000), 600_000)  # a bundle row of ~250 kB
    values = [orjson.dumps(builders.discharged("S1")), big, orjson.dumps(builders.discharged("S2"))]
    producer = FakeProducer(topic_limits={INTERNAL: 200_000})
    _, _, registry = run_ingest([(STAYS, v) for v in values], producer)
    (letter,) = producer.deadletters()
    assert letter.headers["sunes-reason-code"] == TOO_LARGE
    assert f"refused by {INTERNAL}" in letter.headers["sunes-reason"]
    assert letter.value == big[:VALUE_PREFIX_BYTES]
    assert sorted(o["stay_id"] for _, objs in producer.bundles() for o in objs) == ["S1", "S2"]
    assert consumed(registry, STAYS, "valid") == 2
    assert consumed(registry, STAYS, "invalid") == 1


@dataclass
class BatchingProducer(FakeProducer):
    """Batches like aiokafka: what is sent to a topic before the loop runs again goes in one
    batch of at most `batch_bytes`, which the broker takes or refuses whole (max.message.bytes)."""

    batch_bytes: int = ingest_module.PRODUCER_BATCH_BYTES
    open: dict[str, list[tuple[bytes, bytes | None, asyncio.Future[Any], int]]] = field(
        default_factory=dict
    )
    batches: list[int] = field(default_factory=list)  # messages per batch taken

    async def send(
        self, topic: str, value: bytes | None = None, *, key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None, **_: Any,
    ) -> asyncio.Future[Any]:  # fmt: skip
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or [])
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        batch = self.open.setdefault(topic, [])
        if batch and sum(m[3] for m in batch) + size > self.batch_bytes:
            self._resolve(topic)
            batch = self.open.setdefault(topic, [])
        if not batch:
            loop.call_soon(self._resolve, topic)
        batch.append((value or b"", key, future, size))
        return future

    def _resolve(self, topic: str) -> None:
        batch = self.open.pop(topic, [])
        if not batch:
            return
        if sum(m[3] for m in batch) > self.topic_limits.get(topic, TOPIC_MAX_MESSAGE):
            for _, _, future, size in batch:
                self.refused.append((topic, size))
                future.set_exception(MessageSizeTooLargeError())
            return
        self.batches.append(len(batch))
        for value, key, future, _ in batch:
            self.sent.append(Sent(topic, value, key, {}))
            future.set_result(None)


def test_several_bundles_go_in_one_producer_batch() -> None:
    values = [orjson.dumps(builders.discharged(f"S{i}", finess=f)) for i, f in enumerate([F1, F2])]
    producer = BatchingProducer()
    run_ingest([(STAYS, v) for v in values], producer)
    assert producer.batches == [2]  # both bundles in one produce request
    assert sorted(key for key, _ in producer.bundles()) == [F1, F2]


def test_the_pieces_of_a_batch_refused_for_its_size_go_alone() -> None:
    """The broker refuses a batch whole: bundles that fit alone but not together are split,
    and their events sent one batch each, never refused again for their neighbours."""
    finesses = [F1, F2, "750000003", "750000004"]
    values = [
        orjson.dumps(builders.discharged(f"S{i}-{j}", finess=f))
        for i, f in enumerate(finesses)
        for j in range(3)
    ]
    alone = max(len(v) for v in values) + 200  # one event per batch, not two
    producer = BatchingProducer(topic_limits={INTERNAL: alone * 2})
    _, _, registry = run_ingest([(STAYS, v) for v in values], producer)
    assert producer.refused  # the first batch, all bundles together, was refused
    assert producer.deadletters() == []
    delivered = sorted(o["stay_id"] for _, objs in producer.bundles() for o in objs)
    assert delivered == sorted(f"S{i}-{j}" for i in range(4) for j in range(3))
    assert consumed(registry, STAYS, "valid") == 12


def test_kafka_failing_still_fails_the_poll_so_that_it_is_replayed() -> None:
    producer = FakeProducer(fail_with=KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        run_ingest([(STAYS, orjson.dumps(builders.discharged("S1")))], producer)


# --- sunes publish refuses what a worker could not carry -----------------------------------


class FakePublisher:
    sent: ClassVar[list[tuple[str, bytes, bytes | None]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.published: Counter[str] = Counter()

    async def __aenter__(self) -> FakePublisher:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def send(self, topic: str, value: bytes, key: bytes | None) -> None:
        FakePublisher.sent.append((topic, value, key))
        self.published[topic] += 1


@pytest.mark.parametrize("include_invalid", [False, True])
def test_publish_refuses_a_line_over_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, include_invalid: bool
) -> None:
    monkeypatch.setattr(publish_command, "Publisher", FakePublisher)
    FakePublisher.sent = []
    fits = padded(builders.discharged("S-fits"), MAX_EVENT_BYTES)
    over = padded(builders.discharged("S-over"), MB - 10)
    small = orjson.dumps(builders.discharged("S1"))
    path = tmp_path / "big.ndjson"
    path.write_bytes(b"\n".join([small, over, fits]) + b"\n")
    out = io.StringIO()
    result = asyncio.run(
        publish_command.publish_file(
            path, "127.0.0.1:9", {}, create_topics=False, include_invalid=include_invalid, out=out
        )
    )
    assert result.invalid == 1 and result.too_large == 1  # exit status 1, as invalid lines
    report = out.getvalue()
    assert f"{path}:2: invalid ({TOO_LARGE}): the line is {MB - 10:,} bytes" in report
    assert f"{MAX_EVENT_BYTES:,} bytes" in report
    assert [value for _, value, _ in FakePublisher.sent] == [small, fits]  # never the big one


# --- the property: whatever comes in, nothing raises, each record lands once ---------------

TIMEZONES = [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
timestamps = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from(TIMEZONES),
)
strings = st.one_of(
    st.text(max_size=20),
    timestamps,
    st.sampled_from([F1, F2, "2A0000001", "75000000", "750000001\n", "000000000", ""]),
    st.sampled_from(["stay.discharged", "mss.sent", "establishment", "qualifiee", "pro"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
json_values = strategies.json_values(scalars, 4, 12)
BUILDERS: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    (ESTABLISHMENTS, builders.establishment),
    (
        STAYS,
        lambda: builders.discharged("S1", correspondents=[{"rpps": "R1", "mss_address": "a@b.fr"}]),
    ),
    (STAYS, lambda: builders.cancelled("S1", "2023-01-13T10:00:00+01:00")),
    (DMP, lambda: builders.produced("D1", "11490-0", stay_id="S1")),
    (DMP, lambda: builders.deposited("D1", "11490-0", stay_id="S1", replaces="D0")),
    (DMP, lambda: builders.deposit_failed("D1")),
    (DMP, lambda: builders.deleted("D1")),
    (
        MSS,
        lambda: builders.mss_sent(
            "pro", "dr@x.mssante.fr", attachments=[builders.cda_attachment()]
        ),
    ),
]


@st.composite
def mutated_event(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid event of any type with some fields (nested ones too) builders.deleted, replaced by any
    JSON value, or added."""
    topic, build = draw(st.sampled_from(BUILDERS))
    topic = draw(st.sampled_from([topic, topic, topic, topic, STAYS, ESTABLISHMENTS]))
    obj = build()
    stamps = [k for k, v in obj.items() if k.endswith("_at") and isinstance(v, str)]
    redate: bool = draw(st.booleans())
    if stamps and redate:  # a date anywhere in 0001–9999, any offset
        obj[draw(st.sampled_from(stamps))] = draw(timestamps)
    for _ in range(draw(st.integers(0, 3))):
        target = obj
        nested = [k for k, v in obj.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
        descend: bool = draw(st.booleans())
        if nested and descend:
            target = obj[draw(st.sampled_from(nested))][0]
        name = draw(st.sampled_from([*sorted(target), "extra"]))
        if draw(st.integers(0, 3)) == 0:
            target.pop(name, None)
        else:
            target[name] = draw(st.one_of(timestamps, json_values))
    return topic, orjson.dumps(obj)


messages = st.one_of(
    st.tuples(st.sampled_from([STAYS, DMP, MSS, ESTABLISHMENTS]), st.binary(max_size=300)),
    st.tuples(st.sampled_from([STAYS, ESTABLISHMENTS]), json_values.map(orjson.dumps)),
    st.tuples(st.sampled_from([STAYS, ESTABLISHMENTS]), st.none()),  # no value (a tombstone)
    mutated_event(),
    mutated_event(),  # twice as likely: the valid path matters most
)


def as_json(record: Any) -> Any:
    """A record as the JSON object of the contract (what `topics.validation` reads back)."""
    return orjson.loads(orjson.dumps(record))


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(messages, st.integers(0, 9)), min_size=1, max_size=12))
def test_no_input_raises_and_each_is_bundled_or_dead_lettered_once(
    inputs: list[tuple[tuple[str, bytes | None], int]],
) -> None:
    listed = [message for message, _ in inputs]
    # about one input in ten also hits a bug of the parser (an injected exception)
    faulty = {value for (_, value), dice in inputs if dice == 0 and value is not None}
    real = parse_for_topic

    def parse(raw: bytes | None, topic: str, key: bytes | None = None) -> Any:
        if raw in faulty:
            raise ValueError("injected")
        return real(raw, topic, key)

    real_fast = fast_struct

    def fast(raw: bytes | None, registry_topic: bool) -> Any:
        if raw in faulty:
            raise ValueError("injected")
        return real_fast(raw, registry_topic)

    with (
        mock.patch.object(ingest_module, "parse_for_topic", parse),
        mock.patch.object(ingest_module, "fast_struct", fast),
    ):
        producer, _, registry = run_ingest(listed)  # never raises

    letters = {}
    for letter in producer.deadletters():
        position = (
            letter.headers["sunes-source-topic"],
            int(letter.headers["sunes-source-offset"]),
        )
        assert position not in letters, "dead-lettered twice"
        assert letter.headers["sunes-reason-code"] in CODES
        assert letter.headers["sunes-reason"]
        letters[position] = letter
    bundled = Counter(
        canonical(obj)
        for finess, objs in producer.bundles()
        for obj in objs
        if obj["finess"] == finess or pytest.fail("an event in another FINESS's bundle")
    )
    expected_bundled: Counter[bytes] = Counter()
    for offset, (topic, value) in enumerate(listed):
        found = letters.get((topic, offset))
        if found is not None:
            assert found.value == (value or b"")  # small: the original bytes, whole
            if value in faulty:
                assert found.headers["sunes-reason-code"] == INTERNAL_ERROR
            continue
        assert value not in faulty
        parsed = parse_for_topic(value, topic)  # not dead-lettered: it must be valid
        if not isinstance(parsed, InvalidRecord) and topic != ESTABLISHMENTS:
            expected_bundled[canonical(as_json(parsed))] += 1  # the record the contract reads
    assert bundled == expected_bundled  # every valid event once, nothing else
    for code in {letter.headers["sunes-reason-code"] for letter in letters.values()}:
        event(f"dead-lettered as {code}")  # shown by --hypothesis-show-statistics
    if bundled:
        event("some events bundled")
    topics = {topic for topic, _ in listed}
    total = sum(consumed(registry, t, o) for t in topics for o in ("valid", "invalid"))
    assert total == len(listed)


class _Built(Exception):
    """Stops Ingestor.run once its producer is built."""


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({}, ingest_module.PRODUCER_BATCH_BYTES), ({"max_batch_size": 1}, 1)],
)
def test_the_ingest_producer_batches_bundles_unless_the_broker_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], expected: int
) -> None:
    """Several bundles per produce batch, but a broker's own client settings win (Tansu takes
    one record per batch): before, both were passed and the worker crashed at start."""
    built: dict[str, Any] = {}

    def producer(**kwargs: Any) -> Any:
        built.update(kwargs)
        raise _Built

    monkeypatch.setattr(ingest_module, "AIOKafkaConsumer", lambda **kwargs: None)
    monkeypatch.setattr(ingest_module, "AIOKafkaProducer", producer)
    ingestor = Ingestor(
        WorkerConfig(store="memory://"), INTERNAL, PipelineMetrics(CollectorRegistry()), overrides
    )
    with pytest.raises(_Built):
        asyncio.run(ingestor.run())
    assert built["max_batch_size"] == expected
