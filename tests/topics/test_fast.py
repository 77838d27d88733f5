"""The fast path (topics.fast) accepts nothing the contract refuses, and what it accepts is
the very record `parse_for_topic` gives (as a record, or as the struct whose JSON the worker's
bundles carry): over valid events of every type, events mutated
field by field (missing, null, retyped, reformatted, out of range, unicode, huge, extra,
deep), byte-level damage, and random JSON and bytes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from processors.retention import timestamps_of
from streams.worker.bundles import bundle_record, decode_bundle, encode_bundle, event_item
from tests import builders, strategies
from tests.builders import F1
from topics.fast import FastStruct, fast_event, fast_struct
from topics.names import DMP, ESTABLISHMENTS, MSS, STAYS
from topics.validation import InvalidRecord, parse_for_topic

BUILDERS: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    (ESTABLISHMENTS, builders.establishment),
    (STAYS, lambda: builders.discharged(
        "S1", correspondents=[{"rpps": "R1", "mss_address": "a@b.fr"}, {"rpps": "R2"}],
        surgical=True)),
    (STAYS, lambda: builders.cancelled("S1", "2023-01-13T10:00:00+01:00")),
    (DMP, lambda: builders.produced("D1", "11490-0", stay_id="S1")),
    (DMP, lambda: builders.deposited("D1", "11490-0", stay_id="S1", replaces="D0")),
    (DMP, lambda: builders.deposit_failed("D1")),
    (DMP, lambda: builders.deleted("D1")),
    (MSS, lambda: builders.mss_sent(
        "pro", "dr@x.mssante.fr", attachments=[builders.cda_attachment(),
                                               builders.cda_attachment(None)])),
]  # fmt: skip

OFFSETS = [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
           timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(seconds=30))]  # fmt: skip
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
timestamps = st.one_of(
    st.builds(lambda m, tz: m.replace(tzinfo=tz).isoformat(), moments, st.sampled_from(OFFSETS)),
    st.builds(  # other spellings: separators, case, fractions, offsets, impossible dates
        lambda date, sep, time, frac, zone: f"{date}{sep}{time}{frac}{zone}",
        st.sampled_from(["2023-01-12", "2024-02-29", "2023-02-29", "2023-13-01", "0000-01-01",
                         "9999-12-31", "20230112", "2023-1-12"]),
        st.sampled_from(["T", "t", " ", "_", "", "TT"]),
        st.sampled_from(["10:00:00", "23:59:60", "24:00:00", "10:00", "10", "1:00:00",
                         "10:00:00,5"]),
        st.sampled_from(["", ".5", ".123456", ".1234567", ".000000001", ".", ".x"]),
        st.sampled_from(["Z", "z", "+01:00", "-00:00", "+14:00", "+24:00", "+0100", "+01",
                         "+01:00:30", "", " Z", "Z\n", "+01:00\n", "UTC"]),
    ),
)  # fmt: skip
texts = st.one_of(
    st.text(max_size=12),
    st.text(min_size=195, max_size=205),
    st.text(alphabet="\U0001f600é\u00a0", min_size=198, max_size=202),
    st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000\u200b", max_size=4),
    st.sampled_from([F1, "2A0000001", "2B1234567", "200000001", "75000000", "7500000011",
                     "750000001\n", " 750000001", "75000000١", "qualifiee", "pro", "F2"]),
)  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 3, 2, -1, 1.0, 3.0, 2**63, 2**64 - 1, -(2**63), 1e308]),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    timestamps,
)
json_values = strategies.json_values(scalars, 3, 8)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid message of any type, its fields (nested ones too) removed, replaced or added,
    then maybe damaged as bytes."""
    topic, build = draw(st.sampled_from(BUILDERS))
    topic = draw(st.sampled_from([topic, topic, topic, STAYS, ESTABLISHMENTS]))
    builders._ids = itertools.count(1)  # they count their ids: the same draw, the same bytes
    obj = build()
    for _ in range(draw(st.integers(0, 3))):
        target = obj
        nested = [
            k
            for k, v in obj.items()
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
        ]
        if nested and draw(st.booleans()):
            target = draw(st.sampled_from(obj[draw(st.sampled_from(nested))]))
        name = draw(st.sampled_from([*sorted(target), "extra", "type"]))
        choice = draw(st.integers(0, 4))
        if choice == 0:
            target.pop(name, None)
        elif choice == 1:
            target[name] = draw(timestamps)
        elif choice == 2:
            target[name] = draw(texts)
        else:
            target[name] = draw(json_values)
    raw = orjson.dumps(obj)
    damage = draw(st.integers(0, 7))
    if damage == 0:  # the same key twice: which one counts must not differ
        name = draw(st.sampled_from(sorted(obj)))
        value = orjson.dumps(draw(st.one_of(timestamps, texts, json_values)))
        raw = b'{"' + name.encode() + b'":' + value + b"," + raw[1:]
    elif damage == 1:  # escapes: lone surrogates, a NUL, an escaped solidus
        escape = draw(st.sampled_from([b"\\ud800", b"\\udc00x", b"\\u0000", b"\\/", b"\\ud83d"]))
        raw = raw.replace(b'"S1"', b'"S' + escape + b'"').replace(b'"D1"', b'"' + escape + b'"')
    elif damage == 2:  # a byte that is not UTF-8, or cut short
        at = draw(st.integers(0, len(raw) - 1))
        raw = draw(st.sampled_from([raw[:at] + b"\xff" + raw[at:], raw[:at]]))
    elif damage == 3:  # an extra field nested about as deep as orjson allows
        depth = draw(st.integers(1018, 1030))
        raw = raw[:-1] + b',"deep":' + b"[" * depth + b"]" * depth + b"}"
    elif damage == 4:  # whitespace and a BOM around the document
        raw = draw(st.sampled_from([b" ", b"\n", b"\xef\xbb\xbf", b"\t"])) + raw
    elif damage == 5:  # numbers JSON allows that Python's floats and ints do not hold
        name = draw(st.sampled_from([b"extra", b"cda_level", b"surgical"]))
        number = draw(
            st.sampled_from(
                [
                    b"123456789012345678901234567890",
                    b"1e400",
                    b"-1e400",
                    b"3.0e0",
                    b"1E0",
                    b"-0",
                    b"03",
                    b"NaN",
                    b"Infinity",
                ]
            )
        )
        raw = raw[:-1] + b',"' + name + b'":' + number + b"}"
    return topic, raw


valid_timestamps = st.one_of(
    st.builds(lambda m, tz: m.replace(tzinfo=tz).isoformat(), moments,
              st.sampled_from(OFFSETS[1:5])),
    st.sampled_from(["2023-01-12t10:00:00Z", "2023-01-12 10:00:00.1234567+01:00",
                     "2023-01-12T10:00:00.5-00:00", "2024-02-29T23:59:59.999999Z"]),
)  # fmt: skip
valid_texts = st.one_of(
    st.text(min_size=1, max_size=200).filter(lambda t: t.strip() != ""),
    st.text(alphabet="\U0001f600é\u00a0x", min_size=199, max_size=200).filter(str.strip),
    st.sampled_from([" S1", "S1\n", "\u3000x", "x" * 200]),
)


@st.composite
def varied(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid event whose values vary over what the contract accepts: any text, any
    timestamp spelling, optional fields absent or null, flags, levels, lists."""
    topic, build = draw(st.sampled_from(BUILDERS[1:]))
    obj = build()
    obj["event_id"] = draw(valid_texts)
    for name, value in list(obj.items()):
        if name.endswith("_at"):
            obj[name] = draw(valid_timestamps)
        elif name in ("stay_id", "patient_id", "document_id", "recipient", "rpps", "replaces"):
            obj[name] = draw(valid_texts)
        elif isinstance(value, bool) or name in ("surgical", "deceased", "dmp_opposition"):
            obj[name] = draw(st.booleans())
    for name in ("surgical", "deceased", "dmp_opposition", "replaces", "correspondents"):
        if draw(st.integers(0, 3)) == 0:
            obj.pop(name, None)
    if obj["type"] == "stay.discharged":  # the dates must stay in order, or not
        obj["discharged_at"] = draw(st.sampled_from([obj["admitted_at"], "9999-12-31T00:00:00Z"]))
    if obj["type"] == "document.deposited":
        obj["cda_level"] = draw(st.sampled_from([1, 3]))
    for item in obj.get("attachments", []):
        item["cda_level"] = draw(st.sampled_from([1, 3, None]))
    return topic, orjson.dumps(obj)


messages = st.one_of(
    varied(),
    mutated(),
    mutated(),
    st.tuples(st.sampled_from([STAYS, ESTABLISHMENTS]), json_values.map(orjson.dumps)),
    st.tuples(st.sampled_from([STAYS, DMP]), st.binary(max_size=200)),
)


def identical(a: Any, b: Any) -> bool:
    """Equal records whose timestamps also have the same offsets."""
    return bool(a == b) and orjson.dumps(a) == orjson.dumps(b)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
@example((STAYS, orjson.dumps(builders.discharged("S1"))))
@example((STAYS, orjson.dumps({**builders.discharged("S1"), "stay_id": " \u3000"})))
@example((STAYS, orjson.dumps({**builders.discharged("S1"), "finess": F1 + "\n"})))
def test_the_fast_path_accepts_only_what_the_contract_accepts_identically(
    message: tuple[str, bytes],
) -> None:
    topic, raw = message
    fast = fast_event(raw, topic == ESTABLISHMENTS)
    row = fast_struct(raw, topic == ESTABLISHMENTS)
    try:
        authority: Any = parse_for_topic(raw, topic)
    except InvalidRecord as exc:
        authority = exc
    if fast is None:
        event("fast path unsure" if not isinstance(authority, InvalidRecord) else "refused")
        assert row is None
        return
    event("accepted by the fast path")
    assert not isinstance(authority, InvalidRecord), authority.reason
    assert identical(fast, authority)
    assert row is not None and same_as_row(authority, row)


def same_as_row(record: Any, fast: FastStruct) -> bool:
    """The struct is the record's, as the worker's bundles carry it (streams/worker/bundles.py
    decodes the record from its JSON), with the record's type, FINESS and own timestamps."""
    bundle = encode_bundle([fast.type], [event_item(fast.struct)], [None])
    ((item, _),) = decode_bundle(bundle)
    rebuilt = bundle_record(item)
    stamps = [value for _, value in timestamps_of(record)]
    return (
        identical(rebuilt, record)
        and event_item(fast.struct) == event_item(record)
        and fast.type == record.type
        and fast.finess == record.finess
        and [(s, s.utcoffset()) for s in fast.stamps] == [(s, s.utcoffset()) for s in stamps]
    )


def test_every_valid_event_of_the_builders_takes_the_fast_path() -> None:
    for topic, build in BUILDERS:
        raw = orjson.dumps(build())
        fast = fast_event(raw, topic == ESTABLISHMENTS)
        row = fast_struct(raw, topic == ESTABLISHMENTS)
        if topic == ESTABLISHMENTS:
            assert fast is None and row is None  # the registry is the authority's
        else:
            authority = parse_for_topic(raw, topic)
            assert fast is not None and identical(fast, authority)
            assert row is not None and same_as_row(authority, row)
