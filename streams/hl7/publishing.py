"""Kafka for the HL7 listener: events and dead letters sent, and awaited until acknowledged.

The producer is idempotent with acks=all (unless the client profile says otherwise, as for
the embedded Tansu broker): `publish` returns only once the brokers have every event of a
message, so that the listener answers AA only then. A failure raises `KafkaUnavailable`: no
ACK goes out, the sender re-sends, and the events (whose event_id is derived from the message)
are duplicates downstream, counted once.

A dead letter on `sunes.hl7.deadletter.v1` is the message's original bytes, the reason in
headers; a message bigger than DEADLETTER_VALUE_BYTES (the brokers' default message size) is
dead-lettered as its first bytes, with `sunes-value-truncated` and `sunes-original-size`: the
sender keeps the original, since it got AE/AR.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.cli.producer import Publisher
from streams.kafka_clients import Security
from streams.worker.bundles import MAX_EVENT_BYTES
from streams.worker.deadletter import MAX_REASON_BYTES, VALUE_PREFIX_BYTES
from topics.errors import TOO_LARGE, InvalidRecord
from topics.names import CONTRACT_TOPICS, TopicNames, TopicSpec
from topics.validation import parse_for_topic

HL7_DEADLETTER = "sunes.hl7.deadletter.v1"
HL7_DEADLETTER_TOPIC = TopicSpec(
    HL7_DEADLETTER,
    1,
    False,
    "HL7 v2 messages the listener refused: original bytes, reason",
    True,
)
DEFAULT_ACK_TIMEOUT = 30.0  # seconds a message may wait for Kafka before it gets no ACK
DEADLETTER_VALUE_BYTES = 900_000  # under the brokers' default max.message.bytes (1 MB)

# Over streams.cli.producer's defaults (acks=all); a client profile's overrides win.
LISTENER_OVERRIDES: dict[str, Any] = {
    "enable_idempotence": True,
    "linger_ms": 2,  # an ACK waits for it: batch only what concurrent connections send
}


def hl7_deadletter_spec(topics: TopicNames = CONTRACT_TOPICS) -> TopicSpec:
    """The HL7 dead-letter topic of a pipeline (behind the same prefix as its topics)."""
    prefix = topics.stays.removesuffix(CONTRACT_TOPICS.stays)
    return replace(HL7_DEADLETTER_TOPIC, name=prefix + HL7_DEADLETTER)


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge: the message must not be acknowledged either."""


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    topic: str
    key: bytes
    value: bytes


def outgoing(event: Mapping[str, Any], topics: TopicNames = CONTRACT_TOPICS) -> OutgoingEvent:
    """An event as it will be published: the topic of its type among `topics`, keyed by
    FINESS; InvalidRecord if it breaks the contract or is too big for a worker (a converter
    bug: never published)."""
    value = orjson.dumps(event)
    if len(value) > MAX_EVENT_BYTES:
        raise InvalidRecord(
            TOO_LARGE,
            f"an event of {len(value):,} bytes, more than the {MAX_EVENT_BYTES:,} a worker "
            "can carry",
        )
    try:
        topic = topics.of_type(str(event.get("type")))
    except KeyError:
        topic = topics.stays  # validation names the unknown type
    record = parse_for_topic(value, topic, topics=topics)
    return OutgoingEvent(topic, str(getattr(record, "finess", "")).encode(), value)


@dataclass(frozen=True, slots=True)
class DeadLetterNote:
    """What the headers of a dead letter say (none of it patient data)."""

    reason: str
    detail: str
    ack_code: str
    sender: str = ""  # MSH-3^MSH-4
    control_id: str = ""
    message_type: str = ""
    location: str = ""
    peer: str = ""  # the sender's address

    def headers(self, original_size: int, truncated: bool) -> list[tuple[str, bytes]]:
        pairs = [
            ("sunes-reason", self.detail.encode(errors="replace")[:MAX_REASON_BYTES]),
            ("sunes-reason-code", self.reason.encode(errors="replace")),
            ("sunes-hl7-ack-code", self.ack_code.encode()),
            ("sunes-hl7-sender", self.sender.encode(errors="replace")),
            ("sunes-hl7-control-id", self.control_id.encode(errors="replace")),
            ("sunes-hl7-message-type", self.message_type.encode(errors="replace")),
            ("sunes-hl7-location", self.location.encode(errors="replace")),
            ("sunes-hl7-peer", self.peer.encode(errors="replace")),
            ("sunes-received-at", datetime.now(UTC).isoformat().encode()),
            ("sunes-original-size", str(original_size).encode()),
        ]
        if truncated:
            pairs.append(("sunes-value-truncated", b"true"))
        return pairs


class Hl7Publisher(Publisher):
    """`sunes publish`'s producer (settings, security, start and stop), awaited per message."""

    def __init__(
        self,
        bootstrap_servers: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        security: Security | None = None,
        client_id: str = "sunes-hl7-listen",
        topics: TopicNames = CONTRACT_TOPICS,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
    ) -> None:
        super().__init__(
            bootstrap_servers,
            {**LISTENER_OVERRIDES, **(overrides or {})},
            security=security,
            client_id=client_id,
        )
        self.topics = topics
        self.ack_timeout = ack_timeout
        self.deadletter_topic = hl7_deadletter_spec(topics).name

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Send every event, then wait until the brokers have acknowledged all of them."""
        await self._send_all([(e.topic, e.key, e.value, None) for e in events])

    async def deadletter(self, raw: bytes, note: DeadLetterNote, original_size: int) -> bool:
        """Dead-letter one message (truncated when too big); True when it went whole."""
        from aiokafka.errors import MessageSizeTooLargeError

        whole = len(raw) == original_size and len(raw) <= DEADLETTER_VALUE_BYTES
        value = raw if whole else raw[:VALUE_PREFIX_BYTES]
        key = note.sender.encode(errors="replace")[:VALUE_PREFIX_BYTES] or None
        try:
            await self._send_all(
                [(self.deadletter_topic, key, value, note.headers(original_size, not whole))]
            )
        except KafkaUnavailable as exc:
            if not whole or not isinstance(exc.__cause__, MessageSizeTooLargeError):
                raise
            await self._send_all(
                [(self.deadletter_topic, key, raw[:VALUE_PREFIX_BYTES],
                  note.headers(original_size, True))]
            )  # fmt: skip
            return False
        return whole

    async def _send_all(
        self, messages: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]]
    ) -> None:
        from aiokafka.errors import KafkaError

        if self._producer is None:
            raise KafkaUnavailable("the producer is not started")
        try:
            async with asyncio.timeout(self.ack_timeout):  # the producer retries forever
                futures = [
                    await self._producer.send(topic, value, key=key, headers=headers)
                    for topic, key, value, headers in messages
                ]
                for future in futures:
                    await asyncio.shield(future)  # a timeout leaves the delivery alone
        except TimeoutError as exc:
            raise KafkaUnavailable(
                f"Kafka did not acknowledge within {self.ack_timeout:g} s"
            ) from exc
        except KafkaError as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}") from exc
