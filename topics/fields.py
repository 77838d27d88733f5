"""Field kinds of the event contract.

Each kind both checks a decoded JSON value (raising `FieldError` with a reason a person can
act on) and describes itself as JSON Schema, so validation and the published schemas come
from one definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
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


def shown(value: Any) -> str:
    """The value as the producer sent it, shortened, for error messages."""
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


def found(value: Any) -> str:
    """'a string "abc"', 'a number 3', 'null': what the producer sent, for messages."""
    return "null" if value is None else f"{json_type_name(value)} {shown(value)}"


def _wrong(path: str, expected: str, value: Any) -> FieldError:
    return FieldError(INVALID_FIELD, path, f"expected {expected}, found {found(value)}")


class Kind:
    """Base of field kinds. `nullable` kinds accept JSON null and an absent key."""

    nullable: bool = False

    def parse(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Kind):
    """A non-empty string."""

    description: str = ""
    nullable: bool = False
    max_length: int = 200

    def parse(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _wrong(path, "a non-empty string", value)
        if len(value) > self.max_length:
            raise FieldError(
                INVALID_FIELD,
                path,
                f"expected at most {self.max_length} characters, found {len(value)}",
            )
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}


# FINESS: 9 characters, a department code (two digits, or 2A/2B for Corsica) then 7 digits.
FINESS_PATTERN = r"^(?:[0-9]{2}|2[AB])[0-9]{7}$"
_FINESS_RE = re.compile(FINESS_PATTERN)


@dataclass(frozen=True)
class Finess(Kind):
    nullable: bool = False

    def parse(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not _FINESS_RE.match(value):
            raise FieldError(
                INVALID_FINESS,
                path,
                "expected a FINESS number of 9 characters (department code, 2 digits or 2A/2B, "
                f"then 7 digits, e.g. 750712184), found {found(value)}",
            )
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": FINESS_PATTERN}


# RFC 3339: date, 'T' (or space), time, optional fraction, mandatory offset.
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

    def parse(self, value: Any, path: str) -> datetime:
        if not isinstance(value, str):
            raise _wrong(path, "an RFC 3339 timestamp string", value)
        if not _TIMESTAMP_RE.match(value):
            if _HAS_TIME_RE.match(value):
                message = (
                    f"timestamp {shown(value)} has no UTC offset; add one, "
                    "e.g. 2023-03-01T10:00:00+01:00 or 2023-03-01T09:00:00Z"
                )
            else:
                message = (
                    "expected an RFC 3339 timestamp with offset "
                    f"(e.g. 2023-03-01T10:00:00+01:00), found {shown(value)}"
                )
            raise FieldError(INVALID_TIMESTAMP, path, message)
        try:
            return datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
        except ValueError as exc:
            raise FieldError(
                INVALID_TIMESTAMP, path, f"{shown(value)} is not a real date and time ({exc})"
            ) from None

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}


@dataclass(frozen=True)
class Boolean(Kind):
    nullable: bool = False

    def parse(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise _wrong(path, "true or false", value)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Kind):
    """One string of a fixed set."""

    values: tuple[str, ...]
    nullable: bool = False

    def parse(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise _wrong(path, "one of " + ", ".join(self.values), value)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class IntChoice(Kind):
    """One integer of a fixed set (booleans are not integers here)."""

    values: tuple[int, ...]
    nullable: bool = False

    def parse(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value not in self.values:
            raise _wrong(path, "one of " + ", ".join(map(str, self.values)), value)
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
            raise _wrong(path, "an array", value)
        return tuple(
            parse_fields(self.item, element, f"{path}[{index}]")
            for index, element in enumerate(value)
        )

    def schema(self) -> dict[str, Any]:
        from topics.schema import object_schema

        return {"type": "array", "items": object_schema(self.item)}
