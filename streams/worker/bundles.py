"""Bundles on the internal topic: the events of one FINESS from one ingest batch, together.

One Kafka message per (FINESS, batch) instead of one per event: the repartition, the
changelog writes (once per entity per bundle) and Faust's per-message costs are paid per
bundle. The ingest stage validates each event once (`topics.validation`); the bundle carries
the typed record, so the establishment stage rebuilds it without validating or matching a
timestamp pattern again (decode once).

Formats, told apart by the first byte of the value (a reader upgraded while bundles of the
previous formats wait on the internal topic still applies them):
- version 3 (`\\x03`, written since the sixth session of issue 15):
  `\\x03[[ts...],"order",[events of type 0],[events of type 1],...]`, each event the JSON
  object `msgspec.json.encode` writes of its record (timestamps RFC 3339 with 6-digit
  microseconds when not 0 and the offset, `Z` for UTC: what msgspec reads back as the very
  datetime), grouped by type in the order of `BUNDLE_TYPES`, `order` one character per event
  (the digit of its type's position) saying in which order they came. msgspec decodes a whole
  bundle straight into the records, in C: no Python per field. `BUNDLE_TYPES` and the
  records' field names are the format (the test pins them).
- version 2 (`\\x02`, issue 15's earlier sessions): `\\x02[[ts...],[row,...]]`, one row per
  event, the record's fields in the order of its dataclass (`topics.records`), the type name
  first, timestamps as strings that `datetime.fromisoformat` reads as the record's value,
  nested records as rows. The field order is the format (the test pins it).
- version 1 (`{`): `{"ts":[...],"events":[...]}`, the producers' original JSON objects.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import orjson

from topics.fields import ListOf, Timestamp, field_specs
from topics.records import EVENT_TYPES, RECORD_TYPES, Event, Record

# The largest value of a bundle on the internal topic: under the producer's default
# max_request_size (1,048,576) and Kafka's default message.max.bytes (1,048,588), with room
# for the key, the record and batch headers.
MAX_BUNDLE_VALUE_BYTES = 1_000_000
# What a bundle of one event adds to it: version 3's '\x03[[<float>],"0",[' and ']' then
# ',[]' for each other type and ']' (a float is at most 24 characters: 54 bytes), rounded up.
BUNDLE_OVERHEAD_BYTES = 64
# The largest input message the worker can carry (alone in its bundle, if need be). A larger
# one is dead-lettered as `too_large`; `sunes publish` refuses to send it.
MAX_EVENT_BYTES = MAX_BUNDLE_VALUE_BYTES - BUNDLE_OVERHEAD_BYTES

VERSION_2 = b"\x02"
VERSION_3 = b"\x03"


class _Layout:
    """How a row of one record class is read: which positions hold timestamps, which hold
    lists of nested records (with their own layout)."""

    __slots__ = ("cls", "lists", "stamps", "values")

    def __init__(self, cls: type) -> None:
        specs = field_specs(cls)
        if len(specs) < 2:  # attrgetter of one name gives the value, not a tuple
            raise TypeError(f"{cls.__name__}: a row needs two fields or more")
        self.cls = cls
        self.values = operator.attrgetter(*(spec.name for spec in specs))
        self.stamps = tuple(i for i, s in enumerate(specs) if isinstance(s.kind, Timestamp))
        self.lists = tuple(
            (i, _Layout(s.kind.item)) for i, s in enumerate(specs) if isinstance(s.kind, ListOf)
        )

    def row(self, record: Any) -> Any:
        """The record's field values in order (orjson writes a tuple as an array and a
        datetime as RFC 3339), nested records as rows."""
        values: Any = self.values(record)
        for index, item in self.lists:
            if values[index]:  # most lists are empty: the tuple goes as it is
                values = list(values)
                values[index] = [item.row(element) for element in values[index]]
        return values

    def build(self, values: list[Any]) -> Any:
        for index in self.stamps:
            values[index] = datetime.fromisoformat(values[index])
        for index, item in self.lists:
            values[index] = tuple(item.build(list(element)) for element in values[index])
        return self.cls(*values)


# Only events travel on the internal topic: a row of another type is refused.
_LAYOUTS = {name: _Layout(cls) for name, cls in EVENT_TYPES.items()}


# The event types of a version 3 bundle, in the order of its groups: the format (a new type
# goes last, with a new version byte).
BUNDLE_TYPES = tuple(EVENT_TYPES)
_CODES = {name: str(index) for index, name in enumerate(BUNDLE_TYPES)}
if len(BUNDLE_TYPES) > 10:  # one digit per event
    raise TypeError("version 3 bundles hold at most 10 event types")
_ENCODE = msgspec.json.Encoder().encode
_GROUPS: Any = tuple(list.__class_getitem__(EVENT_TYPES[name]) for name in BUNDLE_TYPES)
_DECODE_V3 = msgspec.json.Decoder(
    tuple.__class_getitem__((list[float | None], str, *_GROUPS))
).decode


def event_item(event: Any) -> bytes:
    """One event as an item of a version 3 bundle: its record, or the struct of
    `topics.fast.fast_struct` (which encodes as its record's very JSON object)."""
    return _ENCODE(event)


def encode_bundle(
    types: Sequence[str], items: Sequence[bytes], timestamps: Sequence[float | None]
) -> bytes:
    """A version 3 bundle of `event_item`s of these event types, with the Kafka timestamps
    of their input messages."""
    groups: list[list[bytes]] = [[] for _ in BUNDLE_TYPES]
    for name, item in zip(types, items, strict=True):
        groups[int(_CODES[name])].append(item)
    parts = [VERSION_3, b"[", orjson.dumps(list(timestamps)), b',"']
    parts.append("".join([_CODES[name] for name in types]).encode())
    parts.append(b'"')
    for group in groups:
        parts.extend((b",[", b",".join(group), b"]"))
    parts.append(b"]")
    return b"".join(parts)


_DECODE_ITEM = {name: msgspec.json.Decoder(cls).decode for name, cls in EVENT_TYPES.items()}


def item_as_row(type_name: str, item: bytes) -> bytes:
    """The version 2 row of an `event_item` of this type. An item writes every field with its
    name, defaults included, so it can be longer than the message it came from (twice and
    more, for a message of many short nested records); a row has no names, so it never is:
    an event whose item is over MAX_EVENT_BYTES travels as a row, alone in a version 2
    bundle, as workers before version 3 carried it."""
    return event_row_v2(_DECODE_ITEM[type_name](item))


def event_row_v2(event: Event) -> bytes:
    """One event as a row of a version 2 bundle (its `type` field comes first): what workers
    before version 3 wrote."""
    return orjson.dumps(_LAYOUTS[event.type].row(event))


def encode_bundle_v2(rows: Sequence[bytes], timestamps: Sequence[float | None]) -> bytes:
    """A version 2 bundle of `event_row_v2`s: what workers before version 3 wrote."""
    return b"".join(
        (VERSION_2, b"[", orjson.dumps(list(timestamps)), b",[", b",".join(rows), b"]]")
    )


def encode_bundle_v1(events: Sequence[bytes], timestamps: Sequence[float | None]) -> bytes:
    """A version 1 bundle of the original JSON events: what workers before version 2 wrote."""
    return b"".join(
        (b'{"ts":', orjson.dumps(list(timestamps)), b',"events":[', b",".join(events), b"]}")
    )


def decode_bundle(value: bytes) -> list[tuple[Any, float | None]]:
    """(item, Kafka timestamp of its input message) pairs, an item being a record (version
    3), a row (version 2) or a JSON object (version 1) for `bundle_record`; ValueError if
    malformed."""
    if value[:1] == VERSION_3:
        return _decode_v3(value)
    try:
        if value[:1] == VERSION_2:
            stamps, events = orjson.loads(value[1:])
        else:
            data = orjson.loads(value)
            events, stamps = data["events"], data["ts"]
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"not a bundle of events: {exc}") from None
    if not isinstance(events, list) or not isinstance(stamps, list) or len(events) != len(stamps):
        raise ValueError("not a bundle of events: events and ts must be lists of one length")
    return list(zip(events, stamps, strict=True))


def _decode_v3(value: bytes) -> list[tuple[Any, float | None]]:
    try:
        stamps, order, *groups = _DECODE_V3(memoryview(value)[1:])
    except msgspec.DecodeError as exc:  # ValidationError included
        raise ValueError(f"not a bundle of events: {exc}") from None
    if len(order) != len(stamps) or sum(map(len, groups)) != len(order):
        raise ValueError("not a bundle of events: order, ts and events must be of one length")
    takes = {
        code: iter(group).__next__ for code, group in zip(_CODES.values(), groups, strict=True)
    }
    try:
        events = [takes[code]() for code in order]
    except (KeyError, StopIteration):
        raise ValueError("not a bundle of events: its order does not match its events") from None
    return list(zip(events, stamps, strict=True))


def bundle_record(item: Any) -> Record:
    """The record of one item of `decode_bundle`, without validating it again: only what our
    ingest stage wrote is expected. Anything else may raise any exception."""
    if isinstance(item, Event):  # version 3: decoded as the record
        return item
    if isinstance(item, list):
        return _LAYOUTS[item[0]].build(item)  # type: ignore[no-any-return]
    return trusted_record(item)


def trusted_record(obj: dict[str, Any]) -> Record:
    """Rebuild a record from an object that `record_from_object` already accepted (a version
    1 bundle): types are not checked again, only timestamps and lists are converted.
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
