"""What goes with a dead letter: the original bytes as the value, the reason in headers.

Keeping the value byte-for-byte lets an operator fix the producer and replay the message to
its source topic unchanged; the headers say why it was refused and where it came from.

A message too big to carry (`too_large`), or whose full value the dead-letter topic refuses,
is dead-lettered in a truncated form instead: the first VALUE_PREFIX_BYTES of its value, with
`sunes-value-truncated: true` and `sunes-original-size`; the original stays at its source
offset (sunes-source-topic/partition/offset), which the reason says.
"""

from __future__ import annotations

from typing import NamedTuple

from topics.errors import INTERNAL_ERROR, TOO_LARGE, InvalidRecord

MAX_REASON_BYTES = 4000
VALUE_PREFIX_BYTES = 1024  # of a truncated dead letter's value (and key)
BARE_REASON_BYTES = 200  # the reason of a dead letter sent without any value (last resort)

Headers = list[tuple[str, bytes]]


class DeadLetter(NamedTuple):
    value: bytes
    key: bytes | None
    headers: Headers


def deadletter_headers(error: InvalidRecord, topic: str, partition: int, offset: int) -> Headers:
    return [
        ("sunes-reason", _text(error.reason)[:MAX_REASON_BYTES]),
        ("sunes-reason-code", _text(error.code)),
        ("sunes-source-topic", _text(topic)),
        ("sunes-source-partition", str(partition).encode()),
        ("sunes-source-offset", str(offset).encode()),
    ]


def too_large_error(
    size: int,
    topic: str,
    partition: int,
    offset: int,
    *,
    limit: int | None = None,
    refused_by: str | None = None,
) -> InvalidRecord:
    """The reason of a message too big to carry: its size, the limit (or the topic that
    refused it), where the original stays."""
    if limit is not None:
        why = f"more than the {limit:,} bytes an input message may have"
    else:
        why = (
            f"refused by {refused_by} even alone in a bundle (MessageSizeTooLargeError: "
            "its max.message.bytes, or the producer's max_request_size, is lower)"
        )
    return InvalidRecord(
        TOO_LARGE,
        f"the message is {size:,} bytes, {why}; the original stays at "
        f"{topic}/{partition}/{offset}, this dead letter holds only a prefix of it: split the "
        "event at the producer",
    )


def internal_error(exc: BaseException) -> InvalidRecord:
    """An unexpected exception while processing one record: its type only (its message may
    quote the record's content)."""
    return InvalidRecord(INTERNAL_ERROR, f"internal error: {type(exc).__name__}")


def full_deadletter(
    error: InvalidRecord,
    value: bytes,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
) -> DeadLetter:
    """The original bytes, the reason in headers (replayable as it is)."""
    return DeadLetter(value, key, deadletter_headers(error, topic, partition, offset))


def truncated_deadletter(
    error: InvalidRecord,
    value: bytes,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    *,
    prefix: int = VALUE_PREFIX_BYTES,
) -> DeadLetter:
    """A bounded dead letter: the first `prefix` bytes of the value (and key), the reason,
    the original size; the original stays at its source offset."""
    reason = error.reason
    if error.code != TOO_LARGE:
        reason += (
            f"; the dead-letter topic cannot take this message whole ({len(value):,} bytes): "
            f"its first {prefix:,} bytes only, the original stays at "
            f"{topic}/{partition}/{offset}"
        )
    headers = deadletter_headers(InvalidRecord(error.code, reason), topic, partition, offset)
    if prefix < VALUE_PREFIX_BYTES:  # the last resort: keep the headers small too
        headers[0] = (headers[0][0], headers[0][1][:BARE_REASON_BYTES])
    headers += [
        ("sunes-value-truncated", b"true"),
        ("sunes-original-size", str(len(value)).encode()),
    ]
    return DeadLetter(value[:prefix], None if key is None else key[:prefix], headers)


def describe(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    """Headers of a dead letter as text, for tools and tests."""
    return {
        key: value.decode(errors="replace") for key, value in headers if key.startswith("sunes-")
    }


def _text(value: str) -> bytes:
    # an exception's message may hold lone surrogates, which strict UTF-8 refuses
    return value.encode(errors="replace")
