"""What goes with a dead letter: the original bytes as the value, the reason in headers.

Keeping the value byte-for-byte lets an operator fix the producer and replay the message to
its source topic unchanged; the headers say why it was refused and where it came from.
"""

from __future__ import annotations

from topics.validation import InvalidRecord

MAX_REASON_BYTES = 4000


def deadletter_headers(
    error: InvalidRecord, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        ("sunes-reason", error.reason.encode()[:MAX_REASON_BYTES]),
        ("sunes-reason-code", error.code.encode()),
        ("sunes-source-topic", topic.encode()),
        ("sunes-source-partition", str(partition).encode()),
        ("sunes-source-offset", str(offset).encode()),
    ]


def describe(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    """Headers of a dead letter as text, for tools and tests."""
    return {
        key: value.decode(errors="replace") for key, value in headers if key.startswith("sunes-")
    }
