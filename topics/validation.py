"""Decode and validate one message of the contract v1 into a record.

Every defect is reported: `InvalidRecord.reason` lists each bad field with what was expected
and what was found; `InvalidRecord.code` is the first defect's short code (a metrics label).
Reasons go to logs and dead-letter headers: they describe a wrong value by JSON type and size
and quote it only where `topics.display.displayable` allows (codes, date typos), and never
quote the bytes of a message that is not JSON.

`parse_for_topic` also checks that a record came on its topic (registry records on the
registry topic only) and turns a message without value on the registry topic (a tombstone of
the compacted topic) into a `RegistryTombstone`, the deletion of the FINESS of its key.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from topics.display import Display, described, found, quoted_or_described
from topics.errors import (
    CONTRACT_CODES,
    FUTURE_TIMESTAMP,
    INCONSISTENT_DATES,
    INGEST_CODES,
    INTERNAL_ERROR,
    INVALID_FIELD,
    INVALID_FINESS,
    INVALID_JSON,
    INVALID_TIMESTAMP,
    MISSING_FIELD,
    NOT_AN_OBJECT,
    REASON_CODES,
    RETENTION_CODES,
    TOO_LARGE,
    TOO_LATE,
    UNKNOWN_TYPE,
    WRONG_TOPIC,
    InvalidRecord,
)
from topics.fields import field_specs, is_finess, parse_fields
from topics.names import CONTRACT_TOPICS, TopicNames
from topics.records import (
    RECORD_TYPES,
    EstablishmentRecord,
    Record,
    RegistryTombstone,
    StayDischarged,
)

# Other packages import these from here: the reason codes and the error (topics.errors),
# the fields of a record class (topics.fields), and this module's own functions.
__all__ = [
    "CONTRACT_CODES",
    "FUTURE_TIMESTAMP",
    "INCONSISTENT_DATES",
    "INGEST_CODES",
    "INTERNAL_ERROR",
    "INVALID_FIELD",
    "INVALID_FINESS",
    "INVALID_JSON",
    "INVALID_TIMESTAMP",
    "MISSING_FIELD",
    "NOT_AN_OBJECT",
    "REASON_CODES",
    "RETENTION_CODES",
    "TOO_LARGE",
    "TOO_LATE",
    "UNKNOWN_TYPE",
    "WRONG_TOPIC",
    "InvalidRecord",
    "decode_json",
    "field_specs",
    "is_registry_tombstone",
    "json_error_reason",
    "parse_fields",
    "parse_for_topic",
    "parse_record",
    "record_from_object",
    "registry_tombstone",
]


# orjson's messages are fixed texts (yyjson's). Keep one only if it quotes nothing longer
# than a token such as 'true' or '}', has no number of two digits or more, and no word of it
# occurs in the input: no fragment of the message can get through.
_SAFE_JSON_ERROR_RE = re.compile(r"[A-Za-z0-9 ,;()-]*(?:(?:'[^'\n]{1,5}'|:)[A-Za-z0-9 ,;()-]*)*")
_NUMBER_RE = re.compile(r"[0-9]{2,}")
_WORD_RE = re.compile(r"[A-Za-z0-9]{4,}")


def json_error_reason(exc: orjson.JSONDecodeError) -> str:
    """Why bytes are not JSON, with the position but never a fragment of the bytes."""
    message = exc.msg if isinstance(exc.msg, str) else ""
    doc = exc.doc if isinstance(exc.doc, str) else ""
    if (
        len(message) > 80
        or not _SAFE_JSON_ERROR_RE.fullmatch(message)
        or _NUMBER_RE.search(message)
        or any(word in doc for word in _WORD_RE.findall(message))
    ):
        message = "malformed JSON"
    return (
        f"not valid JSON (UTF-8): {message} at line {int(exc.lineno)} column {int(exc.colno)} "
        f"(char {int(exc.pos)})"
    )


def decode_json(raw: bytes | str) -> Any:
    """The decoded JSON value, or `InvalidRecord` (invalid_json) without quoting `raw`."""
    if not raw:
        raise InvalidRecord(INVALID_JSON, "not valid JSON (UTF-8): empty message (no value)")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(INVALID_JSON, json_error_reason(exc)) from None


def parse_record(raw: bytes | str) -> Record:
    """Decode JSON bytes (UTF-8) and validate them as one record of the contract v1.
    Does not know the topic: consumers of topics use `parse_for_topic`."""
    return record_from_object(decode_json(raw))


def record_from_object(obj: Any) -> Record:
    """Validate an already-decoded JSON value as one record of the contract v1."""
    if not isinstance(obj, dict):
        raise InvalidRecord(NOT_AN_OBJECT, f"expected a JSON object, found {found(obj)}")
    type_name = obj.get("type")
    if type_name is None:
        raise InvalidRecord(MISSING_FIELD, "field 'type': is required but missing")
    cls = RECORD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        unknown = quoted_or_described(type_name, Display.VOCABULARY)
        raise InvalidRecord(
            UNKNOWN_TYPE,
            f"field 'type': unknown record type {unknown}; expected one of "
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


def is_registry_tombstone(
    topic: str, value: bytes | str | None, topics: TopicNames = CONTRACT_TOPICS
) -> bool:
    """Whether a message is a tombstone of the compacted registry topic: no value (None, or
    empty bytes as some clients hand it), meaning "delete the entry of the key's FINESS".
    On an event topic an empty message is simply invalid JSON."""
    return topic == topics.establishments and not value


def registry_tombstone(
    key: bytes | str | None, topics: TopicNames = CONTRACT_TOPICS
) -> RegistryTombstone:
    """The deletion a registry tombstone stands for, or `InvalidRecord` when its key is not
    a FINESS (then nothing can be deleted)."""
    finess: str | None = None
    if isinstance(key, bytes):
        try:
            finess = key.decode()
        except UnicodeDecodeError:
            finess = None
    else:
        finess = key
    if finess is None or not is_finess(finess):
        if key is None:
            what = "no key"
        elif isinstance(key, bytes):
            what = f"a key of {len(key)} bytes that is not a FINESS"
        else:
            what = f"a key that is not a FINESS ({described(key)})"
        raise InvalidRecord(
            INVALID_FINESS,
            f"message key: a tombstone (message without value) on {topics.establishments} deletes "
            f"the registry entry of the FINESS given by its key, found {what}",
        )
    return RegistryTombstone(finess)


def _topic_defect(obj: Any, topic: str, topics: TopicNames) -> str | None:
    """Why a decoded message does not belong on `topic`, if its type says so."""
    type_name = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(type_name, str) or type_name not in RECORD_TYPES:
        return None  # no known type: record_from_object says what is wrong
    on_registry = topic == topics.establishments
    if type_name == EstablishmentRecord.TYPE and not on_registry:
        return (
            f"field 'type': an {type_name} record belongs on the registry topic "
            f"{topics.establishments}, not on the event topic {topic}"
        )
    if type_name != EstablishmentRecord.TYPE and on_registry:
        return (
            f"field 'type': a {type_name} event belongs on {topics.of_type(type_name)}, "
            f"not on the registry topic {topics.establishments}"
        )
    return None


def parse_for_topic(
    raw: bytes | str | None,
    topic: str,
    key: bytes | str | None = None,
    topics: TopicNames = CONTRACT_TOPICS,
) -> Record | RegistryTombstone:
    """Validate one message read from `topic`, one of `topics` (the contract's by default).

    - On the registry topic, a message without value is a `RegistryTombstone` for the
      FINESS of `key` (`InvalidRecord` if the key is not one).
    - An establishment record on any other topic, or an event on the registry topic, is
      refused with code `wrong_topic` (its other defects, if any, are listed after).
    - Otherwise as `parse_record`. Any topic other than the registry is an event topic;
      an event on another event topic than its own is accepted (events are routed by type).
    """
    if is_registry_tombstone(topic, raw, topics):
        return registry_tombstone(key, topics)
    obj = decode_json(raw or b"")
    misplaced = _topic_defect(obj, topic, topics)
    if misplaced is None:
        return record_from_object(obj)
    try:
        record_from_object(obj)
    except InvalidRecord as exc:
        raise InvalidRecord(WRONG_TOPIC, f"{misplaced}; {exc.reason}") from None
    raise InvalidRecord(WRONG_TOPIC, misplaced)
