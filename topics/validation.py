"""Decode and validate one message of the contract v1 into a record.

Every defect is reported: `InvalidRecord.reason` lists each bad field with what was expected
and what was found; `InvalidRecord.code` is the first defect's short code (a metrics label).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, TypeVar, get_type_hints

import orjson

from topics.fields import MISSING_FIELD, FieldError, Kind, ListOf, Timestamp, shown
from topics.records import RECORD_TYPES, Record, StayDischarged

INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_TYPE = "unknown_type"
INCONSISTENT_DATES = "inconsistent_dates"
# Refused by the retention rules (processors.retention), against the time it was received.
TOO_LATE = "too_late"
FUTURE_TIMESTAMP = "future_timestamp"

REASON_CODES = (
    INVALID_JSON,
    NOT_AN_OBJECT,
    UNKNOWN_TYPE,
    MISSING_FIELD,
    "invalid_field",
    "invalid_timestamp",
    "invalid_finess",
    INCONSISTENT_DATES,
    TOO_LATE,
    FUTURE_TIMESTAMP,
)

T = TypeVar("T")


class InvalidRecord(ValueError):
    """The message breaks the contract; `reason` says how, for a person to fix it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


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
        raise InvalidRecord(NOT_AN_OBJECT, f"{where}expected a JSON object, found {shown(obj)}")
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


def trusted_record(obj: dict[str, Any]) -> Record:
    """Rebuild a record from an object that `record_from_object` already accepted (our own
    internal topic): types are not checked again, only timestamps and lists are converted.
    Anything else than such an object may raise any exception."""
    return _trusted(RECORD_TYPES[obj["type"]], obj)  # type: ignore[no-any-return]


def _trusted(cls: type, obj: dict[str, Any]) -> Any:
    values = {}
    for spec in field_specs(cls):
        value = obj.get(spec.name)
        if value is None:
            values[spec.name] = None if spec.name in obj or spec.required else spec.default
        elif isinstance(spec.kind, Timestamp):
            values[spec.name] = spec.kind.parse(value, spec.name)
        elif isinstance(spec.kind, ListOf):
            values[spec.name] = tuple(_trusted(spec.kind.item, item) for item in value)
        else:
            values[spec.name] = value
    return cls(**values)


def parse_record(raw: bytes | str) -> Record:
    """Decode JSON bytes (UTF-8) and validate them as one record of the contract v1."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(INVALID_JSON, f"not valid JSON (UTF-8): {exc}") from None
    return record_from_object(obj)


def record_from_object(obj: Any) -> Record:
    """Validate an already-decoded JSON value as one record of the contract v1."""
    if not isinstance(obj, dict):
        raise InvalidRecord(NOT_AN_OBJECT, f"expected a JSON object, found {shown(obj)}")
    type_name = obj.get("type")
    if type_name is None:
        raise InvalidRecord(MISSING_FIELD, "field 'type': is required but missing")
    cls = RECORD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise InvalidRecord(
            UNKNOWN_TYPE,
            f"field 'type': unknown record type {shown(type_name)}; expected one of "
            + ", ".join(RECORD_TYPES),
        )
    record: Record = parse_fields(cls, obj)
    if isinstance(record, StayDischarged) and record.discharged_at < record.admitted_at:
        raise InvalidRecord(
            INCONSISTENT_DATES,
            f"field 'discharged_at': discharge {record.discharged_at.isoformat()} is before "
            f"admission {record.admitted_at.isoformat()} (field 'admitted_at'); "
            "check the PV1-44/PV1-45 mapping",
        )
    return record
