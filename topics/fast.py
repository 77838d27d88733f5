"""A fast path for the common case: a valid event, decoded and checked by msgspec in C.

`topics.validation` stays the authority: this path only ever accepts, and only what the
contract accepts, as the identical record (tests/topics/test_fast.py proves it over valid,
mutated and random messages). Anything it is not sure of — a refusal, a registry message,
a deep or odd document — returns None, and the caller asks `parse_for_topic`, which gives
the reason.

The msgspec types are built from the same field kinds (`topics.fields`): a text is a string
of 1 to max_length characters, not blank; a FINESS a string of 9 characters, then the
contract's own `is_finess` once per distinct value (`_KNOWN_FINESS`); a timestamp a string of
the same RFC 3339 pattern, then `datetime.fromisoformat` as `Timestamp.parse` does; a choice
a Literal; a nested list a list of structs. A message with fields the contract does not
know goes to the authority (which accepts them): msgspec would skip them unread, and they
could hold JSON that orjson, the authority's parser, refuses (1e400, nesting over 1,024).
Measured (bench.decode): 5.7 µs per event instead of 9.7 µs, CPU time, loaded machine.
`fast_struct` gives the same event unbuilt, as its msgspec struct with its timestamps parsed,
whose `msgspec.json.encode` is the record's JSON object: the worker's ingest writes that to
its bundle, which the establishment agent's msgspec decodes straight into the record
(streams/worker/bundles.py, version 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Union

import msgspec

from topics.fields import (
    FINESS_LENGTH,
    TIMESTAMP_PATTERN,
    Boolean,
    Choice,
    Finess,
    IntChoice,
    Kind,
    ListOf,
    Text,
    Timestamp,
    field_specs,
    is_finess,
)
from topics.records import EVENT_TYPES, Event, StayDischarged

# Python's `$` also matches before a final newline (re.search is what msgspec runs): `\Z`
# does not.
_TIMESTAMP = TIMESTAMP_PATTERN.removesuffix("$") + r"\Z"
# FINESS values repeat (a few thousand establishments at most): one known valid is a set
# lookup, a new one is checked by the contract's own `is_finess` (a pattern run by msgspec
# on every message cost more than the rest of the string checks together). Bounded.
_KNOWN_FINESS: set[str] = set()
_KNOWN_FINESS_MAX = 100_000


def _annotation(kind: Kind) -> Any:
    if isinstance(kind, Text):
        # blank strings are refused after decoding (`_prepared`): a pattern costs more
        base: Any = Annotated[str, msgspec.Meta(min_length=1, max_length=kind.max_length)]
    elif isinstance(kind, Finess):
        # its pattern is checked after decoding (`_prepared`, `_KNOWN_FINESS`)
        base = Annotated[str, msgspec.Meta(min_length=FINESS_LENGTH, max_length=FINESS_LENGTH)]
    elif isinstance(kind, Timestamp):
        base = Annotated[str, msgspec.Meta(pattern=_TIMESTAMP)]
    elif isinstance(kind, Boolean):
        base = bool
    elif isinstance(kind, Choice | IntChoice):
        base = Literal[kind.values]
    elif isinstance(kind, ListOf):
        base = list[_struct(kind.item)]  # type: ignore[misc]
    else:
        raise TypeError(f"no fast path for {type(kind).__name__}")
    return base | None if kind.nullable else base


_STRUCTS: dict[type, Any] = {}


def _struct(cls: type, tag: str | None = None) -> Any:
    """A msgspec Struct mirroring a record class (its `type` field is the union's tag)."""
    fields: list[Any] = []
    for spec in field_specs(cls):
        if spec.name == "type" and tag is not None:
            continue
        annotation = _annotation(spec.kind)
        if spec.required:
            fields.append((spec.name, annotation))
        else:
            fields.append((spec.name, annotation, spec.default))
    # unknown fields: to the authority (see the module's docstring)
    options: dict[str, Any] = {"forbid_unknown_fields": True}
    if tag is not None:
        options.update(tag_field="type", tag=tag)
    struct = msgspec.defstruct(f"Fast{cls.__name__}", fields, **options)
    _STRUCTS[struct] = cls
    return struct


class _Layout:
    """How a decoded struct is checked and becomes its record: the positions (in the struct's
    fields) to check after decoding, of its timestamps (with their names, to set them parsed),
    of its nested lists."""

    __slots__ = ("cls", "finesses", "lists", "order", "prefix", "stamps", "texts")

    def __init__(self, cls: type, tag: str | None) -> None:
        specs = field_specs(cls)
        if tag is not None and specs[0].name != "type":
            raise TypeError(f"{cls.__name__}: the union's tag must be the first field")
        kinds = [(s.name, s.kind) for s in specs if not (tag is not None and s.name == "type")]
        self.cls = cls
        self.prefix = () if tag is None else (tag,)  # the tag is not among the struct's fields
        self.stamps = tuple((i, n) for i, (n, k) in enumerate(kinds) if isinstance(k, Timestamp))
        self.lists = tuple(i for i, (_, k) in enumerate(kinds) if isinstance(k, ListOf))
        self.texts = tuple(i for i, (_, k) in enumerate(kinds) if isinstance(k, Text))
        self.finesses = tuple(i for i, (_, k) in enumerate(kinds) if isinstance(k, Finess))
        # a discharge before its admission is refused (`StayDischarged`'s own check)
        self.order = ("admitted_at", "discharged_at") if cls is StayDischarged else None


_LAYOUTS: dict[type, _Layout] = {}
_astuple = msgspec.structs.astuple


def _prepared(struct: Any) -> list[datetime]:
    """Check what msgspec could not tell, and parse the struct's timestamps in place (its
    fields then hold the record's datetimes); its own timestamps (not the nested records'),
    in field order. Raises on what the contract refuses."""
    layout = _LAYOUTS[type(struct)]
    values = _astuple(struct)
    for index in layout.texts:
        value = values[index]
        if value is not None and value.isspace():  # blank: `Text.parse` refuses it
            raise ValueError("blank")
    for index in layout.finesses:
        value = values[index]
        if value not in _KNOWN_FINESS:
            if not is_finess(value):
                raise ValueError("not a FINESS")
            if len(_KNOWN_FINESS) >= _KNOWN_FINESS_MAX:
                _KNOWN_FINESS.clear()
            _KNOWN_FINESS.add(value)
    # as Timestamp.parse, without its replace(): fromisoformat takes any separator, and a
    # lowercase z fails here (then the authority decides)
    stamps = []
    for index, name in layout.stamps:
        value = values[index]
        if value is not None:
            moment = datetime.fromisoformat(value)
            setattr(struct, name, moment)
            stamps.append(moment)
    if layout.order is not None:
        admitted, discharged = (getattr(struct, name) for name in layout.order)
        if admitted is not None and discharged is not None and discharged < admitted:
            raise ValueError("discharged before admitted")
    for index in layout.lists:
        for item in values[index]:
            _prepared(item)
    return stamps


def _build(struct: Any) -> Any:
    """The record of a prepared struct."""
    layout = _LAYOUTS[type(struct)]
    values = list(_astuple(struct))
    for index in layout.lists:
        values[index] = tuple(_build(item) for item in values[index])
    return layout.cls(*layout.prefix, *values)


_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    Union[tuple(_struct(cls, name) for name, cls in EVENT_TYPES.items())]  # noqa: UP007
)
_TAGS = {cls: name for name, cls in EVENT_TYPES.items()}
for _fast, _cls in _STRUCTS.items():
    _LAYOUTS[_fast] = _Layout(_cls, _TAGS.get(_cls))
_TYPE_OF = {fast: _TAGS[cls] for fast, cls in _STRUCTS.items() if cls in _TAGS}


def fast_event(raw: bytes | None, registry_topic: bool) -> Event | None:
    """The event of a message on an event topic, when the fast path is sure the contract
    accepts it as exactly this record; None otherwise (then ask `parse_for_topic`)."""
    if registry_topic or not raw:
        return None
    try:
        struct = _DECODER.decode(raw)
        _prepared(struct)
        record: Event = _build(struct)
    except Exception:  # a refusal, or anything unforeseen: the authority decides
        return None
    return record


@dataclass(slots=True)  # not frozen: its __init__ would set each field through object.__setattr__
class FastStruct:
    """A valid event without its record built: its type name, its FINESS, its own
    timestamps (not the nested records'; those `processors.retention.timestamps_of` gives of
    the record, in that order), and the msgspec struct of its values, its timestamps parsed
    (`msgspec.json.encode` of it writes the record's JSON object: the same field names and
    values as `msgspec.json.encode` of the record)."""

    type: str
    finess: str
    stamps: list[datetime]
    struct: Any


def fast_struct(raw: bytes | None, registry_topic: bool) -> FastStruct | None:
    """`fast_event`'s answer, unbuilt: not None exactly when `fast_event` is not, and then
    the values of the very same record (tests/topics/test_fast.py)."""
    if registry_topic or not raw:
        return None
    try:
        struct = _DECODER.decode(raw)
        stamps = _prepared(struct)
    except Exception:  # a refusal, or anything unforeseen: the authority decides
        return None
    return FastStruct(_TYPE_OF[type(struct)], struct.finess, stamps, struct)
