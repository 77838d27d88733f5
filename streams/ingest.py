"""The ingest stage: read the input topics in batches, validate, dead-letter, repartition.

A plain aiokafka consumer group (`<app id>-ingest`) rather than a Faust agent: Faust's
per-message machinery cost ~130 µs an event, more than validation and the indicators
together. Each poll of up to INGEST_BATCH messages becomes one bundle per FINESS on the
internal topic (key = FINESS); offsets are committed only once the bundles and dead letters
are acknowledged by Kafka, so a crash replays, never loses (at-least-once; the establishment
stage merges idempotently).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError

from monitoring.pipeline import PipelineMetrics
from processors.retention import time_bounds_error
from streams.bundles import encode_bundle
from streams.config import WorkerConfig
from streams.deadletter import deadletter_headers
from streams.kafka_clients import aiokafka_security
from topics import names
from topics.records import EstablishmentRecord
from topics.validation import InvalidRecord, parse_record

log = logging.getLogger(__name__)

INGESTED_TOPICS = (names.STAYS, names.DMP, names.MSS, names.ESTABLISHMENTS)
INGEST_BATCH = 5000  # messages per poll at most: one bundle per FINESS per poll
# Kafka refuses messages over 1 MB by default (message.max.bytes): bundles stay well under.
MAX_BUNDLE_BYTES = 256 * 1024


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


def received_at(record: ConsumerRecord[Any, Any], now: float) -> datetime:
    """The retention clock (processors.retention): the record's Kafka timestamp, never later
    than this worker's clock (a producer's clock may be wrong too)."""
    stamp = record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else now
    return datetime.fromtimestamp(min(stamp, now), UTC)


class Ingestor:
    def __init__(
        self,
        config: WorkerConfig,
        internal_topic: str,
        pipeline: PipelineMetrics,
        client_overrides: Mapping[str, Any],
    ) -> None:
        self.config = config
        self.rules = config.rules
        self.internal_topic = internal_topic
        self.pipeline = pipeline
        self.client_overrides = dict(client_overrides)
        self.consumer: AIOKafkaConsumer | None = None
        # (topic, partition) → next offset to process, for the lag gauge
        self.positions: dict[tuple[str, int], int] = {}

    async def run(self) -> None:
        security = aiokafka_security(self.config.security)
        consumer = AIOKafkaConsumer(
            *INGESTED_TOPICS,
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=f"{self.config.app_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # group joins in seconds, not 30 s (6 s is Kafka's minimum session timeout)
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            max_poll_records=INGEST_BATCH,
            **security,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap_servers,
            linger_ms=5,
            **{**security, **self.client_overrides},
        )
        await producer.start()
        await consumer.start()
        self.consumer = consumer
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=INGEST_BATCH)
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
        finally:
            self.consumer = None
            await consumer.stop()
            await producer.stop()

    async def _process(
        self,
        batches: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]],
        producer: AIOKafkaProducer,
    ) -> None:
        bundles: dict[str, tuple[list[bytes], list[float | None]]] = {}
        pending: list[asyncio.Future[Any]] = []
        valid: Counter[str] = Counter()
        now = time.time()
        for tp, records in batches.items():
            for record in records:
                raw: bytes = record.value if record.value is not None else b""
                try:
                    parsed = parse_record(raw)
                    if not isinstance(parsed, EstablishmentRecord):
                        error = time_bounds_error(parsed, received_at(record, now), self.rules)
                        if error is not None:
                            raise error
                except InvalidRecord as exc:
                    pending.append(await self._deadletter(producer, record, raw, exc))
                    continue
                valid[tp.topic] += 1
                if isinstance(parsed, EstablishmentRecord):
                    continue  # the registry reader of every worker applies it
                events, stamps = bundles.setdefault(parsed.finess, ([], []))
                events.append(raw)
                stamps.append(record.timestamp / 1000 if record.timestamp else None)
            self.positions[(tp.topic, tp.partition)] = records[-1].offset + 1
        for finess, (events, stamps) in bundles.items():
            for start, end in chunks(events, MAX_BUNDLE_BYTES):
                value = encode_bundle(events[start:end], stamps[start:end])
                pending.append(await producer.send(self.internal_topic, value, key=finess.encode()))
        await asyncio.gather(*pending)  # acknowledged before the offsets are committed
        for topic, count in valid.items():
            self.pipeline.consumed_valid(topic, count)

    async def _deadletter(
        self,
        producer: AIOKafkaProducer,
        record: ConsumerRecord[Any, Any],
        raw: bytes,
        error: InvalidRecord,
    ) -> asyncio.Future[Any]:
        self.pipeline.consumed_invalid(record.topic, error.code)
        log.warning(
            "dead-lettered %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            error.reason,
        )
        future: asyncio.Future[Any] = await producer.send(
            names.DEADLETTER,
            raw,
            key=record.key,
            headers=deadletter_headers(error, record.topic, record.partition, record.offset),
        )
        return future

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
