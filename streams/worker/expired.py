"""Records a topic's retention deleted before this worker's consumer group applied them.

At every assignment, both stages (ingest on the input topics, the establishment agent on the
internal topic) compare their group's committed offset with each partition's log start
offset, as `kafka-consumer-groups.sh --describe` would show them:

- committed < log start: records committed..log start-1 expired unread. The consumer's
  reset to the earliest offset would pass over the hole silently: it is logged as an ERROR,
  counted in sunes_records_expired_total{topic,partition}, shown in /health (status
  `degraded`) and alerted on (SunesRecordsExpired). The figures lack those records: rebuild
  or accept (docs/runbook.md#sunesrecordsexpired).
- no committed offset and log start > 0: records 0..log start-1 expired before this group
  ever read them (a fresh app id on an old topic). Logged as a WARNING and shown in /health
  (`expired_before_first_read`), not counted: on topics kept for the retention horizon
  (streams/topic_configs.py) they are past it and would not count anyway.

The check reads Kafka directly (an admin client for the group's offsets, a group-less
consumer for the log start offsets); if the brokers do not answer it says so and lets the
assignment go on: it never holds the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Counter

from streams.kafka_clients import Security, aiokafka_security

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Expired:
    """One partition's hole: what the group had committed, where the log starts now."""

    group: str
    topic: str
    partition: int
    committed: int | None
    log_start: int

    @property
    def count(self) -> int:
        return self.log_start - (self.committed or 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "committed": self.committed,
            "log_start": self.log_start,
            "expired": self.count,
        }


def expired_of(
    group: str, tp: TopicPartition, committed: int | None, log_start: int
) -> Expired | None:
    """The hole of one partition, or None when nothing expired before the group read it."""
    if log_start <= (committed or 0):
        return None
    return Expired(group, tp.topic, tp.partition, committed, log_start)


class ExpiredRecordsCheck:
    """The check of both stages, its counter and what /health shows."""

    def __init__(
        self, bootstrap_servers: str, security: Security, registry: CollectorRegistry
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.counter = Counter(
            "sunes_records_expired",
            "Records a topic's retention deleted after the worker's group had committed "
            "below them: never applied, missing from the figures. Should stay 0.",
            ["topic", "partition"],
            registry=registry,
        )
        self.lost: dict[str, Expired] = {}  # "topic/partition" → the hole
        self.before_first_read: dict[str, Expired] = {}
        self._lock = asyncio.Lock()

    async def check(self, group: str, partitions: Iterable[Any]) -> None:
        """Check the partitions (anything with .topic and .partition) just assigned to
        `group`; never raises."""
        tps = sorted({TopicPartition(tp.topic, tp.partition) for tp in partitions})
        if not tps:
            return
        failure: BaseException | None = None
        try:
            async with self._lock:
                committed, starts = await asyncio.wait_for(
                    self._offsets(group, tps), CHECK_TIMEOUT_SECONDS
                )
        except asyncio.CancelledError as exc:
            if being_cancelled():
                raise
            failure = exc  # not ours (see `_stop_quietly`): it would end the assignment
        except Exception as exc:
            failure = exc
        if failure is not None:
            log.warning(
                "cannot check %s's offsets against the topics' log start (%s): a record "
                "expired unread would go unreported until the next assignment",
                group, type(failure).__name__,
            )  # fmt: skip
            return
        for tp in tps:
            hole = expired_of(group, tp, committed.get(tp), starts.get(tp, 0))
            if hole is not None:
                self._report(hole)

    def holes(self) -> list[Expired]:
        """Every hole found so far (for adopt in another process)."""
        return [*self.lost.values(), *self.before_first_read.values()]

    def adopt(self, hole: Expired) -> None:
        """A hole another process's check found and logged (the ingest stage's own process,
        streams/worker/ingest_process.py): counted and shown here, once, not logged again."""
        self._report(hole, logged=True)

    def _report(self, hole: Expired, logged: bool = False) -> None:
        key = f"{hole.topic}/{hole.partition}"
        if hole in (self.lost.get(key), self.before_first_read.get(key)):
            return  # the same hole seen again at a later assignment: counted once
        if hole.committed is None:
            self.before_first_read[key] = hole
            if logged:
                return
            log.warning(
                "%s[%d]: records 0..%d expired (retention) before group %s ever read them",
                hole.topic, hole.partition, hole.log_start - 1, hole.group,
            )  # fmt: skip
            return
        self.lost[key] = hole
        self.counter.labels(hole.topic, str(hole.partition)).inc(hole.count)
        if logged:
            return
        log.error(
            "RECORDS EXPIRED UNREAD on %s[%d]: group %s had committed %d, the log now starts "
            "at %d: %d record(s) deleted by the topic's retention were never applied; the "
            "figures lack them (docs/runbook.md#sunesrecordsexpired)",
            hole.topic, hole.partition, hole.group, hole.committed, hole.log_start, hole.count,
        )  # fmt: skip

    async def _offsets(
        self, group: str, tps: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        security = aiokafka_security(self.security)
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id="sunes-expiry", **security
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, **security
        )
        try:
            await admin.start()
            await consumer.start()
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            starts = await consumer.beginning_offsets(tps)
        finally:
            await _stop_quietly(consumer.stop())
            await _stop_quietly(admin.close())
        return committed, dict(starts)

    def health(self) -> dict[str, Any]:
        return {
            "expired_records": {key: hole.as_json() for key, hole in sorted(self.lost.items())},
            "expired_before_first_read": {
                key: hole.as_json() for key, hole in sorted(self.before_first_read.items())
            },
        }


def being_cancelled() -> bool:
    """Whether the running task itself is being cancelled (not a CancelledError passed on)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _stop_quietly(stopping: Awaitable[None]) -> None:
    """Stop a client of the check, whatever it raises, unless the check is cancelled. Why:
    aiokafka 0.14's group-less consumer cancels and awaits its offset-reset task on stop; a
    consumer stopped before that task ever ran (the admin request failing at once after the
    start: a broker just back from a freeze) raises that task's CancelledError out of
    `stop()`, which ended the ingest stage's assignment callback and the stage with it
    (test_expired_kafka shows aiokafka's raise)."""
    try:
        await stopping
    except asyncio.CancelledError:
        if being_cancelled():
            raise
    except Exception as exc:  # the check's result stands; the client is gone either way
        log.debug("closing a client of the expired-records check: %s", type(exc).__name__)
