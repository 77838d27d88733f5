"""What the simulator emits: one Kafka message, with the topic and key a producer would use."""

from __future__ import annotations

from dataclasses import dataclass

# Labels besides the event types (`stay.discharged`...): what the generator meant a message as.
ESTABLISHMENT = "establishment"
DUPLICATE = "duplicate"
INVALID_PREFIX = "invalid:"


@dataclass(frozen=True, slots=True)
class SimulatedMessage:
    topic: str
    key: bytes  # the FINESS, UTF-8
    value: bytes  # the JSON event (or, when not valid, the broken bytes)
    valid: bool  # whether topics.validation.parse_record accepts `value`
    # The event type, "establishment", "duplicate" or "invalid:<kind>": for summaries.
    label: str = ""
