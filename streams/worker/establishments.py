"""The establishment stage: a Faust agent over the internal topic, one owner per FINESS.

    <app>-events-by-finess ─► this agent ─► processors.collection.Establishments
                                              (facts, indexes, contributions in the
                                               changelogged `facts` table; aggregates in RAM)

Each bundle's events are merged, then every changed entry is written once (one flush per
bundle, no await in between: a rebalance callback never sees half a bundle). Offsets are
checked contiguous (streams/worker/offset_guard.py); after every recovery the aggregates are
read back from the stored contributions, and establishments of lost partitions are dropped.
Establishments counted under other settings are recomputed on request, between bundles
(streams/worker/recompute.py).

Purge (processors.purge) runs here too, so that its deletions are tombstones on the
changelog: on the stage's clock — the latest Kafka record timestamp of the bundles it has
applied, never an event date — once a day of that clock per establishment, when a bundle of
that establishment comes (its writes go to the bundle's partition), in bounded chunks each
flushed before the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from faust.exceptions import ConsumerNotStarted
from faust.types import AppT, EventT, StreamT, TopicT

from monitoring.pipeline import PipelineMetrics
from processors.collection import Establishments
from processors.establishment import Establishment
from processors.figures import IndicatorRow, rows_of
from processors.purge import refused_after_purge
from processors.units import Unit
from streams.worker import faust_patch, gc_tuning
from streams.worker.bundles import bundle_record, decode_bundle
from streams.worker.deadletter import internal_error
from streams.worker.offset_guard import OffsetGuard
from streams.worker.recompute import REQUEST, Recomputation
from streams.worker.table_store import partition_of
from streams.worker.worklists import WorklistError
from topics.records import Event
from topics.validation import INVALID_FIELD, INVALID_JSON, InvalidRecord

log = logging.getLogger(__name__)

# A purge runs at most once per day of the stage's clock per establishment, this many entries
# examined or purged at a time (one flush each, the agent yielding in between: ~100 ms, see
# bench.purge).
PURGE_EVERY = timedelta(days=1)
PURGE_CHUNK = 2_000

DeadLetter = Callable[[bytes, "bytes | None", InvalidRecord, Any], Awaitable[None]]


class EstablishmentStage:
    def __init__(
        self,
        app: AppT,
        topic: TopicT,
        establishments: Establishments,
        partitions: int,
        pipeline: PipelineMetrics,
        deadletter: DeadLetter,
        recomputation: Recomputation,
        room: Callable[[], Awaitable[None]] | None = None,
        reading: Callable[[int], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.app = app
        # back-pressure of the state's writes, awaited between bundles (table_store.room)
        self.room = room
        # the store's reads bound to a bundle's partition while it is applied (table_store)
        self.reading = reading
        self.topic = topic
        self.establishments = establishments
        self.partitions = partitions
        self.pipeline = pipeline
        self.deadletter = deadletter
        self.recomputation = recomputation
        self.recovering = True  # until the table's first recovery has ended
        # per partition: applied offsets contiguous from the first one after a recovery
        self.guard = OffsetGuard()
        self._holes_logged: dict[int, int] = {}
        # FINESS whose event or figures failed: isolated, logged, counted, shown in /health
        self.failing: dict[str, str] = {}
        # The stage's clock (processors.purge): the latest record timestamp applied, never
        # after the wall clock (as the ingest stage's too-late check); per FINESS, when its
        # last purge ran on that clock.
        self.clock: datetime | None = None
        self.purged_at: dict[str, datetime] = {}

    async def agent(self, stream: StreamT[bytes]) -> None:
        event: EventT[bytes]
        async for event in stream.events():
            message = event.message
            expected = self.guard.check(message.partition, message.offset)
            if expected is not None:
                await self._seek_back(message, expected)
                continue
            if event.value == REQUEST and message.key:  # streams/worker/recompute.py
                await self._recompute(message.key.decode())
                self.guard.applied(message.partition, message.offset)
                continue
            try:
                items = decode_bundle(event.value)
            except ValueError as exc:  # only a foreign writer on our internal topic
                error = InvalidRecord(INVALID_JSON, str(exc))
                await self.deadletter(event.value, message.key, error, message)
                continue
            # one pass: the records, their stamps and their FINESS (one, from our ingest)
            events: list[tuple[Event, Any]] = []
            stamps: list[float | None] = []
            finesses: set[str] = set()
            # each FINESS's purge horizon, asked once per bundle (a purge runs after it)
            horizons: dict[str, datetime | None] = {}
            for item, timestamp in items:
                if isinstance(item, Event):  # version 3: decoded as the record
                    record = item
                else:
                    try:
                        built = bundle_record(item)  # validated by the ingest stage
                        if not isinstance(built, Event):
                            raise TypeError("a registry record among the events")
                        record = built
                    except Exception as exc:  # only a foreign writer on our internal topic
                        reason = f"not a validated event: {type(exc).__name__}"
                        await self.deadletter(
                            _dumps(item),
                            message.key,
                            InvalidRecord(INVALID_FIELD, reason),
                            message,
                        )
                        horizons.clear()  # after an await: asked again
                        continue
                finess = record.finess
                if finess in horizons:
                    horizon = horizons[finess]
                else:
                    horizon = horizons[finess] = self.establishments.purge_horizon(finess)
                if horizon is not None:
                    refusal = refused_after_purge(record, horizon)
                    if refusal is not None:
                        await self.deadletter(_letter(item, record), message.key, refusal, message)
                        horizons.clear()
                        continue
                events.append((record, item))
                stamps.append(timestamp)
                finesses.add(finess)
            if self.reading is None:
                failed = self._apply(events, finesses)
            else:
                with self.reading(message.partition):
                    failed = self._apply(events, finesses)
            for finess, item, record, failure in failed:
                error = internal_error(failure)
                log.error("applying an event of %s failed: %s", finess, error.reason)
                await self.deadletter(_letter(item, record), message.key, error, message)
            self.guard.applied(message.partition, message.offset)
            self.pipeline.applied(stamps)
            self._advance_clock(stamps)
            for finess in finesses:
                await self._purge(finess)
            if self.room is not None:
                await self.room()

    def _advance_clock(self, stamps: list[float | None]) -> None:
        known = [stamp for stamp in stamps if stamp]
        if known:
            latest = datetime.fromtimestamp(min(max(known), time.time()), UTC)
            if self.clock is None or latest > self.clock:
                self.clock = latest

    async def _purge(self, finess: str) -> None:
        """Purge an establishment on the stage's clock, if a day of it has passed since its
        last purge; from the agent, while the bundle of that FINESS is the current event."""
        clock = self.clock
        last = self.purged_at.get(finess)
        if clock is None or self.recovering or (last is not None and clock - last < PURGE_EVERY):
            return
        self.purged_at[finess] = clock
        totals: dict[str, int] = {}
        while not self.recovering:  # a rebalance between chunks: the next owner goes on
            result = self.establishments.purge(finess, clock, PURGE_CHUNK)  # flushed
            for kind, count in result.counts.items():
                totals[kind] = totals.get(kind, 0) + count
                self.pipeline.purged.labels(kind).inc(count)
            if result.done:
                break
            await asyncio.sleep(0)  # let the web views and the consumer run between chunks
        horizon = self.establishments.purge_horizon(finess)
        for kind, count in sorted(totals.items()):
            log.info(
                "purged %d %s entries of %s (refusal horizon %s)",
                count, kind, finess, horizon.date().isoformat() if horizon else "none",
            )  # fmt: skip

    async def _recompute(self, finess: str) -> None:
        """One step of an establishment's recomputation, then the request for the next."""
        try:
            more = self.recomputation.run(finess)
        except Exception as exc:  # never expected: its figures stay withheld, it is shown
            self.recomputation.running.pop(finess, None)
            self.failing[finess] = type(exc).__name__
            log.error("recomputing %s failed: %s", finess, type(exc).__name__)
            return
        if more:
            key, value, partition = self.recomputation.request(finess)
            await self.topic.send(key=key, value=value, partition=partition)

    def _apply(
        self, events: list[tuple[Event, Any]], finesses: set[str]
    ) -> list[tuple[str, Any, Event, Exception]]:
        """Merge a bundle (`finesses`: its events' FINESS) and write what it changed:
        synchronous on purpose (no await)."""
        failed = []
        for finess in finesses:
            self.establishments.settle(finess)  # a purge a crash interrupted, finished first
        for record, item in events:
            try:
                self.establishments.apply(record)
            except Exception as exc:  # one event, not the bundle; never expected
                self.failing[record.finess] = type(exc).__name__
                failed.append((record.finess, item, record, exc))
        # One write per changed entry per bundle: its state after the whole bundle.
        self.establishments.flush()
        return failed

    async def _seek_back(self, message: Any, expected: int) -> None:
        """A record the consumer skipped (streams/worker/faust_patch.py): read it again and
        hold the commit below it, never apply past it."""
        self.pipeline.offset_holes.labels(str(message.partition)).inc()
        if self._holes_logged.get(message.partition) != expected:
            self._holes_logged[message.partition] = expected  # once per hole
            log.error(
                "offset hole on %s[%d]: expected %d, got %d; seeking back",
                message.topic, message.partition, expected, message.offset,
            )  # fmt: skip
        await faust_patch.rewind(self.app.consumer, message.tp, expected)

    async def on_partitions_assigned(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """A rebalance may take partitions away without a recovery to follow: drop their
        establishments at once, or two workers would report the same FINESS."""
        assigned = args[0] if args else kwargs.get("assigned", set())
        topic = self.topic.get_topic_name()
        owned = {tp.partition for tp in assigned if tp.topic == topic}
        self.recovering = True
        self.guard.forget(owned)
        self.establishments.retain(self._owned_by(owned))
        self.recomputation.retain(self._owned_by(owned))

    async def on_recover(self) -> None:
        """After recovery (start, restart, rebalance): the aggregates from the table."""
        assigned = self.assigned()
        owned = {tp.partition for tp in assigned}
        for tp in assigned:
            # The first offset delivered after a recovery is Kafka's committed position: Faust's
            # cached committed offsets can be a former generation's (measured: a false hole
            # at offset 1 of a partition another worker had committed to 65).
            self.guard.expect(tp.partition, None)
        units = self.establishments.recover(self._owned_by(owned))
        self.recovering = False
        log.info(
            "recovered %d establishment(s) from %d stored units (partitions %s)",
            len(self.establishments.by_finess), units, sorted(owned),
        )  # fmt: skip
        gc_tuning.after_recovery()  # the recovered state: frozen (a worker's process only)
        for finess in self.recomputation.planned():
            key, value, partition = self.recomputation.request(finess)
            await self.topic.send(key=key, value=value, partition=partition)

    def _owned_by(self, partitions: set[int]) -> Callable[[str], bool]:
        count = self.partitions
        return lambda finess: partition_of(finess, count) in partitions

    def assigned(self) -> set[Any]:
        """The internal topic's partitions this worker owns (none before its consumer starts)."""
        topic = self.topic.get_topic_name()
        try:
            assignment = self.app.consumer.assignment()
        except ConsumerNotStarted:
            return set()
        return {tp for tp in assignment if tp.topic == topic}

    def committed(self) -> dict[Any, int | None]:
        """Faust's committed offsets of this worker's partitions (read at assignment)."""
        return dict(getattr(self.app.consumer, "_committed_offset", {}))

    def current(self) -> list[Establishment]:
        """The establishments whose figures can be shown (the metrics' source)."""
        withheld = self.recomputation.withheld
        return [est for est in self.establishments.all() if not withheld(est.finess)]

    def units(self, finess: str, indicator: str, period: str) -> list[Unit]:
        """The units of one figure of an establishment this worker owns (404 otherwise)."""
        if self.recomputation.withheld(finess):
            raise WorklistError(
                503,
                f"FINESS {finess} is being recomputed under this worker's counting settings: "
                "ask again when /health no longer says recomputing",
            )
        if finess not in self.establishments.by_finess:
            raise WorklistError(
                404,
                f"FINESS {finess} has no figures on this worker: ask the worker that owns it "
                "(its /indicators lists the FINESS)",
            )
        return self.establishments.units(finess, indicator, period)

    def rows(self, finess: str | None = None) -> list[IndicatorRow]:
        """The figures, one establishment's failure never hiding another's."""
        picked = [finess] if finess is not None else list(self.establishments.by_finess)
        picked = [key for key in picked if not self.recomputation.withheld(key)]
        rows: list[IndicatorRow] = []
        for key in picked:
            try:
                rows.extend(self.establishments.rows(key))
            except Exception as exc:
                log.error("the figures of %s failed: %s", key, type(exc).__name__)
                self.failing[key] = type(exc).__name__
        return rows_of(rows)


def _dumps(item: Any) -> bytes:
    """An item of a bundle as JSON, for a dead letter; never raises."""
    try:
        return orjson.dumps(item)
    except TypeError:
        return repr(item).encode()[:1000]


def _letter(item: Any, record: Event) -> bytes:
    """The dead letter of an event of a bundle: its original JSON object (version 1), or its
    record as contract JSON (version 2: which `topics.validation` accepts as the same record;
    fields the contract does not know are not carried by the bundle)."""
    return orjson.dumps(item) if isinstance(item, dict) else orjson.dumps(record)
