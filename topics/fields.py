"""Field kinds of the event contract.

Each kind both checks a decoded JSON value (raising `FieldError` with a reason a person can
act on) and describes itself as JSON Schema, so validation and the published schemas come
from one definition.

Reasons travel to logs and dead-letter headers, which are not patient data stores: a kind's
`display` says whether a wrong value may be quoted. Identifying fields and free text
(`Display.HIDDEN`, the default) are described by JSON type and size only ("a string of 14
characters", "a number of 13 digits"); closed vocabularies quote a short code-like value
and timestamps quote a short date-like string, since a typo there is what a person needs
to see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

# Reason codes: a short, low-cardinality label for metrics; the text says the rest.
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_FINESS = "invalid_finess"


class FieldError(ValueError):
    """A field of an event is missing or has the wrong shape."""

    def __init__(self, code: str, path: str, message: str, *, nested: bool = False) -> None:
        # A nested record's reason already names its fields: keep it as it is.
        super().__init__(message if nested else f"field '{path}': {message}")
        self.code = code
        self.path = path


class Display(Enum):
    """What a reason may show of a wrong value of a field."""

    HIDDEN = "hidden"  # may identify a patient or a stay, or is free text: type and size only
    VOCABULARY = "vocabulary"  # a closed vocabulary: a short code-like string or small integer
    TIMESTAMP = "timestamp"  # a short string of digits and date/time separators


# A vocabulary value worth quoting: short, word characters and a few separators, no '@',
# and no run of more than MAX_DIGIT_RUN digits (INS, RPPS, phone numbers, dates of birth).
MAX_SHOWN_LENGTH = 40
MAX_DIGIT_RUN = 5
_VOCABULARY_RE = re.compile(r"[\w.:/+ -]+")
_LONG_DIGIT_RUN_RE = re.compile(rf"[0-9]{{{MAX_DIGIT_RUN + 1},}}")
# A date typo worth quoting: digits, separators and punctuation, no letter but T and Z.
_DATE_LIKE_RE = re.compile(r"[0-9TtZz:/.,;_+ -]*[0-9][0-9TtZz:/.,;_+ -]*")
_DATE_SEPARATOR_RE = re.compile(r"[-:/]")


def shown(value: Any) -> str:
    """The value as the producer sent it, shortened. Only for values `displayable` allows."""
    text = orjson.dumps(value).decode() if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def described(value: Any) -> str:
    """What was found by JSON type and size, never the value: 'a string of 14 characters',
    'a number of 13 digits', 'an object with 2 keys', 'an array of 1 item'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean true" if value else "a boolean false"
    if isinstance(value, int):
        return f"a number of {_count(len(str(abs(value))), 'digit')}"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        if not value:
            return "an empty string"
        blank = "" if value.strip() else "blank "
        return f"a {blank}string of {_count(len(value), 'character')}"
    if isinstance(value, list):
        return f"an array of {_count(len(value), 'item')}" if value else "an empty array"
    if isinstance(value, dict):
        return f"an object with {_count(len(value), 'key')}" if value else "an empty object"
    return f"a value of type {type(value).__name__}"


def displayable(value: Any, display: Display) -> bool:
    """Whether a reason may quote `value` found in a field shown as `display`."""
    if display is Display.VOCABULARY:
        if isinstance(value, int) and not isinstance(value, bool):
            return len(str(abs(value))) <= MAX_DIGIT_RUN
        return (
            isinstance(value, str)
            and len(value) <= MAX_SHOWN_LENGTH
            and _VOCABULARY_RE.fullmatch(value) is not None
            and _LONG_DIGIT_RUN_RE.search(value) is None
        )
    if display is Display.TIMESTAMP:
        return (
            isinstance(value, str)
            and len(value) <= MAX_SHOWN_LENGTH
            and _DATE_LIKE_RE.fullmatch(value) is not None
            and _DATE_SEPARATOR_RE.search(value) is not None
        )
    return False


def found(value: Any, display: Display = Display.HIDDEN) -> str:
    """'a string "abc"' when `display` allows quoting it, else 'a string of 3 characters'."""
    if value is None or isinstance(value, bool) or not displayable(value, display):
        return described(value)
    return f"{json_type_name(value)} {shown(value)}"


def _quoted_or_described(value: Any, display: Display) -> str:
    """'"2023-01-12"' or '(a string of 50 characters)': to name a value inside a sentence."""
    return shown(value) if displayable(value, display) else f"({described(value)})"


def _typo(value: str, display: Display) -> str:
    """'"12/01/2023"' or 'a string of 50 characters': a string found instead of a format."""
    return shown(value) if displayable(value, display) else described(value)


def _wrong(path: str, expected: str, value: Any, display: Display) -> FieldError:
    return FieldError(INVALID_FIELD, path, f"expected {expected}, found {found(value, display)}")


class Kind:
    """Base of field kinds. `nullable` kinds accept JSON null and an absent key; `display`
    says what a reason may show of a wrong value."""

    nullable: bool = False
    display: Display = Display.HIDDEN

    def parse(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Kind):
    """A non-empty string. Hidden in reasons unless declared a vocabulary (codes)."""

    description: str = ""
    nullable: bool = False
    max_length: int = 200
    display: Display = Display.HIDDEN

    def parse(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _wrong(path, "a non-empty string", value, self.display)
        if len(value) > self.max_length:
            raise FieldError(
                INVALID_FIELD,
                path,
                f"expected at most {self.max_length} characters, found {len(value)}",
            )
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}


# FINESS: 9 characters, a department code then 7 digits. Department codes: 01–19, 21–95,
# 2A/2B (Corsica, which has no 20), 97x/98x overseas (971–976, 984–988: 97 or 98 then
# digits); 00, 20, 96 and 99 do not exist. One definition for the validator (fullmatch:
# `$` alone would accept a final newline) and the JSON Schema (anchored, plus the length,
# so a validator that searches the pattern with Python's `$` refuses a newline as well).
FINESS_LENGTH = 9
FINESS_DEPARTMENT = r"(?:0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-578])"
FINESS_PATTERN = rf"^{FINESS_DEPARTMENT}[0-9]{{7}}$"
_FINESS_RE = re.compile(FINESS_PATTERN)
_DEPARTMENT_RE = re.compile(FINESS_DEPARTMENT)
_FINESS_EXPECTED = (
    "a FINESS number of 9 characters (a department code: 01 to 19, 21 to 95, 2A, 2B, 97 "
    "or 98, then 7 digits, e.g. 750712184)"
)


def is_finess(value: Any) -> bool:
    """Whether `value` is a well-formed FINESS number (the whole string, nothing around)."""
    return isinstance(value, str) and _FINESS_RE.fullmatch(value) is not None


def _finess_defect(value: Any) -> str:
    """What is wrong with a value that is not a FINESS, without quoting it."""
    text = described(value)
    if not isinstance(value, str) or not value:
        return text
    if value != value.strip():
        return f"{text} with spaces or line breaks around it"
    if len(value) != FINESS_LENGTH:
        return text
    department = value[:2]
    if _DEPARTMENT_RE.fullmatch(department) is None:
        code = f" {shown(department)}" if department.isascii() and department.isalnum() else ""
        return f"{text} whose department code{code} does not exist"
    return f"{text} with other characters than digits after the department code"


@dataclass(frozen=True)
class Finess(Kind):
    nullable: bool = False

    def parse(self, value: Any, path: str) -> str:
        if not is_finess(value):
            raise FieldError(
                INVALID_FINESS, path, f"expected {_FINESS_EXPECTED}, found {_finess_defect(value)}"
            )
        return str(value)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "minLength": FINESS_LENGTH,
            "maxLength": FINESS_LENGTH,
            "pattern": FINESS_PATTERN,
        }


# RFC 3339: date, 'T' (or space), time, optional fraction, mandatory offset (fullmatch).
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
_HAS_TIME_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?$"
)


@dataclass(frozen=True)
class Timestamp(Kind):
    nullable: bool = False
    display: Display = Display.TIMESTAMP

    def parse(self, value: Any, path: str) -> datetime:
        if not isinstance(value, str):
            raise _wrong(path, "an RFC 3339 timestamp string", value, self.display)
        if not _TIMESTAMP_RE.fullmatch(value):
            if _HAS_TIME_RE.fullmatch(value):
                message = (
                    f"timestamp {_quoted_or_described(value, self.display)} has no UTC offset; "
                    "add one, e.g. 2023-03-01T10:00:00+01:00 or 2023-03-01T09:00:00Z"
                )
            else:
                message = (
                    "expected an RFC 3339 timestamp with offset "
                    f"(e.g. 2023-03-01T10:00:00+01:00), found {_typo(value, self.display)}"
                )
            raise FieldError(INVALID_TIMESTAMP, path, message)
        try:
            return datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
        except ValueError as exc:
            why = f" ({exc})" if value not in str(exc) else ""
            raise FieldError(
                INVALID_TIMESTAMP,
                path,
                f"{_quoted_or_described(value, self.display)} is not a real date and time{why}",
            ) from None

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}


@dataclass(frozen=True)
class Boolean(Kind):
    nullable: bool = False
    display: Display = Display.VOCABULARY

    def parse(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise _wrong(path, "true or false", value, self.display)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Kind):
    """One string of a fixed set."""

    values: tuple[str, ...]
    nullable: bool = False
    display: Display = Display.VOCABULARY

    def parse(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise _wrong(path, "one of " + ", ".join(self.values), value, self.display)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class IntChoice(Kind):
    """One integer of a fixed set (booleans are not integers here)."""

    values: tuple[int, ...]
    nullable: bool = False
    display: Display = Display.VOCABULARY

    def parse(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value not in self.values:
            raise _wrong(path, "one of " + ", ".join(map(str, self.values)), value, self.display)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "enum": list(self.values)}


@dataclass(frozen=True)
class ListOf(Kind):
    """A JSON array of records of `item` (a contract dataclass)."""

    item: type
    nullable: bool = False

    def parse(self, value: Any, path: str) -> tuple[Any, ...]:
        from topics.validation import parse_fields  # circular: records use this kind

        if not isinstance(value, list):
            raise _wrong(path, "an array", value, self.display)
        return tuple(
            parse_fields(self.item, element, f"{path}[{index}]")
            for index, element in enumerate(value)
        )

    def schema(self) -> dict[str, Any]:
        from topics.schema import object_schema

        return {"type": "array", "items": object_schema(self.item)}
