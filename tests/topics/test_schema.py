"""The shipped JSON Schemas are current and agree with the validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from tests import builders
from topics.errors import InvalidRecord
from topics.fields import ListOf, field_specs
from topics.names import TOPIC_OF_TYPE
from topics.records import RECORD_TYPES
from topics.schema import SCHEMA_DIR, rendered_schemas
from topics.validation import record_from_object

VALID = [
    builders.discharged("S1", correspondents=[{"rpps": "1", "mss_address": None}]),
    builders.cancelled("S1", "2023-01-13T10:00:00+01:00"),
    builders.produced("D1", "11502-2"),
    builders.deposited("D1", "11502-2", replaces="D0"),
    builders.deposit_failed("D1"),
    builders.deleted("D1"),
    builders.mss_sent("pro", "R1", attachments=[{"document_id": "d", "type_code": "t", "ins_status": "qualifiee", "cda_level": None}]),
    builders.establishment(),
]  # fmt: skip


def test_shipped_schemas_are_generated_from_the_records() -> None:
    for name, content in rendered_schemas().items():
        shipped = SCHEMA_DIR / name
        assert shipped.read_bytes() == content, f"{shipped} is stale: run python -m topics.schema"


def _validator(topic: str) -> jsonschema.protocols.Validator:
    schema = orjson.loads((SCHEMA_DIR / f"{topic}.schema.json").read_bytes())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize("obj", VALID, ids=lambda o: o["type"])
def test_valid_events_pass_their_topic_schema(obj: dict[str, Any]) -> None:
    _validator(TOPIC_OF_TYPE[obj["type"]]).validate(obj)


@pytest.mark.parametrize(
    ("obj", "change"),
    [
        (builders.discharged("S1"), {"finess": "123"}),
        (builders.discharged("S1"), {"occurred_at": "2023-01-12T10:00:00"}),
        (builders.discharged("S1"), {"stay_kind": "x"}),
        (builders.deposited("D1", "t"), {"cda_level": 2}),
        (builders.mss_sent("pro", "R1"), {"channel": "x"}),
        (builders.establishment(), {"window": "F9"}),
    ],
)
def test_schemas_reject_what_the_validator_rejects(
    obj: dict[str, Any], change: dict[str, Any]
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validator(TOPIC_OF_TYPE[obj["type"]]).validate({**obj, **change})


def test_schema_files_are_package_data() -> None:
    assert sorted(p.name for p in Path(SCHEMA_DIR).glob("*.json")) == sorted(rendered_schemas())


# The same cases as tests/topics/test_finess.py: the schema and the validator agree on each.
FINESS_CASES = [
    ("750000013", True), ("2A0000012", True), ("2B0000012", True), ("971234567", True),
    ("010000000", True), ("980000000", True),
    ("750000013\n", False), (" 750000013", False), ("750000013 ", False), ("000000000", False),
    ("200000000", False), ("960000000", False), ("990000000", False), ("2C0000001", False),
    ("2a0000012", False), ("75000001", False), ("7500000133", False),
]  # fmt: skip


@pytest.mark.parametrize(("finess", "valid"), FINESS_CASES, ids=repr)
@pytest.mark.parametrize("field", ["finess", "finess_ej"])
def test_schema_and_validator_agree_on_finess_numbers(finess: str, valid: bool, field: str) -> None:
    obj = {**builders.establishment(), field: finess}
    schema_ok = _validator(TOPIC_OF_TYPE["establishment"]).is_valid(obj)
    try:
        record_from_object(obj)
        validator_ok = True
    except InvalidRecord:
        validator_ok = False
    assert schema_ok == validator_ok == valid
    event = {**builders.discharged("S1"), "finess": finess}
    assert _validator(TOPIC_OF_TYPE["stay.discharged"]).is_valid(event) == valid


def _record_schemas() -> list[tuple[str, dict[str, Any]]]:
    """(record type, its object schema) from every shipped file."""
    found = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        document = orjson.loads(path.read_bytes())
        for variant in document.get("oneOf", [document]):
            found.append((variant["properties"]["type"]["const"], variant))
    return found


def _described_objects(where: str, schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, object schema) of a record and of the objects nested in its arrays."""
    objects = [(where, schema)]
    for name, prop in schema["properties"].items():
        if prop.get("type") == "array":
            objects += _described_objects(f"{where}.{name}[]", prop["items"])
    return objects


def _is_a_sentence(text: Any) -> bool:
    return isinstance(text, str) and text.strip() == text and len(text) > 10 and text[-1] == "."


def test_every_record_type_and_every_field_has_a_description() -> None:
    records = _record_schemas()
    assert sorted(name for name, _ in records) == sorted(RECORD_TYPES)
    missing = []
    for type_name, variant in records:
        for where, schema in _described_objects(type_name, variant):
            if not _is_a_sentence(schema.get("description")):
                missing.append(where)
            for name, prop in schema["properties"].items():
                if not _is_a_sentence(prop.get("description")):
                    missing.append(f"{where}.{name}")
    assert not missing, f"no description (one sentence ending in a period): {missing}"


def test_descriptions_come_from_the_records() -> None:
    stays = orjson.loads((SCHEMA_DIR / "sunes.stays.v1.schema.json").read_bytes())
    discharged_schema = stays["oneOf"][0]
    assert discharged_schema["title"] == "stay.discharged"
    assert discharged_schema["properties"]["patient_id"]["description"] == (
        "Pseudonymous patient identifier (IPP) at this FINESS, never the INS."
    )
    for cls in RECORD_TYPES.values():
        for spec in field_specs(cls):
            assert spec.kind.description, f"{cls.__name__}.{spec.name}"
            if isinstance(spec.kind, ListOf):
                assert all(item.kind.description for item in field_specs(spec.kind.item))
