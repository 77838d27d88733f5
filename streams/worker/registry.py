"""The registry reader: every worker reads the whole compacted `sunes.establishments.v1`.

No consumer group: each worker needs every establishment's window and targets, whichever
partitions it owns. A tombstone deletes the FINESS's entry. What the ingest stage refuses
(and dead-letters) is ignored here by the same judgement.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from processors.collection import Establishments
from streams.kafka_clients import aiokafka_security
from streams.worker.bundles import MAX_EVENT_BYTES
from streams.worker.config import WorkerConfig
from topics.records import EstablishmentRecord, RegistryTombstone
from topics.validation import InvalidRecord, parse_for_topic


class RegistryReader:
    def __init__(self, config: WorkerConfig, establishments: Establishments) -> None:
        self.config = config
        self.establishments = establishments
        self.loaded = asyncio.Event()  # the topic read to its end once

    async def run(self) -> None:
        """Read the whole topic, then follow it."""
        consumer = AIOKafkaConsumer(
            self.config.topics.establishments,
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=None,  # no group: this consumer gets every partition
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **aiokafka_security(self.config.security),
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for message in records:
                        self.apply(message.key, message.value)
                if not self.loaded.is_set() and await self._caught_up(consumer):
                    self.loaded.set()
        finally:
            await consumer.stop()

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
        tps = sorted(consumer.assignment())
        if not tps:
            return False
        ends = await consumer.end_offsets(tps)
        return all([await consumer.position(tp) >= ends[tp] for tp in tps])

    def apply(self, key: bytes | None, raw: bytes | None) -> None:
        if raw is not None and len(raw) > MAX_EVENT_BYTES:
            return
        try:
            topics = self.config.topics
            record = parse_for_topic(raw, topics.establishments, key, topics)
        except InvalidRecord:
            return
        if isinstance(record, RegistryTombstone):
            self.establishments.delete_registry(record.finess)
        elif isinstance(record, EstablishmentRecord):
            self.establishments.set_registry(record)
