"""Every malformed kind of message gets a reason that names the field, the expectation and
what was found."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.builders import deposited, discharged, establishment, mss_sent
from topics.records import DocumentDeposited, EstablishmentRecord, MssSent, StayDischarged
from topics.validation import InvalidRecord, parse_record


def reason_of(raw: bytes) -> tuple[str, str]:
    with pytest.raises(InvalidRecord) as caught:
        parse_record(raw)
    return caught.value.code, caught.value.reason


def with_fields(base: dict[str, Any], **changes: Any) -> bytes:
    obj = dict(base)
    for key, value in changes.items():
        if value is ...:
            obj.pop(key, None)
        else:
            obj[key] = value
    return orjson.dumps(obj)


STAY = discharged("S1")


def test_valid_records_parse_into_their_dataclasses() -> None:
    assert isinstance(parse_record(orjson.dumps(STAY)), StayDischarged)
    assert isinstance(parse_record(orjson.dumps(deposited("D", "11490-0"))), DocumentDeposited)
    message = parse_record(orjson.dumps(mss_sent("pro", "R1")))
    assert isinstance(message, MssSent) and message.attachments == ()
    assert isinstance(parse_record(orjson.dumps(establishment())), EstablishmentRecord)


def test_defaults_apply_to_absent_optional_fields() -> None:
    stay = parse_record(orjson.dumps(STAY))
    assert isinstance(stay, StayDischarged)
    assert (stay.surgical, stay.deceased, stay.dmp_opposition, stay.correspondents) == (
        False, False, False, (),
    )  # fmt: skip


def test_unknown_extra_fields_are_accepted() -> None:
    assert isinstance(parse_record(with_fields(STAY, x_vendor="abc")), StayDischarged)


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        (b"{not json", "invalid_json", "not valid JSON (UTF-8)"),
        (b"\xff\xfe{}", "invalid_json", "not valid JSON (UTF-8)"),
        (b"[1, 2]", "not_an_object", "expected a JSON object, found an array of 2 items"),
        (b'"hello"', "not_an_object", "expected a JSON object, found a string of 5 characters"),
        (b"{}", "missing_field", "field 'type': is required but missing"),
        (b'{"type": "stay.admitted"}', "unknown_type", "unknown record type \"stay.admitted\"; expected one of stay.discharged"),
        (b'{"type": 3}', "unknown_type", "unknown record type 3"),
    ],
)  # fmt: skip
def test_undecodable_or_untyped_messages(raw: bytes, code: str, reason: str) -> None:
    got_code, got_reason = reason_of(raw)
    assert got_code == code
    assert reason in got_reason


@pytest.mark.parametrize(
    "field",
    ["event_id", "occurred_at", "finess", "stay_id", "patient_id", "admitted_at",
     "discharged_at", "stay_kind", "ins_status"],
)  # fmt: skip
def test_each_missing_required_field_is_named(field: str) -> None:
    code, reason = reason_of(with_fields(STAY, **{field: ...}))
    assert code == "missing_field"
    assert reason == f"field '{field}': is required but missing"


@pytest.mark.parametrize(
    ("changes", "code", "reason"),
    [
        ({"event_id": ""}, "invalid_field", "field 'event_id': expected a non-empty string, found an empty string"),
        ({"stay_id": 42}, "invalid_field", "field 'stay_id': expected a non-empty string, found a number of 2 digits"),
        ({"stay_id": None}, "invalid_field", "field 'stay_id': expected a non-empty string, found null"),
        ({"surgical": "yes"}, "invalid_field", "field 'surgical': expected true or false, found a string \"yes\""),
        ({"surgical": None}, "invalid_field", "field 'surgical': expected true or false, found null"),
        ({"stay_kind": "ambulatoire"}, "invalid_field", "field 'stay_kind': expected one of hospitalisation_complete, hospitalisation_partielle, had, seance, urgence, consultation, found a string \"ambulatoire\""),
        ({"ins_status": "QUALIFIEE"}, "invalid_field", "field 'ins_status': expected one of provisoire, recuperee, validee, qualifiee"),
        ({"correspondents": {}}, "invalid_field", "field 'correspondents': expected an array, found an empty object"),
        ({"correspondents": [{"mss_address": None}]}, "missing_field", "field 'correspondents[0].rpps': is required but missing"),
        ({"correspondents": ["10000000001"]}, "not_an_object", "field 'correspondents[0]': expected a JSON object, found a string of 11 characters"),
        ({"finess": "75000001"}, "invalid_finess", "field 'finess': expected a FINESS number of 9 characters"),
        ({"finess": 750000001}, "invalid_finess", "found a number of 9 digits"),
        ({"finess": "2C0000001"}, "invalid_finess", "found a string of 9 characters whose department code \"2C\" does not exist"),
        ({"occurred_at": "2023-01-12T10:00:00"}, "invalid_timestamp", "field 'occurred_at': timestamp \"2023-01-12T10:00:00\" has no UTC offset; add one"),
        ({"admitted_at": "2023-01-12"}, "invalid_timestamp", "field 'admitted_at': expected an RFC 3339 timestamp with offset"),
        ({"admitted_at": "12/01/2023 10:00"}, "invalid_timestamp", "found \"12/01/2023 10:00\""),
        ({"admitted_at": "2023-02-30T10:00:00+01:00"}, "invalid_timestamp", "is not a real date and time"),
        ({"admitted_at": 1673514000}, "invalid_field", "field 'admitted_at': expected an RFC 3339 timestamp string, found a number"),
        ({"admitted_at": "2023-01-13T10:00:00+01:00"}, "inconsistent_dates", "field 'discharged_at': discharge 2023-01-12T10:00:00+01:00 is before admission 2023-01-13T10:00:00+01:00"),
    ],
)  # fmt: skip
def test_each_ill_typed_field_says_what_was_expected_and_found(
    changes: dict[str, Any], code: str, reason: str
) -> None:
    got_code, got_reason = reason_of(with_fields(STAY, **changes))
    assert got_code == code
    assert reason in got_reason


def test_every_defect_is_listed_not_only_the_first() -> None:
    code, reason = reason_of(with_fields(STAY, finess="x", stay_id=..., surgical=1))
    assert code == "invalid_finess"
    assert "field 'finess'" in reason
    assert "field 'stay_id': is required but missing" in reason
    assert "field 'surgical': expected true or false, found a number 1" in reason


@pytest.mark.parametrize(
    ("obj", "changes", "reason"),
    [
        (deposited("D", "11490-0"), {"cda_level": 2}, "field 'cda_level': expected one of 1, 3, found a number 2"),
        (deposited("D", "11490-0"), {"cda_level": True}, "field 'cda_level': expected one of 1, 3, found a boolean true"),
        (deposited("D", "11490-0"), {"deposited_at": ...}, "field 'deposited_at': is required but missing"),
        (mss_sent("pro", "R1"), {"channel": "email"}, "field 'channel': expected one of pro, citoyenne"),
        (mss_sent("pro", "R1", attachments=[{"document_id": "d", "type_code": "t", "ins_status": "qualifiee", "cda_level": 2}]), {}, "field 'attachments[0].cda_level': expected one of 1, 3"),
        (establishment(), {"window": "F5"}, "field 'window': expected one of F1, F2, F3, F4"),
        (establishment(), {"finess_ej": "abc"}, "field 'finess_ej': expected a FINESS number"),
    ],
)  # fmt: skip
def test_document_message_and_registry_defects(
    obj: dict[str, Any], changes: dict[str, Any], reason: str
) -> None:
    _, got = reason_of(with_fields(obj, **changes))
    assert reason in got


def test_nullable_fields_accept_null_and_absence() -> None:
    doc = deposited("D", "11502-2", stay_id=None)
    assert parse_record(with_fields(doc, stay_id=None, replaces=None)).stay_id is None  # type: ignore[union-attr]
    assert parse_record(with_fields(doc, stay_id=..., replaces=...)).stay_id is None  # type: ignore[union-attr]


def test_timestamps_keep_their_offset() -> None:
    stay = parse_record(with_fields(STAY, discharged_at="2023-01-12T09:00:00Z"))
    assert isinstance(stay, StayDischarged)
    assert stay.discharged_at.utcoffset() is not None
