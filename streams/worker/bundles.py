"""Bundles on the internal topic: the events of one FINESS from one ingest batch, together.

One Kafka message per (FINESS, batch) instead of one per event: the repartition, the
changelog writes (once per entity per bundle) and Faust's per-message costs are paid per
bundle. The events stay the producers' original JSON, already validated by the ingest agent;
the establishment stage rebuilds them without validating again (`trusted_record`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from topics.fields import ListOf, Timestamp, field_specs
from topics.records import RECORD_TYPES, Record

# The largest value of a bundle on the internal topic: under the producer's default
# max_request_size (1,048,576) and Kafka's default message.max.bytes (1,048,588), with room
# for the key, the record and batch headers.
MAX_BUNDLE_VALUE_BYTES = 1_000_000
# What a bundle of one event adds to it: '{"ts":[<float>],"events":[' and ']}' (a float is at
# most 24 characters: 45 bytes), rounded up.
BUNDLE_OVERHEAD_BYTES = 64
# The largest input message the worker can carry (alone in its bundle, if need be). A larger
# one is dead-lettered as `too_large`; `sunes publish` refuses to send it.
MAX_EVENT_BYTES = MAX_BUNDLE_VALUE_BYTES - BUNDLE_OVERHEAD_BYTES


def encode_bundle(events: Sequence[bytes], timestamps: Sequence[float | None]) -> bytes:
    """`{"ts": [...], "events": [...]}` without decoding the events again."""
    return b"".join(
        (b'{"ts":', orjson.dumps(list(timestamps)), b',"events":[', b",".join(events), b"]}")
    )


def decode_bundle(value: bytes) -> list[tuple[Any, float | None]]:
    """(decoded event, Kafka timestamp of its input message) pairs; ValueError if malformed."""
    try:
        data = orjson.loads(value)
        events, stamps = data["events"], data["ts"]
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"not a bundle of events: {exc}") from None
    if not isinstance(events, list) or not isinstance(stamps, list) or len(events) != len(stamps):
        raise ValueError("not a bundle of events: events and ts must be lists of one length")
    return list(zip(events, stamps, strict=True))


def trusted_record(obj: dict[str, Any]) -> Record:
    """Rebuild a record from an object that `record_from_object` already accepted (our own
    internal topic): types are not checked again, only timestamps and lists are converted.
    Anything else than such an object may raise any exception."""
    return _trusted(RECORD_TYPES[obj["type"]], obj)  # type: ignore[no-any-return]


def _trusted(cls: type, obj: dict[str, Any]) -> Any:
    values = {}
    for spec in field_specs(cls):
        value = obj.get(spec.name)
        if value is None:
            values[spec.name] = None if spec.name in obj or spec.required else spec.default
        elif isinstance(spec.kind, Timestamp):
            values[spec.name] = spec.kind.parse(value, spec.name)
        elif isinstance(spec.kind, ListOf):
            values[spec.name] = tuple(_trusted(spec.kind.item, item) for item in value)
        else:
            values[spec.name] = value
    return cls(**values)
