"""A catalogue of hostile inputs on a real broker: the worker stays up, each is dead-lettered.

Malformed JSON, wrong types in every field of every record type, missing fields, unknown
types, bad FINESS, timestamps without offset, impossible and out-of-range dates, records on
the wrong topic, and messages of every size up to 2 MB (the stays topic is given a 4 MiB
max.message.bytes for it), mixed among a small simulated data set: every hostile input is
dead-lettered once with its code, and /indicators equals the batch report on the valid lines.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.kafka_clients import ensure_topics
from streams.testing import WorkerProcess
from streams.worker.bundles import MAX_EVENT_BYTES
from streams.worker.deadletter import VALUE_PREFIX_BYTES
from tests import builders
from tests.kafka_tools import Message, read_deadletters
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows
from topics.errors import TOO_LARGE
from topics.names import DMP, ESTABLISHMENTS, MSS, STAYS, TopicNames

pytestmark = pytest.mark.kafka

MB = 1_000_000
MiB = 1 << 20
TOPIC_LIMIT = 4 * MiB  # max.message.bytes given to the stays topic for the 2 MB message
INVALID_FIELD, INVALID_FINESS, INVALID_JSON = "invalid_field", "invalid_finess", "invalid_json"
MISSING_FIELD, INVALID_TIMESTAMP = "missing_field", "invalid_timestamp"
TOO_LATE, FUTURE_TIMESTAMP = "too_late", "future_timestamp"
# Date bounds may become input errors (invalid_timestamp) rather than retention refusals.
TOO_OLD = (TOO_LATE, INVALID_TIMESTAMP)
TOO_NEW = (FUTURE_TIMESTAMP, INVALID_TIMESTAMP)
TRACE = "trace"  # an extra field of the templates, holding the marker


class Hostile(NamedTuple):
    name: str
    topic: str
    key: bytes | None
    value: bytes | None
    codes: tuple[str, ...]  # the expected reason code (alternatives, for date bounds)


def padded(obj: dict[str, Any], size: int) -> bytes:
    """`obj` as JSON of exactly `size` bytes: an extra, unknown field (which the contract
    accepts) at the end, so that a prefix keeps the event's fields and the marker."""
    base = orjson.dumps({**obj, "padding": ""})
    return orjson.dumps({**obj, "padding": "x" * (size - len(base))})


def templates(m: str, finess: str) -> list[tuple[str, str, dict[str, Any]]]:
    """A valid record of every type, for our FINESS: (name, topic, object). The marker is in
    two fields of each, so a dead letter still shows it when one of them is replaced."""
    est = builders.establishment(finess, name=f"{m} centre")
    records = [
        ("stay.discharged", STAYS, builders.discharged(f"{m}-stay", finess=finess, event_id=f"{m}-e1",
            correspondents=[{"rpps": "R1", "mss_address": "dr@x.mssante.fr"}])),
        ("stay.discharge_cancelled", STAYS, {**builders.cancelled(f"{m}-stay", "2023-01-13T10:00:00+01:00",
            finess=finess), "event_id": f"{m}-e2"}),
        ("document.produced", DMP, {**builders.produced(f"{m}-doc", "11490-0", stay_id="S1",
            finess=finess), "event_id": f"{m}-e3"}),
        ("document.deposited", DMP, builders.deposited(f"{m}-doc", "11490-0", stay_id="S1",
            finess=finess, replaces="D0", event_id=f"{m}-e4")),
        ("document.deposit_failed", DMP, {**builders.deposit_failed(f"{m}-doc", finess=finess),
            "event_id": f"{m}-e5"}),
        ("document.deleted", DMP, {**builders.deleted(f"{m}-doc", finess=finess), "event_id": f"{m}-e6"}),
        ("mss.sent", MSS, {**builders.mss_sent("pro", "dr@x.mssante.fr", stay_id="S1", finess=finess,
            attachments=[builders.cda_attachment()]), "event_id": f"{m}-e7", "message_id": f"{m}-msg"}),
        ("establishment", ESTABLISHMENTS, est),
    ]  # fmt: skip
    # and an extra field, which the contract accepts: the marker whatever field is replaced
    return [(name, topic, {**obj, TRACE: m}) for name, topic, obj in records]


def wrong_value(value: Any) -> Any:
    """A value of another JSON type than `value`."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int):
        return "1"
    if isinstance(value, list):
        return {"items": 1}
    return 12345


def catalogue(m: str, finess: str) -> list[Hostile]:
    key = finess.encode()
    out: list[Hostile] = []

    def add(name: str, topic: str, value: bytes | None, *codes: str, k: bytes | None = key) -> None:
        out.append(Hostile(name, topic, k, value, codes))

    def stay(**fields: Any) -> bytes:
        return orjson.dumps(builders.discharged(f"{m}-stay-{len(out)}", finess=finess, **fields))

    mb = m.encode()
    # malformed JSON
    add("truncated object", STAYS, b'{"type": "stay.discharged", "event_id": "' + mb + b'"', INVALID_JSON)  # fmt: skip
    add("trailing garbage", STAYS, b'{"event_id": "' + mb + b'"} and more', INVALID_JSON)
    add("not UTF-8", STAYS, b"\xff\xfe" + mb, INVALID_JSON)
    add("byte order mark", STAYS, b"\xef\xbb\xbf" + stay(), INVALID_JSON)
    add("single quotes", STAYS, b"{'event_id': '" + mb + b"'}", INVALID_JSON)
    add("NaN literal", STAYS, b'{"event_id": "' + mb + b'", "x": NaN}', INVALID_JSON)
    add("lone surrogate", STAYS, b'{"event_id": "' + mb + b'", "x": "\\ud800"}', INVALID_JSON)
    add("two objects", STAYS, b'{"event_id": "' + mb + b'"}{"a": 1}', INVALID_JSON)
    add("nested 2000 deep", STAYS, b'{"event_id": "' + mb + b'", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}", INVALID_JSON)  # fmt: skip
    add("empty value", STAYS, b"", INVALID_JSON)
    add("no value on an event topic", DMP, None, INVALID_JSON)
    add("tombstone keyed by no FINESS", ESTABLISHMENTS, None, INVALID_FINESS, k=b"not-a-finess")
    # not an object, no or unknown type
    add("an array", STAYS, orjson.dumps([m, 1]), "not_an_object")
    add("a string", MSS, orjson.dumps(m), "not_an_object")
    for name, type_value, code in [
        ("no type", None, MISSING_FIELD),
        ("type null", "null", MISSING_FIELD),
        ("unknown type", "stay.admitted", "unknown_type"),
        ("type a number", 42, "unknown_type"),
        ("type empty", "", "unknown_type"),
    ]:
        obj = builders.discharged(f"{m}-stay-{len(out)}", finess=finess)
        if type_value is None:
            del obj["type"]
        else:
            obj["type"] = None if type_value == "null" else type_value
        add(name, STAYS, orjson.dumps(obj), code)
    # records on the wrong topic
    add("registry record on the stays topic", STAYS, orjson.dumps(builders.establishment(finess, name=m)), "wrong_topic")  # fmt: skip
    add("event on the registry topic", ESTABLISHMENTS, stay(), "wrong_topic")
    # wrong types in every field, and a required field missing, of every record type
    for type_name, topic, template in templates(m, finess):
        for field_name, value in template.items():
            if field_name in ("type", TRACE):
                continue
            obj = {**template, field_name: wrong_value(value)}
            code = INVALID_FINESS if field_name in ("finess", "finess_ej") else INVALID_FIELD
            add(f"{type_name}: {field_name} of a wrong type", topic, orjson.dumps(obj), code)
        required = [f for f in template if f not in ("type", TRACE, "stay_id", "replaces", "postponed",
                    "has_lab", "has_imaging", "cme_presentation", "attachments", "correspondents")]  # fmt: skip
        dropped = required[len(out) % len(required)]
        obj = {f: v for f, v in template.items() if f != dropped}
        add(f"{type_name}: {dropped} missing", topic, orjson.dumps(obj), MISSING_FIELD)
    # nested and vocabulary defects
    add("mss.sent: bad channel", MSS, orjson.dumps({**templates(m, finess)[6][2], "channel": "fax"}), INVALID_FIELD)  # fmt: skip
    add("mss.sent: attachment cda_level 2", MSS, orjson.dumps({**templates(m, finess)[6][2], "attachments": [builders.cda_attachment(level=2)]}), INVALID_FIELD)  # fmt: skip
    add("document.deposited: cda_level 2", DMP, orjson.dumps({**templates(m, finess)[3][2], "cda_level": 2}), INVALID_FIELD)  # fmt: skip
    add("stay: unknown stay_kind", STAYS, stay(stay_kind="hotel"), INVALID_FIELD)
    add("stay: correspondent without rpps", STAYS, stay(correspondents=[{"mss_address": m}]), MISSING_FIELD)  # fmt: skip
    add("establishment: window F9", ESTABLISHMENTS, orjson.dumps(builders.establishment(finess, name=m, window="F9")), INVALID_FIELD)  # fmt: skip
    # bad FINESS
    for bad in ["75000001", "ABCDEFGHI", "750000013\n", " 750000001", "000000000", "2C0000001", "200000001", 750000001]:  # fmt: skip
        add(f"FINESS {bad!r}", STAYS, orjson.dumps({**templates(m, finess)[0][2], "finess": bad}), INVALID_FINESS)  # fmt: skip
    # timestamps
    for bad in ["2023-01-12T10:00:00", "2023-01-12", "12/01/2023", "2023-13-01T10:00:00+01:00", "2023-01-12T25:00:00+01:00"]:  # fmt: skip
        add(f"discharged_at {bad!r}", STAYS, stay(discharged=bad), INVALID_TIMESTAMP)
    add("discharge before admission", STAYS, stay(admitted="2023-01-13T08:00:00+01:00"), "inconsistent_dates")  # fmt: skip
    add("admitted in year 0001", STAYS, stay(admitted="0001-01-01T00:00:00+00:00"), *TOO_OLD)
    add("admitted 0001 at +14:00", STAYS, stay(admitted="0001-01-01T00:00:00+14:00"), *TOO_OLD)
    add("discharged in year 9999", STAYS, stay(discharged="9999-12-31T23:59:59+00:00", occurred="2023-01-12T10:00:00+01:00"), *TOO_NEW)  # fmt: skip
    add("document produced in 9999", DMP, orjson.dumps({**templates(m, finess)[2][2], "produced_at": "9999-12-31T23:59:59-12:00"}), *TOO_NEW)  # fmt: skip
    add("a 2031 typo", STAYS, stay(discharged="2031-01-12T10:00:00+01:00", occurred="2023-01-12T10:00:00+01:00"), FUTURE_TIMESTAMP)  # fmt: skip
    add("a 1990 typo", STAYS, stay(admitted="1990-01-10T08:00:00+01:00"), *TOO_OLD)
    add("a 2012 stay", STAYS, stay(admitted="2012-03-01T08:00:00+01:00", discharged="2012-03-04T10:00:00+01:00"), *TOO_OLD)  # fmt: skip
    # sizes: over MAX_EVENT_BYTES, a message is too_large whatever it holds
    add("valid event of 1 MB - 10 bytes", STAYS, padded(builders.discharged(f"{m}-big", finess=finess), MB - 10), TOO_LARGE)  # fmt: skip
    add("valid event of 1 MiB - 10 bytes", STAYS, padded(builders.discharged(f"{m}-bigger", finess=finess), MiB - 10), TOO_LARGE)  # fmt: skip
    add("invalid message of 2 MB", STAYS, b'{"event_id": "' + mb + b'", "junk": "' + b"y" * (2 * MB), TOO_LARGE)  # fmt: skip
    return out


async def allow_large_messages(brokers: str, topics: TopicNames) -> None:
    """The test's topics exist (created as `sunes worker` would), and its stays topic takes
    messages up to TOPIC_LIMIT: an input a producer might well send."""
    await ensure_topics(brokers, topics=topics.specs())
    stays = topics.stays
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        limit = {"max.message.bytes": str(TOPIC_LIMIT)}
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, stays, limit)]
        )
        for response in responses:
            for error_code, message, *_ in response.resources:
                assert error_code == 0, f"alter_configs {stays}: {message}"
        for _ in range(50):  # applied asynchronously by the broker
            (described,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, stays, limit)]
            )
            entries = {e[0]: e[1] for r in described.resources for e in r[4]}
            if entries.get("max.message.bytes") == str(TOPIC_LIMIT):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{stays} did not take max.message.bytes={TOPIC_LIMIT}")
    finally:
        await admin.close()


Position = tuple[str, int, int]


def publish_at(brokers: str, messages: list[tuple[str, bytes | None, bytes | None]]) -> list[Position]:  # fmt: skip
    """Publish in order; return each message's (topic, partition, offset)."""

    async def run() -> list[Position]:
        producer = AIOKafkaProducer(
            bootstrap_servers=brokers, linger_ms=5, max_request_size=TOPIC_LIMIT
        )
        await producer.start()
        try:
            futures = [await producer.send(t, v, key=k) for t, k, v in messages]
            metadata = [await future for future in futures]
        finally:
            await producer.stop()
        return [(md.topic, md.partition, md.offset) for md in metadata]

    return asyncio.run(run())


IDENTIFYING = ("patient_id", "stay_id", "recipient", "mss_address", "document_id", "message_id")


def identifiers_of(values: list[bytes]) -> set[str]:
    """Every identifying value in these messages (at any depth), 6 characters or more."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in IDENTIFYING and isinstance(value, str | int) and len(str(value)) >= 6:
                    found.add(str(value))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for value in values:
        try:
            walk(orjson.loads(value))
        except orjson.JSONDecodeError:
            continue
    return found


def position_of(headers: dict[str, str]) -> Position:
    return (
        headers["sunes-source-topic"],
        int(headers["sunes-source-partition"]),
        int(headers["sunes-source-offset"]),
    )


def test_every_hostile_input_is_dead_lettered_and_the_valid_ones_count(
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
) -> None:
    brokers = kafka_bootstrap_servers
    valid, finess = dataset(seed=21, establishments=2, days=4)
    ours = sorted(finess)[0]
    marker = f"hostile-{uuid.uuid4().hex}"
    # valid, and travelling alone in its bundle: 900 kB, over the 256 KiB of a shared one
    alone: Message = (STAYS, ours.encode(), padded(builders.discharged(f"{marker}-alone", finess=ours, admitted="2023-01-10T08:00:00+01:00"), 900_000))  # fmt: skip
    assert len(alone[2]) <= MAX_EVENT_BYTES
    valid = [*valid, alone]
    expected = reference(valid, finess)
    hostile = catalogue(marker, ours)
    assert len(hostile) >= 60

    asyncio.run(allow_large_messages(brokers, kafka_topics))
    worker = workers(f"it-{uuid.uuid4().hex[:8]}")
    # the hostile inputs among the valid ones (registry records first, as in dataset())
    rng = random.Random(21)
    mixed: list[tuple[str, bytes | None, bytes | None, Hostile | None]] = [
        (t, k, v, None) for t, k, v in valid
    ]
    for item in hostile:
        mixed.insert(rng.randrange(2, len(mixed) + 1), (item.topic, item.key, item.value, item))
    positions = publish_at(brokers, [(kafka_topics.named(t), k, v) for t, k, v, _ in mixed])
    wanted = {pos: item for pos, (*_, item) in zip(positions, mixed, strict=True) if item}
    assert len(wanted) == len(hostile)

    wait_for_rows([worker], finess, expected, seconds=180)
    letters: dict[Position, list[tuple[bytes, dict[str, str]]]] = {}
    count = len(wanted)
    while True:  # read on until every expected one is there, or none comes any more
        found = read_deadletters(
            brokers, kafka_topics.deadletter, lambda v: marker.encode() in v or v == b"", count
        )
        letters = {}
        for value, headers in found:
            letters.setdefault(position_of(headers), []).append((value, headers))
        missing = len(wanted.keys() - letters.keys())
        if not missing or len(found) < count:
            break
        count += missing

    assert worker.process is not None and worker.process.poll() is None, "the worker died"
    assert worker.get("/health") is not None
    problems = []
    for position, item in wanted.items():
        got = letters.get(position, [])
        if len(got) != 1:
            problems.append(f"{item.name}: dead-lettered {len(got)} time(s)")
            continue
        value, headers = got[0]
        if headers["sunes-reason-code"] not in item.codes:
            problems.append(f"{item.name}: {headers['sunes-reason-code']}, expected {item.codes}")
        original = item.value or b""
        if len(original) > MAX_EVENT_BYTES:
            if (
                value != original[:VALUE_PREFIX_BYTES]
                or headers.get("sunes-value-truncated") != "true"
                or headers.get("sunes-original-size") != str(len(original))
            ):
                problems.append(f"{item.name}: not truncated as expected: {headers}")
            where = f"the original stays at {position[0]}/{position[1]}/{position[2]}"
            if where not in headers["sunes-reason"]:
                problems.append(f"{item.name}: the reason does not say {where!r}")
        elif value != original:
            problems.append(f"{item.name}: the dead letter is not the original bytes")
    assert problems == [], "\n".join(problems)
    metrics = worker.get("/metrics").decode()
    assert (
        f'sunes_deadletter_events_total{{reason="{TOO_LARGE}",topic="{kafka_topics.stays}"}} 3.0'
        in metrics
    )

    # No patient id, stay id or address of the data set in the log, the headers or /metrics.
    identifying = identifiers_of([v for _, _, v in valid] + [h.value or b"" for h in hostile])
    assert len(identifying) > 50
    log = worker.log_path.read_text(errors="replace")
    headers = "\n".join(v for got in letters.values() for _, h in got for v in h.values())
    leaks = sorted(i for i in identifying if i in log or i in headers or i in metrics)
    assert leaks == [], f"patient data in the log, dead-letter headers or /metrics: {leaks[:5]}"
