"""`sunes hl7 listen`'s server: MLLP in, contract events to Kafka, an ACK only once Kafka has them.

Per connection, one message at a time (MLLP is request and answer): read a frame, convert it,
then either publish its events and await the brokers' acknowledgements (AA), or dead-letter
its original bytes with the reason and await that (AE/AR, with an ERR). When Kafka does not
acknowledge, no ACK is sent and the connection is closed: the sender re-sends, and the
re-sent message gives the same event_ids (a duplicate, counted once downstream). A frame over
`max_message_bytes` is refused (AR, `too_large`) and dead-lettered as its first bytes; a
connection that ends inside a frame publishes nothing. At most `max_in_flight` messages are
converted and published at once, whatever the number of connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from streams.hl7.ack import ACCEPT, ERROR, REJECT, Refusal, build_ack
from streams.hl7.metrics import ACCEPTED, IGNORED, KAFKA_ERROR, REFUSED, ListenerMetrics
from streams.hl7.mllp import Frame, FrameCut, FrameReader, frame
from streams.hl7.publishing import (
    DeadLetterNote,
    Hl7Publisher,
    KafkaUnavailable,
    OutgoingEvent,
    outgoing,
)
from topics.errors import TOO_LARGE, InvalidRecord

if TYPE_CHECKING:
    from streams.hl7.parsing import MessageHeader

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # the ANS corpus peaks at ~0.8 MB (a base64 CDA)
DEFAULT_MAX_IN_FLIGHT = 16
INTERNAL_ERROR = "internal_error"
INVALID_EVENT = "invalid_event"


class ConversionLike(Protocol):
    """What the listener reads of streams.hl7.conversion.Conversion."""

    @property
    def ack_code(self) -> str: ...
    @property
    def events(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def control_id(self) -> str | None: ...
    @property
    def header(self) -> MessageHeader | None: ...


class Converter(Protocol):
    def convert(self, raw: bytes) -> ConversionLike: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A message's fate: the ACK code, the events to publish or the reason it was refused."""

    ack_code: str
    header: MessageHeader | None
    events: Sequence[OutgoingEvent] = ()
    reason: str | None = None
    detail: str | None = None
    location: str | None = None

    @property
    def refused(self) -> bool:
        return self.ack_code != ACCEPT


@dataclass(eq=False)
class _Connection:
    task: asyncio.Task[Any] | None
    busy: bool = False
    peer: str = ""
    writer: asyncio.StreamWriter | None = field(default=None, repr=False)


class Hl7Listener:
    def __init__(
        self,
        converter: Converter,
        publisher: Hl7Publisher,
        metrics: ListenerMetrics | None = None,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.converter = converter
        self.publisher = publisher
        self.metrics = metrics or ListenerMetrics()
        self.max_message_bytes = max_message_bytes
        self._slots = asyncio.Semaphore(max_in_flight)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self.kafka_ok = True  # the last publication was acknowledged (none yet counts as ok)

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def healthy(self) -> bool:
        """Serving, the producer started, and Kafka acknowledged the last message sent to it."""
        return self.serving and self.publisher.started and self.kafka_ok

    async def start(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        """Listen; return the address bound (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._serve, host, port, ssl=ssl_context)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop accepting; let the messages being handled finish (their ACK goes out)."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            if not connection.busy and connection.task is not None:
                connection.task.cancel()
        tasks = [c.task for c in self._connections if c.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else ""
        connection = _Connection(asyncio.current_task(), peer=peer, writer=writer)
        self._connections.add(connection)
        self.metrics.connections.inc()
        self.metrics.open_connections.inc()
        frames = FrameReader(reader, self.max_message_bytes)
        try:
            while True:
                try:
                    message = await frames.next()
                except FrameCut as cut:
                    self.metrics.cut_frames.inc()
                    log.info("connection from %s ended %s bytes into a frame", peer, cut.size)
                    break
                if message is None:
                    break
                connection.busy = True
                began = asyncio.get_running_loop().time()
                async with self._slots:
                    answer = await self.answer(message, peer)
                if answer is None:  # Kafka did not acknowledge: no ACK, the sender re-sends
                    break
                writer.write(frame(answer))
                await writer.drain()
                self.metrics.seconds.observe(asyncio.get_running_loop().time() - began)
                connection.busy = False
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.info("connection from %s lost: %s", peer, type(exc).__name__)
        finally:
            self.metrics.cut_frames.inc(frames.abandoned_frames)
            self._connections.discard(connection)
            self.metrics.open_connections.dec()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def answer(self, message: Frame, peer: str = "") -> bytes | None:
        """The ACK for one frame, once Kafka has what it says; None if Kafka failed."""
        outcome = self.outcome(message)
        try:
            if outcome.refused:
                await self.publisher.deadletter(
                    message.data, self._note(outcome, peer), message.size
                )
            else:
                await self.publisher.publish(outcome.events)
        except KafkaUnavailable as exc:
            log.warning("no ACK, connection closed: %s", exc)
            self.metrics.message(KAFKA_ERROR, "", outcome.reason)
            self.kafka_ok = False
            return None
        self.kafka_ok = True
        if outcome.refused:
            self.metrics.message(REFUSED, outcome.ack_code, outcome.reason)
            self.metrics.deadletters.labels(outcome.reason or "").inc()
        else:
            self.metrics.message(ACCEPTED if outcome.events else IGNORED, ACCEPT, outcome.reason)
            for event in outcome.events:
                self.metrics.events.labels(event.topic).inc()
        refusal = Refusal(outcome.reason or "", outcome.detail, outcome.location)
        return build_ack(outcome.ack_code, outcome.header, refusal if outcome.refused else None)

    def outcome(self, message: Frame) -> Outcome:
        """Convert one frame (never raises on its content)."""
        if message.too_large:
            return Outcome(
                REJECT,
                _header_of(message.data),
                reason=TOO_LARGE,
                detail=f"the message is {message.size:,} bytes, more than the "
                f"{self.max_message_bytes:,} bytes this listener accepts (--max-message-bytes); "
                f"the dead letter holds its first {len(message.data):,} bytes",
            )
        try:
            conversion = self.converter.convert(message.data)
        except Exception as exc:  # a converter bug: the message is kept, the listener goes on
            # The type only: an exception's message or traceback may quote the message's data.
            log.error("the converter failed on a message: %s", type(exc).__name__)
            return Outcome(
                ERROR,
                _header_of(message.data),
                reason=INTERNAL_ERROR,
                detail=f"internal error: {type(exc).__name__}",
            )
        if conversion.ack_code != ACCEPT:
            return Outcome(
                conversion.ack_code,
                conversion.header,
                reason=conversion.reason or "refused",
                detail=conversion.detail,
                location=conversion.location,
            )
        try:
            events = [outgoing(event, self.publisher.topics) for event in conversion.events]
        except InvalidRecord as exc:
            log.error("the converter made an event the contract refuses (%s)", exc.code)
            return Outcome(
                ERROR,
                conversion.header,
                reason=INVALID_EVENT,
                detail=f"the conversion gave an event the contract refuses ({exc.code}): "
                f"{exc.reason}",
            )
        return Outcome(ACCEPT, conversion.header, events, reason=conversion.reason)

    @staticmethod
    def _note(outcome: Outcome, peer: str) -> DeadLetterNote:
        header = outcome.header
        return DeadLetterNote(
            reason=outcome.reason or "",
            detail=outcome.detail or "",
            ack_code=outcome.ack_code,
            sender=f"{header.sending_application}^{header.sending_facility}" if header else "",
            control_id=header.control_id if header else "",
            message_type=header.message_type if header else "",
            location=outcome.location or "",
            peer=peer,
        )


def _header_of(raw: bytes) -> MessageHeader | None:
    """The MSH of a message (or of its first bytes), for its ACK; None if it has none."""
    from streams.hl7.parsing import read_header

    try:
        return read_header(raw)
    except Exception:  # a Refusal, or anything else: no usable MSH
        return None
