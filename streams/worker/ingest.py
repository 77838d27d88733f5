"""The ingest stage: read the input topics in batches, validate, dead-letter, repartition.

A plain aiokafka consumer group (`<app id>-ingest`) rather than a Faust agent: Faust's
per-message machinery cost ~130 µs an event, more than validation and the indicators
together. Each poll of up to `config.ingest_batch` messages becomes one bundle per FINESS on the
internal topic (key = FINESS); offsets are committed only once the bundles and dead letters
are acknowledged by Kafka, so a crash replays, never loses (at-least-once; the establishment
stage merges idempotently).

No input can stop it: every record is bundled (alone, if it is big) or dead-lettered. One
over streams.worker.bundles.MAX_EVENT_BYTES is dead-lettered as `too_large`, truncated; an
unexpected exception dead-letters its record as `internal_error`; a size Kafka refuses
(MessageSizeTooLargeError) splits the bundle, or truncates the dead letter, never escapes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    MessageSizeTooLargeError,
    RebalanceInProgressError,
)

from processors.retention import Bounds, time_bounds_error
from processors.settings import Settings
from streams.kafka_clients import aiokafka_security
from streams.worker.bundles import (
    MAX_EVENT_BYTES,
    encode_bundle,
    encode_bundle_v2,
    event_item,
    item_as_row,
)
from streams.worker.config import WorkerConfig
from streams.worker.deadletter import (
    VALUE_PREFIX_BYTES,
    full_deadletter,
    internal_error,
    too_large_error,
    truncated_deadletter,
)
from streams.worker.expired import ExpiredRecordsCheck
from topics.errors import INTERNAL_ERROR, TOO_LARGE
from topics.fast import fast_struct
from topics.records import EstablishmentRecord, RegistryTombstone
from topics.validation import InvalidRecord, parse_for_topic

log = logging.getLogger(__name__)

# Events of one FINESS per bundle, at most (an event bigger than this travels alone, up to
# streams.worker.bundles.MAX_EVENT_BYTES): Kafka refuses messages over 1 MB by default.
MAX_BUNDLE_BYTES = 256 * 1024
# The producer's batch per partition: several bundles per produce request. At aiokafka's
# 16 KiB each bundle (~36 KiB) was a batch of its own, and a partition's next bundle waited
# for the previous one to leave, one request at a time: a poll's sends took a dozen round
# trips, the event loop idle meanwhile (bench/README.md). No larger than a bundle may be,
# so that a topic taking our bundles takes our batches.
PRODUCER_BATCH_BYTES = MAX_BUNDLE_BYTES


class Producer(Protocol):
    """What the ingest stage needs of an AIOKafkaProducer (tests give a fake)."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...


OnTooLarge = Callable[[], Awaitable[None]]


class IngestCounts(Protocol):
    """What the ingest stage counts: monitoring.pipeline's PipelineMetrics in the worker's
    process, its IngestTally in the ingest's own (streams/worker/ingest_process.py)."""

    def consumed_valid(self, topic: str, count: int = 1) -> None: ...

    def consumed_invalid(self, topic: str, reason: str) -> None: ...


@dataclass(slots=True)
class _Pending:
    """A valid event on its way to a bundle (its type and bundle item; no type for a version
    2 row, see bundles.item_as_row), with the record it came from."""

    raw: bytes
    type: str | None
    row: bytes
    stamp: float | None
    record: ConsumerRecord[Any, Any]


class _Batch:
    """The sends of one poll: what to do when one is refused for its size, the valid count."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.pending: list[tuple[asyncio.Future[Any], OnTooLarge]] = []
        self.valid: Counter[str] = Counter()
        # After a refusal for size, each message is sent once the one before is acked, in
        # a produce batch of its own: the broker refuses a batch whole, so the pieces of a
        # refused bundle must not be refused again for their neighbours' bytes.
        self.alone = False

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        refused: OnTooLarge,
    ) -> None:
        """Queue one message; `refused` runs instead if it is too large, now (the producer's
        max_request_size) or once the broker answers (the topic's max.message.bytes)."""
        try:
            future = await self.producer.send(topic, value, key=key, headers=headers)
        except MessageSizeTooLargeError:
            await refused()
            return
        self.pending.append((future, refused))
        if self.alone:
            await asyncio.wait([future])

    async def settle(self) -> None:
        """Wait for every acknowledgement, sending the replacements of refused messages;
        raise the first other failure (the poll is then replayed)."""
        while self.pending:
            pending, self.pending = self.pending, []
            await asyncio.wait([future for future, _ in pending])
            failure: BaseException | None = None
            retries: list[OnTooLarge] = []
            for future, refused in pending:
                error = future.exception()
                if isinstance(error, MessageSizeTooLargeError):
                    retries.append(refused)
                elif error is not None and failure is None:
                    failure = error
            if failure is not None:
                raise failure
            self.alone = self.alone or bool(retries)
            for retry in retries:
                await retry()


async def _undeliverable(record: ConsumerRecord[Any, Any], error: InvalidRecord) -> None:
    log.error(
        "cannot dead-letter %s[%d]@%d (%s): the dead-letter topic refuses even a dead letter "
        "without value; the original stays at its source offset",
        record.topic, record.partition, record.offset, error.code,
    )  # fmt: skip


def chunks(events: list[bytes], limit: int) -> list[tuple[int, int]]:
    """(start, end) slices of `events` whose sizes add up to at most `limit` (or one event)."""
    slices: list[tuple[int, int]] = []
    start, size = 0, 0
    for index, event in enumerate(events):
        if size and size + len(event) > limit:
            slices.append((start, index))
            start, size = index, 0
        size += len(event) + 1
    slices.append((start, len(events)))
    return slices


class _ReceivedAt:
    """The retention clock (processors.retention) of the records of one poll: a record's
    Kafka timestamp, never later than this worker's clock (a producer's clock may be wrong
    too). One clock reading per poll; each distinct record timestamp's datetime and bounds
    built once (a producer stamps many records alike)."""

    __slots__ = ("bounds", "known", "now", "settings")

    def __init__(self, now: float, settings: Settings) -> None:
        self.now = now
        self.settings = settings
        self.known: dict[int | None, datetime] = {}
        self.bounds: dict[int | None, Bounds] = {}

    def __call__(self, timestamp: int | None) -> datetime:
        moment = self.known.get(timestamp)
        if moment is None:
            stamp = timestamp / 1000 if timestamp and timestamp > 0 else self.now
            moment = self.known[timestamp] = datetime.fromtimestamp(min(stamp, self.now), UTC)
        return moment

    def bounds_of(self, timestamp: int | None) -> Bounds:
        """The retention's bounds of a record with this Kafka timestamp."""
        bounds = self.bounds.get(timestamp)
        if bounds is None:
            bounds = self.bounds[timestamp] = Bounds(self(timestamp), self.settings)
        return bounds


BROKER_PROBE_SECONDS = 5.0


class _FromCommitted(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, a partition's progress is its committed offset: after a restart with
    nothing new, the lag is 0, not the partition's whole length."""

    def __init__(self, ingestor: Ingestor, consumer: AIOKafkaConsumer) -> None:
        self.ingestor = ingestor
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.ingestor.positions.pop((tp.topic, tp.partition), None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.ingestor.expired is not None:  # before the first fetch resets past a hole
            await self.ingestor.expired.check(self.ingestor.group, assigned)
        for tp in assigned:
            committed = await self.consumer.committed(tp)
            self.ingestor.positions[(tp.topic, tp.partition)] = committed or 0


class Ingestor:
    def __init__(
        self,
        config: WorkerConfig,
        internal_topic: str,
        pipeline: IngestCounts,
        client_overrides: Mapping[str, Any],
        expired: ExpiredRecordsCheck | None = None,
    ) -> None:
        self.config = config
        self.group = f"{config.app_id}-ingest"
        self.expired = expired
        self.rules = config.rules
        self.internal_topic = internal_topic
        self.pipeline = pipeline
        self.client_overrides = dict(client_overrides)
        self.consumer: AIOKafkaConsumer | None = None
        # (topic, partition) → next offset to process, for the lag gauge: the committed
        # offset at assignment, then the position after each batch
        self.positions: dict[tuple[str, int], int] = {}
        self.broker_error: str | None = None  # why the last broker probe failed
        self._stopping = False
        # called after each poll's commit (its counts are in `pipeline` then): the ingest
        # process reports to the worker at once (streams/worker/ingest_process.py)
        self.after_poll: Callable[[], None] | None = None

    async def run(self) -> None:
        security = aiokafka_security(self.config.security)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # group joins in seconds, not 30 s (6 s is Kafka's minimum session timeout)
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            max_poll_records=self.config.ingest_batch,
            **security,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap_servers,
            linger_ms=5,
            # a broker's own client settings win (Tansu: one record per batch)
            **{"max_batch_size": PRODUCER_BATCH_BYTES, **security, **self.client_overrides},
        )
        await producer.start()
        await consumer.start()
        consumer.subscribe(self.config.topics.inputs, listener=_FromCommitted(self, consumer))
        self.consumer = consumer
        probe = asyncio.create_task(self._probe_broker(consumer))
        try:
            while not self._stopping:
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=self.config.ingest_batch
                )
                if not batches:
                    continue
                await self._process(batches, producer)
                try:
                    await consumer.commit(
                        {tp: records[-1].offset + 1 for tp, records in batches.items()}
                    )
                except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as exc:
                    # A rebalance took partitions away meanwhile: their new owner reads
                    # those messages again (a replay, which the state absorbs), never a loss.
                    log.warning("ingest commit skipped after a rebalance: %s", exc)
                if self.after_poll is not None:
                    self.after_poll()
        finally:
            probe.cancel()
            self.consumer = None
            await consumer.stop()
            await producer.stop()

    def stop(self) -> None:
        """End run() after the poll in hand is acknowledged and committed (or within the
        poll's timeout, 0.5 s, when there is none): nothing acked is left uncommitted."""
        self._stopping = True

    async def _probe_broker(self, consumer: AIOKafkaConsumer) -> None:
        """Whether the brokers answer, for /health: aiokafka itself retries silently."""
        while True:
            try:
                await asyncio.wait_for(consumer._client.fetch_all_metadata(), BROKER_PROBE_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.broker_error is None:
                    log.error("the Kafka brokers do not answer: %s", type(exc).__name__)
                self.broker_error = type(exc).__name__ or "no answer"
            else:
                if self.broker_error is not None:
                    log.warning("the Kafka brokers answer again")
                self.broker_error = None
            await asyncio.sleep(BROKER_PROBE_SECONDS)

    async def _process(
        self,
        batches: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]],
        producer: Producer,
    ) -> None:
        """Bundle or dead-letter every record of a poll; return once Kafka acknowledged all.

        No record can stop it: one too big for a bundle of its own is dead-lettered as
        `too_large`, an unexpected exception dead-letters its record as `internal_error`,
        a dead letter the topic refuses whole is sent truncated. Only Kafka failing to take
        the sends raises (the poll is then not committed, and replayed)."""
        batch = _Batch(producer)
        bundles: dict[str, list[_Pending]] = {}
        refused: list[tuple[ConsumerRecord[Any, Any], bytes, InvalidRecord]] = []
        now = time.time()
        received = _ReceivedAt(now, self.rules)
        for tp, records in batches.items():
            for record in records:
                # synchronous: a coroutine per record cost more than the record's own checks
                item = self._ingest(batch, record, received, refused)
                if item is not None:
                    bundles.setdefault(item[0], []).append(item[1])
            if records:
                self.positions[(tp.topic, tp.partition)] = records[-1].offset + 1
        for record, raw, error in refused:  # in their order, before the bundles, as ever
            await self._deadletter(batch, record, raw, error)
        for finess, items in bundles.items():
            for start, end in chunks([item.row for item in items], MAX_BUNDLE_BYTES):
                await self._send_bundle(batch, finess, items[start:end])
        await batch.settle()  # acknowledged before the offsets are committed
        for topic, count in batch.valid.items():
            if count > 0:
                self.pipeline.consumed_valid(topic, count)

    def _ingest(
        self,
        batch: _Batch,
        record: ConsumerRecord[Any, Any],
        received: _ReceivedAt,
        refused: list[tuple[ConsumerRecord[Any, Any], bytes, InvalidRecord]],
    ) -> tuple[str, _Pending] | None:
        """(FINESS, event) to bundle; None when refused (appended to `refused`, dead-lettered
        by the caller) or a registry record."""
        raw: bytes = record.value if record.value is not None else b""
        if len(raw) > MAX_EVENT_BYTES:  # not even parsed: the worker could not carry it
            too_large = too_large_error(
                len(raw), record.topic, record.partition, record.offset, limit=MAX_EVENT_BYTES
            )
            refused.append((record, raw, too_large))
            return None
        try:
            stamp = record.timestamp / 1000 if record.timestamp else None
            # A valid event in the retention's bounds takes the fast path, straight to its
            # bundle item (topics.fast: the very record the contract gives, not built here).
            # Anything else, and every refusal's reason, comes from the contract's validation.
            fast = fast_struct(record.value, record.topic == self.config.topics.establishments)
            if fast is not None and received.bounds_of(record.timestamp).admit(fast.stamps):
                finess, kind, item = fast.finess, fast.type, event_item(fast.struct)
            else:
                parsed = parse_for_topic(record.value, record.topic, record.key, self.config.topics)
                if isinstance(parsed, EstablishmentRecord | RegistryTombstone):
                    batch.valid[record.topic] += 1
                    return None  # the registry reader of every worker applies it
                error = time_bounds_error(parsed, received(record.timestamp), self.rules)
                if error is not None:
                    raise error
                finess, kind, item = parsed.finess, parsed.type, event_item(parsed)
            if len(item) > MAX_EVENT_BYTES:  # its fields' names and defaults: as a row
                pending = (finess, _Pending(raw, None, item_as_row(kind, item), stamp, record))
            else:
                pending = (finess, _Pending(raw, kind, item, stamp, record))
        except InvalidRecord as exc:
            refused.append((record, raw, exc))
            return None
        except Exception as exc:  # a bug, or an input nobody foresaw: this record only
            log.error(
                "internal error (%s) while ingesting %s[%d]@%d: dead-lettered as %s",
                type(exc).__name__, record.topic, record.partition, record.offset,
                INTERNAL_ERROR,
            )  # fmt: skip
            refused.append((record, raw, internal_error(exc)))
            return None
        batch.valid[record.topic] += 1
        return pending

    async def _send_bundle(self, batch: _Batch, finess: str, items: list[_Pending]) -> None:
        if any(item.type is None for item in items):  # rows of events too big as items
            for item in items:
                if item.type is None:
                    await self._send_row(batch, finess, item)
            items = [item for item in items if item.type is not None]
            if not items:
                return
        types: list[str] = [item.type for item in items]  # type: ignore[misc]
        value = encode_bundle(types, [item.row for item in items], [i.stamp for i in items])
        await self._send_value(batch, finess, items, value)

    async def _send_row(self, batch: _Batch, finess: str, item: _Pending) -> None:
        """An event as a row, alone in a version 2 bundle (bundles.item_as_row)."""
        await self._send_value(batch, finess, [item], encode_bundle_v2([item.row], [item.stamp]))

    async def _send_value(
        self, batch: _Batch, finess: str, items: list[_Pending], value: bytes
    ) -> None:
        """Send the bundle `value` of these items; a refusal for its size splits it."""
        refused = functools.partial(self._bundle_refused, batch, finess, items)
        await batch.send(self.internal_topic, value, finess.encode(), None, refused)

    async def _bundle_refused(self, batch: _Batch, finess: str, items: list[_Pending]) -> None:
        """The internal topic (or the producer) refused a bundle for its size: its events
        travel alone; one that cannot is dead-lettered as too_large."""
        if len(items) > 1:
            for item in items:
                await self._send_bundle(batch, finess, [item])
            return
        item = items[0]
        record = item.record
        batch.valid[record.topic] -= 1
        error = too_large_error(
            len(item.raw),
            record.topic,
            record.partition,
            record.offset,
            refused_by=self.internal_topic,
        )
        await self._deadletter(batch, record, item.raw, error)

    async def _deadletter(
        self,
        batch: _Batch,
        record: ConsumerRecord[Any, Any],
        raw: bytes,
        error: InvalidRecord,
    ) -> None:
        self.pipeline.consumed_invalid(record.topic, error.code)
        if error.code != INTERNAL_ERROR:  # logged already, without the exception's message
            log.warning(
                "dead-lettered %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                error.reason,
            )
        if error.code == TOO_LARGE or len(raw) > MAX_EVENT_BYTES:
            await self._send_truncated(batch, record, raw, error, VALUE_PREFIX_BYTES)
            return
        letter = full_deadletter(
            error, raw, record.key, record.topic, record.partition, record.offset
        )
        refused = functools.partial(
            self._send_truncated, batch, record, raw, error, VALUE_PREFIX_BYTES
        )
        await batch.send(
            self.config.topics.deadletter, letter.value, letter.key, letter.headers, refused
        )

    async def _send_truncated(
        self,
        batch: _Batch,
        record: ConsumerRecord[Any, Any],
        raw: bytes,
        error: InvalidRecord,
        prefix: int,
    ) -> None:
        """A prefix of the value; if even that is refused, no value at all; if even that is
        refused, the error log says where the original stays."""
        letter = truncated_deadletter(
            error, raw, record.key, record.topic, record.partition, record.offset, prefix=prefix
        )
        refused: OnTooLarge
        if prefix > 0:
            refused = functools.partial(self._send_truncated, batch, record, raw, error, 0)
        else:
            refused = functools.partial(_undeliverable, record, error)
        await batch.send(
            self.config.topics.deadletter, letter.value, letter.key, letter.headers, refused
        )

    def started(self) -> bool:
        """Whether run() has its clients started and its topics subscribed."""
        return self.consumer is not None

    def assigned(self) -> list[str]:
        """The input partitions this worker's ingest stage reads, as "topic/partition"."""
        consumer = self.consumer
        if consumer is None:
            return []
        return sorted(f"{tp.topic}/{tp.partition}" for tp in consumer.assignment())

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages of each assigned input partition not processed yet."""
        consumer = self.consumer
        if consumer is None:
            return {}
        lag = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                done = self.positions.get((tp.topic, tp.partition), 0)
                lag[(tp.topic, tp.partition)] = max(0, highwater - done)
        return lag
