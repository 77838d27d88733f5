"""The shipped JSON Schemas are current and agree with the validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from tests.builders import (
    cancelled,
    deleted,
    deposit_failed,
    deposited,
    discharged,
    establishment,
    mss_sent,
    produced,
)
from topics.names import TOPIC_OF_TYPE
from topics.schema import SCHEMA_DIR, rendered_schemas

VALID = [
    discharged("S1", correspondents=[{"rpps": "1", "mss_address": None}]),
    cancelled("S1", "2023-01-13T10:00:00+01:00"),
    produced("D1", "11502-2"),
    deposited("D1", "11502-2", replaces="D0"),
    deposit_failed("D1"),
    deleted("D1"),
    mss_sent("pro", "R1", attachments=[{"document_id": "d", "type_code": "t", "ins_status": "qualifiee", "cda_level": None}]),
    establishment(),
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
        (discharged("S1"), {"finess": "123"}),
        (discharged("S1"), {"occurred_at": "2023-01-12T10:00:00"}),
        (discharged("S1"), {"stay_kind": "x"}),
        (deposited("D1", "t"), {"cda_level": 2}),
        (mss_sent("pro", "R1"), {"channel": "x"}),
        (establishment(), {"window": "F9"}),
    ],
)
def test_schemas_reject_what_the_validator_rejects(
    obj: dict[str, Any], change: dict[str, Any]
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validator(TOPIC_OF_TYPE[obj["type"]]).validate({**obj, **change})


def test_schema_files_are_package_data() -> None:
    assert sorted(p.name for p in Path(SCHEMA_DIR).glob("*.json")) == sorted(rendered_schemas())
