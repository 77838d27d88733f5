"""The event contract's fields: their kinds, and how a record class is read and described.

A record class (`topics.records`) annotates each field `Annotated[python type, kind]`. A kind
both checks a decoded JSON value (raising `FieldError` with a reason a person can act on,
showing of a wrong value only what `topics.display` allows) and describes itself as JSON
Schema, with the field's `description`; `parse_fields` and `object_schema` do the same for a
whole record class from its `field_specs`. Validation and the published schemas come from
this one definition, nested records (`ListOf`) included.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, get_type_hints

from topics.display import (
    Display,
    described,
    found,
    quoted_or_described,
    shown,
    typo,
)
from topics.errors import (
    INVALID_FIELD,
    INVALID_FINESS,
    INVALID_TIMESTAMP,
    MISSING_FIELD,
    NOT_AN_OBJECT,
    FieldError,
    InvalidRecord,
)

T = TypeVar("T")


def _wrong(path: str, expected: str, value: Any, display: Display) -> FieldError:
    return FieldError(INVALID_FIELD, path, f"expected {expected}, found {found(value, display)}")


class Kind:
    """Base of field kinds. `nullable` kinds accept JSON null and an absent key; `display`
    says what a reason may show of a wrong value; `description` says in one English
    sentence what the field means (the JSON Schemas publish it)."""

    nullable: bool = False
    display: Display = Display.HIDDEN
    description: str = ""

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
    description: str = ""

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
    description: str = ""
    display: Display = Display.TIMESTAMP

    def parse(self, value: Any, path: str) -> datetime:
        if not isinstance(value, str):
            raise _wrong(path, "an RFC 3339 timestamp string", value, self.display)
        if not _TIMESTAMP_RE.fullmatch(value):
            if _HAS_TIME_RE.fullmatch(value):
                message = (
                    f"timestamp {quoted_or_described(value, self.display)} has no UTC offset; "
                    "add one, e.g. 2023-03-01T10:00:00+01:00 or 2023-03-01T09:00:00Z"
                )
            else:
                message = (
                    "expected an RFC 3339 timestamp with offset "
                    f"(e.g. 2023-03-01T10:00:00+01:00), found {typo(value, self.display)}"
                )
            raise FieldError(INVALID_TIMESTAMP, path, message)
        try:
            return datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
        except ValueError as exc:
            why = f" ({exc})" if value not in str(exc) else ""
            raise FieldError(
                INVALID_TIMESTAMP,
                path,
                f"{quoted_or_described(value, self.display)} is not a real date and time{why}",
            ) from None

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}


@dataclass(frozen=True)
class Boolean(Kind):
    nullable: bool = False
    description: str = ""
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
    description: str = ""
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
    description: str = ""
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
    description: str = ""

    def parse(self, value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _wrong(path, "an array", value, self.display)
        return tuple(
            parse_fields(self.item, element, f"{path}[{index}]")
            for index, element in enumerate(value)
        )

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": object_schema(self.item)}


class FieldSpec(NamedTuple):
    name: str
    kind: Kind
    required: bool
    default: Any


_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


def field_specs(cls: type) -> tuple[FieldSpec, ...]:
    """The contract fields of a record class, from its `Annotated` hints (cached)."""
    cached = _SPECS.get(cls)
    if cached is not None:
        return cached
    hints = get_type_hints(cls, include_extras=True)
    specs = []
    for field in dataclasses.fields(cls):
        kind = next(m for m in hints[field.name].__metadata__ if isinstance(m, Kind))
        has_default = field.default is not dataclasses.MISSING
        specs.append(FieldSpec(field.name, kind, not has_default, field.default))
    _SPECS[cls] = tuple(specs)
    return _SPECS[cls]


def parse_fields(cls: type[T], obj: Any, path: str = "") -> T:
    """Build `cls` from a decoded JSON object, or raise `InvalidRecord` listing every defect."""
    if not isinstance(obj, dict):
        where = f"field '{path}': " if path else ""
        raise InvalidRecord(NOT_AN_OBJECT, f"{where}expected a JSON object, found {found(obj)}")
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for spec in field_specs(cls):
        field_path = f"{path}.{spec.name}" if path else spec.name
        value = obj.get(spec.name)
        if value is None:
            if spec.name not in obj:
                if spec.required:
                    errors.append(FieldError(MISSING_FIELD, field_path, "is required but missing"))
                else:
                    values[spec.name] = spec.default
                continue
            if spec.kind.nullable:
                values[spec.name] = None
                continue
        try:
            values[spec.name] = spec.kind.parse(value, field_path)
        except FieldError as exc:
            errors.append(exc)
        except InvalidRecord as exc:  # a nested object's own defects
            errors.append(FieldError(exc.code, field_path, exc.reason, nested=True))
    if errors:
        raise InvalidRecord(errors[0].code, "; ".join(str(e) for e in errors))
    return cls(**values)


def record_description(cls: type) -> str:
    """What a record class stands for, from its docstring as one line ('' without one:
    `dataclass` writes the signature into a class that has none)."""
    doc = cls.__doc__
    if not doc or doc.startswith(f"{cls.__name__}("):
        return ""
    return " ".join(inspect.cleandoc(doc).split())


def object_schema(cls: type, type_name: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one record class: each field's kind, its description, and which
    fields are required; `type_name` pins the `type` field of a record type."""
    properties: dict[str, Any] = {}
    for spec in field_specs(cls):
        if spec.name == "type" and type_name is not None:
            schema: dict[str, Any] = {"const": type_name}
        elif spec.kind.nullable:
            schema = {"anyOf": [spec.kind.schema(), {"type": "null"}]}
        else:
            schema = spec.kind.schema()
        if spec.kind.description:
            schema = {"description": spec.kind.description, **schema}
        properties[spec.name] = schema
    if type_name is not None and "type" not in properties:
        properties["type"] = {"const": type_name}
    required = [spec.name for spec in field_specs(cls) if spec.required]
    # Unknown fields are allowed: producers may send more than v1 needs.
    description = record_description(cls)
    result: dict[str, Any] = {"description": description} if description else {}
    return {**result, "type": "object", "required": required, "properties": properties}
