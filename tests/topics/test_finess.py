"""FINESS numbers are checked exactly: the whole string, a department code that exists."""

from __future__ import annotations

from typing import Any

import pytest

from topics.errors import INVALID_FINESS, FieldError
from topics.fields import FINESS_PATTERN, Finess, is_finess

VALID = [
    "750000013",
    "750712184",
    "010000000",  # Ain
    "190000000",
    "210000000",
    "2A0000012",  # Corse-du-Sud
    "2B0000012",  # Haute-Corse
    "950000000",
    "971234567",  # Guadeloupe
    "976000000",
    "984000000",
    "988000000",
]
INVALID = [
    "750000013\n",  # `$` would match before this newline: fullmatch does not
    "750000013\r\n",
    " 750000013",
    "750000013 ",
    "\n750000013",
    "000000000",  # department 00 does not exist
    "009999999",
    "200000000",  # Corsica is 2A/2B, never 20
    "960000000",
    "990000000",
    "2C0000001",
    "2a0000012",
    "75000001",
    "7500000133",
    "75000001X",
    "750 00001",
    "７50000013",  # a full-width digit
    "",
    750000013,
    None,
]


@pytest.mark.parametrize("value", VALID)
def test_well_formed_finess_numbers_pass(value: str) -> None:
    assert is_finess(value)
    assert Finess().parse(value, "finess") == value


@pytest.mark.parametrize("value", INVALID, ids=repr)
def test_anything_else_is_refused(value: Any) -> None:
    assert not is_finess(value)
    with pytest.raises(FieldError) as caught:
        Finess().parse(value, "finess")
    assert caught.value.code == INVALID_FINESS


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("750000013\n", "found a string of 10 characters with spaces or line breaks around it"),
        (" 750000013", "found a string of 10 characters with spaces or line breaks around it"),
        ("000000000", 'found a string of 9 characters whose department code "00" does not exist'),
        ("200000000", 'found a string of 9 characters whose department code "20" does not exist'),
        ("75000001X", "found a string of 9 characters with other characters than digits after the department code"),
        ("75000001", "found a string of 8 characters"),
        (750000013, "found a number of 9 digits"),
        ({"finess": "750000013"}, "found an object with 1 key"),
    ],
)  # fmt: skip
def test_the_reason_says_what_is_wrong_without_the_value(value: Any, found: str) -> None:
    with pytest.raises(FieldError) as caught:
        Finess().parse(value, "finess")
    reason = str(caught.value)
    assert reason.startswith("field 'finess': expected a FINESS number of 9 characters")
    assert reason.endswith(found)
    assert "750000013" not in reason


def test_the_schema_is_the_validator_s_definition() -> None:
    schema = Finess().schema()
    assert schema["pattern"] == FINESS_PATTERN
    assert schema["minLength"] == schema["maxLength"] == 9
