"""Why a message is refused: the reason codes and the errors that carry them.

A reason code is a short, low-cardinality label (a metrics label, the `sunes-reason-code`
header of a dead letter); the error's text says the rest, for a person to fix the producer.
This module imports nothing: every other module of `topics` (and the stages that dead-letter
a message) take their codes from here.
"""

from __future__ import annotations

# The message itself.
INVALID_JSON = "invalid_json"  # not UTF-8 JSON, or empty
NOT_AN_OBJECT = "not_an_object"  # JSON, but not an object (an array, a string...)
UNKNOWN_TYPE = "unknown_type"  # no record type of the contract v1
# Its fields.
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_FINESS = "invalid_finess"
INCONSISTENT_DATES = "inconsistent_dates"  # discharge before admission
# Its topic: a registry record on an event topic, or an event on the registry topic.
WRONG_TOPIC = "wrong_topic"
# Refused by the retention rules (processors.retention), against the time it was received.
TOO_LATE = "too_late"
FUTURE_TIMESTAMP = "future_timestamp"
# Refused by the ingest stage itself.
TOO_LARGE = "too_large"  # bigger than the worker can carry (streams.worker.bundles.MAX_EVENT_BYTES)
INTERNAL_ERROR = "internal_error"  # an unexpected exception while processing this record

# What contract validation (topics.validation) may answer.
CONTRACT_CODES = (
    INVALID_JSON,
    NOT_AN_OBJECT,
    UNKNOWN_TYPE,
    MISSING_FIELD,
    INVALID_FIELD,
    INVALID_TIMESTAMP,
    INVALID_FINESS,
    INCONSISTENT_DATES,
    WRONG_TOPIC,
)
RETENTION_CODES = (TOO_LATE, FUTURE_TIMESTAMP)
INGEST_CODES = (TOO_LARGE, INTERNAL_ERROR)
# Every code a dead letter may carry.
REASON_CODES = (*CONTRACT_CODES, *RETENTION_CODES, *INGEST_CODES)


class InvalidRecord(ValueError):
    """The message breaks the contract; `reason` says how, for a person to fix it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FieldError(ValueError):
    """A field of an event is missing or has the wrong shape."""

    def __init__(self, code: str, path: str, message: str, *, nested: bool = False) -> None:
        # A nested record's reason already names its fields: keep it as it is.
        super().__init__(message if nested else f"field '{path}': {message}")
        self.code = code
        self.path = path
