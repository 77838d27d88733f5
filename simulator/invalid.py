"""Broken messages, as real producers send them: each must go to the dead-letter topic."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from simulator.message import INVALID_PREFIX, SimulatedMessage
from topics.records import EVENT_TYPES, StayDischarged
from topics.validation import field_specs

BAD_JSON = "bad_json"
UNKNOWN_TYPE = "unknown_type"
MISSING_FIELD = "missing_field"
NAIVE_TIMESTAMP = "naive_timestamp"
BAD_FINESS = "bad_finess"
DISCHARGE_BEFORE_ADMISSION = "discharge_before_admission"
INVALID_KINDS = (
    BAD_JSON,
    UNKNOWN_TYPE,
    MISSING_FIELD,
    NAIVE_TIMESTAMP,
    BAD_FINESS,
    DISCHARGE_BEFORE_ADMISSION,
)
UNKNOWN_TYPES = ("stay.transferred", "document.archived", "Stay.Discharged", "mss.received")
BAD_FINESS_VALUES = ("75000001", "7500000123", "FR750000012", "75 000 001 2", "AB0000012")


def corrupt(kind: str, base: SimulatedMessage, rng: random.Random) -> SimulatedMessage:
    """A broken variant of a valid event message (DISCHARGE_BEFORE_ADMISSION needs a stay)."""
    if kind == BAD_JSON:
        # Cut in the middle, as a producer that crashed while writing: never valid JSON.
        value = base.value[: max(1, len(base.value) // 2)]
    else:
        obj: dict[str, Any] = orjson.loads(base.value)
        # A fresh id: the broken message must not pass for a duplicate of the valid one.
        obj["event_id"] = f"{obj['event_id']}-x{rng.getrandbits(32):08x}"
        if kind == UNKNOWN_TYPE:
            obj["type"] = rng.choice(UNKNOWN_TYPES)
        elif kind == MISSING_FIELD:
            required = [
                spec.name
                for spec in field_specs(EVENT_TYPES[obj["type"]])
                if spec.required and spec.name != "type"
            ]
            del obj[rng.choice(required)]
        elif kind == NAIVE_TIMESTAMP:
            obj["occurred_at"] = obj["occurred_at"][:19]  # the offset dropped
        elif kind == BAD_FINESS:
            obj["finess"] = rng.choice(BAD_FINESS_VALUES)
        elif kind == DISCHARGE_BEFORE_ADMISSION:
            obj["admitted_at"], obj["discharged_at"] = obj["discharged_at"], obj["admitted_at"]
        else:
            raise ValueError(f"unknown kind of invalid message {kind!r}")
        value = orjson.dumps(obj)
    return SimulatedMessage(base.topic, base.key, value, False, INVALID_PREFIX + kind)


def inject_invalid(
    messages: Iterable[SimulatedMessage], fraction: float, rng: random.Random
) -> Iterator[SimulatedMessage]:
    """Pass `messages` through, adding broken ones so that about `fraction` of all are."""
    if fraction <= 0:
        yield from messages
        return
    per_valid = fraction / (1 - fraction)
    last_stay: SimulatedMessage | None = None
    for message in messages:
        yield message
        if message.label == StayDischarged.TYPE:
            last_stay = message
        if rng.random() >= per_valid:
            continue
        kind = rng.choice(INVALID_KINDS)
        base = message
        if kind == DISCHARGE_BEFORE_ADMISSION:
            if last_stay is None:
                kind = BAD_JSON
            else:
                base = last_stay
        yield corrupt(kind, base, rng)
