"""The bundle codec of the internal topic: events rebuilt without validating them again, the
same records as the contract's validation gives, in every format a worker wrote (3: the
records' JSON objects by type, decoded by msgspec; 2: typed rows; 1: the original JSON
objects): a worker upgraded while older bundles wait on the internal topic applies them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streams.worker.bundles import (
    BUNDLE_TYPES,
    VERSION_2,
    VERSION_3,
    bundle_record,
    decode_bundle,
    encode_bundle,
    encode_bundle_v1,
    encode_bundle_v2,
    event_item,
    event_row_v2,
    trusted_record,
)
from tests.builders import deposited, discharged, establishment, mss_sent
from tests.streams.worker.test_ingest import mutated_event
from topics.fields import field_specs
from topics.records import EVENT_TYPES, Event
from topics.validation import InvalidRecord, parse_for_topic, record_from_object

EXAMPLES = [
    discharged("S1", correspondents=[{"rpps": "1", "mss_address": None},
                                     {"rpps": "2", "mss_address": "a@b.mssante.fr"}]),
    {**discharged("S2"), "occurred_at": "2023-01-12t09:00:00.1234567z"},
    deposited("D", "11490-0", replaces="C"),
    {k: v for k, v in deposited("E", "11502-2").items() if k != "stay_id"},
    mss_sent("pro", "R1", attachments=[{"document_id": "d", "type_code": "t",
                                        "ins_status": "qualifiee", "cda_level": None}]),
]  # fmt: skip


def identical(a: Any, b: Any) -> bool:
    """Equal records whose timestamps also have the same offsets (`==` on aware datetimes
    compares instants only)."""
    return bool(a == b) and orjson.dumps(a) == orjson.dumps(b)


@pytest.mark.parametrize("obj", [*EXAMPLES, establishment()], ids=lambda o: o["type"])
def test_trusted_rebuild_equals_validation(obj: dict[str, Any]) -> None:
    assert identical(trusted_record(obj), record_from_object(obj))


def bundle_of(records: list[Any], stamps: list[float | None]) -> bytes:
    """A version 3 bundle, as the ingest stage writes it."""
    return encode_bundle([r.type for r in records], [event_item(r) for r in records], stamps)


@pytest.mark.parametrize("obj", EXAMPLES, ids=lambda o: o["type"])
@pytest.mark.parametrize("version", [3, 2])
def test_an_item_rebuilds_the_validated_record(obj: dict[str, Any], version: int) -> None:
    record = record_from_object(obj)
    assert isinstance(record, Event)
    if version == 3:
        value = bundle_of([record], [1.5])
    else:
        value = encode_bundle_v2([event_row_v2(record)], [1.5])
    ((item, stamp),) = decode_bundle(value)
    assert identical(bundle_record(item), record) and stamp == 1.5


def test_a_bundle_round_trips_its_events_in_order_and_timestamps() -> None:
    records = [
        record_from_object(discharged("S1")),
        record_from_object(deposited("D1", "x")),
        record_from_object(discharged("S2")),
        record_from_object(mss_sent("pro", "R1")),
        record_from_object(deposited("D2", "x")),
    ]
    stamps = [1.5, None, 0.0, 1_700_000_000.123, 2.0]
    value = bundle_of(records, stamps)
    assert value.startswith(VERSION_3)
    decoded = decode_bundle(value)
    assert [(bundle_record(item), stamp) for item, stamp in decoded] == list(
        zip(records, stamps, strict=True)
    )
    for bad in (
        b'{"events": [1]}',
        VERSION_2 + b"[[1]]",
        VERSION_2 + b"[[1],[]]",
        b"",
        VERSION_3 + b"[[1]]",
        VERSION_3 + b'[[1],"0"]',  # a type short
        VERSION_3 + b'[[1],"0",[],[],[],[],[],[],[]]',  # its event missing
        VERSION_3 + b'[[1],"1",[{"type":"x"}],[],[],[],[],[],[]]',  # not an event
        VERSION_3 + b'[[1,2],"0"' + value[value.index(b'",[') + 1 :],  # its order too short
        VERSION_3 + b'[[1],"9"' + value[value.index(b'",[') + 1 :],  # an unknown type
    ):
        with pytest.raises(ValueError, match="not a bundle"):
            decode_bundle(bad)


def test_a_version_2_bundle_still_decodes() -> None:
    """What a worker before version 3 left on the internal topic (a rolling upgrade)."""
    records = [record_from_object(discharged("S1")), record_from_object(deposited("D1", "x"))]
    value = encode_bundle_v2([event_row_v2(r) for r in records], [1.5, None])  # type: ignore[arg-type]
    assert value.startswith(VERSION_2)
    decoded = decode_bundle(value)
    assert [(bundle_record(item), stamp) for item, stamp in decoded] == list(
        zip(records, [1.5, None], strict=True)
    )


def test_a_version_1_bundle_still_decodes() -> None:
    events = [orjson.dumps(discharged("S1")), orjson.dumps(deposited("D1", "11490-0"))]
    decoded = decode_bundle(encode_bundle_v1(events, [1.5, None]))
    assert [(orjson.dumps(obj), stamp) for obj, stamp in decoded] == list(
        zip(events, [1.5, None], strict=True)
    )
    assert [bundle_record(obj) for obj, _ in decoded] == [
        record_from_object(orjson.loads(e)) for e in events
    ]


# The field order of each event type is the version 2 format, the field names the version 3
# format: a change to them needs a new version byte (and this table updated with it).
ROW_LAYOUT = {
    "stay.discharged": "type event_id occurred_at finess stay_id patient_id admitted_at "
    "discharged_at stay_kind ins_status surgical deceased dmp_opposition correspondents",
    "stay.discharge_cancelled": "type event_id occurred_at finess stay_id",
    "document.produced": "type event_id occurred_at finess document_id type_code patient_id "
    "produced_at stay_id",
    "document.deposited": "type event_id occurred_at finess document_id type_code patient_id "
    "cda_level ins_status produced_at deposited_at stay_id replaces",
    "document.deposit_failed": "type event_id occurred_at finess document_id reason",
    "document.deleted": "type event_id occurred_at finess document_id",
    "mss.sent": "type event_id occurred_at finess message_id channel patient_id recipient "
    "sent_at stay_id attachments",
}


def test_the_row_layout_is_pinned() -> None:
    assert {
        name: " ".join(spec.name for spec in field_specs(cls)) for name, cls in EVENT_TYPES.items()
    } == ROW_LAYOUT


def test_the_types_of_version_3_are_pinned() -> None:
    """The position of each event type in a version 3 bundle is its format."""
    assert BUNDLE_TYPES == (
        "stay.discharged",
        "stay.discharge_cancelled",
        "document.produced",
        "document.deposited",
        "document.deposit_failed",
        "document.deleted",
        "mss.sent",
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event(), st.sampled_from([None, 0.0, 1.7e9, 1_700_000_000.123]))
def test_every_event_the_contract_accepts_comes_out_of_a_bundle_identical(
    message: tuple[str, bytes], stamp: float | None
) -> None:
    """Valid events of every type, mutated (fields missing, retyped, redated over 0001–9999
    with offsets from −12:00 to +14:00 and microseconds, unicode, extra fields): whatever the
    contract accepts, the agent rebuilds as the very same record, offsets included."""
    topic, raw = message
    try:
        record = parse_for_topic(raw, topic)
    except InvalidRecord:
        event("refused by the contract")
        return
    if not isinstance(record, Event):
        event("a registry record")
        return
    event("an event")
    for value in (bundle_of([record], [stamp]), encode_bundle_v2([event_row_v2(record)], [stamp])):
        ((item, got_stamp),) = decode_bundle(value)
        rebuilt = bundle_record(item)
        assert identical(rebuilt, record) and got_stamp == stamp
        assert identical(record_from_object(orjson.loads(orjson.dumps(rebuilt))), record)
