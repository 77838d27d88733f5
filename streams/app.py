"""The worker: ingest, repartition by FINESS, join per establishment, expose figures.

    input topics ─► ingest stage (plain aiokafka group: validate, bundle per FINESS)
                      ├─► dead-letter topic (original bytes + reason in headers)
                      └─► <app>-events-by-finess (one bundle per FINESS per poll)
    <app>-events-by-finess ─► establishment agent (Faust) ─► facts table (RocksDB on disk,
                                                                changelogged)
    sunes.establishments.v1 ─► registry reader (every worker reads it all)

At-least-once throughout: the ingest stage commits after its bundles are acknowledged, Faust
commits after the changelog is flushed; the facts merge idempotently, so a replay after a
crash never counts twice. The table holds the facts, the join indexes and each unit's
contribution (processors.state); RAM holds the aggregates, read back from the stored
contributions after every recovery, and a bounded cache.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust
import orjson
from aiokafka import AIOKafkaConsumer
from faust.exceptions import ConsumerNotStarted
from faust.types import EventT, StreamT
from faust.web import Request, Response, View
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)

from monitoring.collector import IndicatorCollector
from monitoring.pipeline import PipelineMetrics
from processors.collection import Establishments
from processors.figures import IndicatorRow, rows_of
from streams import faust_patch
from streams.bundles import MAX_EVENT_BYTES, decode_bundle
from streams.config import WorkerConfig
from streams.deadletter import deadletter_headers, internal_error
from streams.ingest import Ingestor
from streams.kafka_clients import aiokafka_security
from streams.offset_guard import OffsetGuard
from streams.table_store import ROCKSDB_OPTIONS, TableStore, partition_of
from topics import names
from topics.records import EstablishmentRecord, Event, RegistryTombstone
from topics.validation import InvalidRecord, parse_for_topic, trusted_record

log = logging.getLogger(__name__)

# One series per counter, not a second `_created` one: simpler rules and dashboards.
disable_created_metrics()  # type: ignore[no-untyped-call]


class SunesWorker:
    """One worker process: the Faust app, its state and its metrics."""

    def __init__(self, config: WorkerConfig) -> None:
        faust_patch.apply()  # before the Faust app: see streams/faust_patch.py
        self.config = config
        self.metrics_registry = CollectorRegistry()
        self.pipeline = PipelineMetrics(self.metrics_registry)
        self.registry_loaded = asyncio.Event()
        self.recovering = True  # until the table's first recovery has ended
        # per partition of the internal topic: applied offsets contiguous from the committed one
        self.guard = OffsetGuard()
        self._holes_logged: dict[int, int] = {}
        # FINESS whose event or figures failed: isolated, logged, counted, shown in /health
        self.failing: dict[str, str] = {}
        self.app = self._create_app()
        self._define_streams()
        self._define_views()
        self.metrics_registry.register(
            IndicatorCollector(self.establishments.all, self.ingestor.lag)
        )

    def _create_app(self) -> faust.App:
        c = self.config
        credentials: Any = None
        if c.security.sasl_mechanism:
            credentials = faust.SASLCredentials(
                username=c.security.sasl_username,
                password=c.security.sasl_password,
                ssl_context=c.security.ssl_context(),
                mechanism=c.security.sasl_mechanism,
            )
        elif c.security.tls:
            credentials = faust.SSLCredentials(c.security.ssl_context())
        settings: dict[str, Any] = dict(
            broker=c.broker_urls,
            broker_credentials=credentials,
            store=c.store,
            datadir=str(c.data_dir),
            topic_partitions=c.partitions,
            topic_replication_factor=c.replication_factor,
            table_standby_replicas=c.standby_replicas,
            web_bind=c.web_host,
            web_host=c.web_host,
            web_port=c.web_port,
            web_in_thread=False,
            # Group joins in seconds, not 30 s (6 s is Kafka's minimum session timeout).
            broker_session_timeout=6.0,
            broker_heartbeat_interval=1.0,
            consumer_auto_offset_reset="earliest",
            # Changelog writes come in bursts (one per entity per bundle): batch them into
            # fewer produce requests rather than one request per write.
            producer_linger=0.01,
            producer_max_batch_size=1 << 18,
            # A message of the internal topic is a bundle of up to 256 KiB of events: a few
            # buffered per partition keep the agent busy; Faust's default is 4096 messages.
            stream_buffer_maxsize=32,
            key_serializer="raw",
            value_serializer="raw",
            autodiscover=False,
            # Only the product's own views: Faust's would serve the table's stays (patient
            # ids, dates, MSSanté addresses), the assignment and sensor counters unauthenticated.
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
            web_metrics_enabled=False,
        )
        settings.update(c.faust_overrides)
        return faust.App(c.app_id, **settings)

    # --- streams ---------------------------------------------------------------------------

    def _define_streams(self) -> None:
        app = self.app
        self.deadletter_topic = app.topic(names.DEADLETTER, value_serializer="raw")
        self.by_finess = app.topic(
            self.config.internal_topic,
            internal=True,
            partitions=self.config.partitions,
            value_serializer="raw",
            key_serializer="raw",
        )
        # bytes → the "raw" codec for the changelog and the store alike (Faust's default is
        # JSON, which cannot read our keys back at recovery).
        self.facts = app.Table(
            "facts",
            key_type=bytes,
            value_type=bytes,
            partitions=self.config.partitions,
            options=dict(ROCKSDB_OPTIONS) if self.config.store.startswith("rocksdb") else None,
        )
        self.facts.on_recover(self._rebuild_from_table)
        self.establishments = Establishments(
            self.config.rules, TableStore(self.facts), self.config.cache_entries
        )
        # mode types the handler more narrowly than it calls it (sender, assigned, signal=)
        app.on_partitions_assigned.connect(cast(Any, self._on_partitions_assigned))
        self.ingestor = Ingestor(
            self.config,
            self.by_finess.get_topic_name(),
            self.pipeline,
            self.config.client_overrides,
        )
        app.task(self._run_ingest)
        app.agent(self.by_finess, name="establishments")(self._establishments)
        app.task(self._read_registry)

    async def _run_ingest(self) -> None:
        """A worker whose ingest stage died would serve stale figures forever: stop it
        instead, so that its supervisor restarts it (and the pipeline alert says so)."""
        try:
            await self.ingestor.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.critical("the ingest stage failed, stopping the worker: %r", exc)
            await self.app.crash(exc)

    async def _deadletter(
        self, raw: bytes, key: bytes | None, error: InvalidRecord, message: Any
    ) -> None:
        self.pipeline.consumed_invalid(message.topic, error.code)
        await self.deadletter_topic.send(
            key=key,
            value=raw,
            headers=deadletter_headers(error, message.topic, message.partition, message.offset),
        )
        log.warning(
            "dead-lettered %s[%d]@%d: %s",
            message.topic, message.partition, message.offset, error.reason,
        )  # fmt: skip

    async def _establishments(self, stream: StreamT[bytes]) -> None:
        event: EventT[bytes]
        async for event in stream.events():
            message = event.message
            expected = self.guard.check(message.partition, message.offset)
            if expected is not None:
                # A record the consumer skipped (streams/faust_patch.py): read it again and
                # hold the commit below it, never apply past it.
                self.pipeline.offset_holes.labels(str(message.partition)).inc()
                if self._holes_logged.get(message.partition) != expected:
                    self._holes_logged[message.partition] = expected  # once per hole
                    log.error(
                        "offset hole on %s[%d]: expected %d, got %d; seeking back",
                        message.topic, message.partition, expected, message.offset,
                    )  # fmt: skip
                await faust_patch.rewind(self.app.consumer, message.tp, expected)
                continue
            try:
                items = decode_bundle(event.value)
            except ValueError as exc:  # only a foreign writer on our internal topic
                await self._deadletter(
                    event.value, message.key, InvalidRecord("invalid_json", str(exc)), message
                )
                continue
            events: list[Event] = []
            stamps: list[float | None] = []
            originals: list[Any] = []
            for obj, timestamp in items:
                try:
                    record = trusted_record(obj)  # validated by the ingest stage
                    if not isinstance(record, Event):
                        raise TypeError("a registry record among the events")
                except Exception as exc:  # only a foreign writer on our internal topic
                    error = InvalidRecord(
                        "invalid_field", f"not a validated event: {type(exc).__name__}"
                    )
                    await self._deadletter(orjson.dumps(obj), message.key, error, message)
                    continue
                events.append(record)
                stamps.append(timestamp)
                originals.append(obj)
            # No await from here to the flush: a rebalance callback never sees half a bundle.
            failed = []
            for record, obj in zip(events, originals, strict=True):
                try:
                    self.establishments.apply(record)
                except Exception as exc:  # one event, not the bundle; never expected
                    self.failing[record.finess] = type(exc).__name__
                    failed.append((record.finess, obj, exc))
            # One write per changed entry per bundle: its state after the whole bundle.
            self.establishments.flush()
            for finess, obj, failure in failed:
                error = internal_error(failure)
                log.error("applying an event of %s failed: %s", finess, error.reason)
                await self._deadletter(orjson.dumps(obj), message.key, error, message)
            self.guard.applied(message.partition, message.offset)
            for timestamp in stamps:
                self.pipeline.applied(timestamp)

    async def _on_partitions_assigned(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """A rebalance may take partitions away without a recovery to follow: drop their
        establishments at once, or two workers would report the same FINESS."""
        assigned = args[0] if args else kwargs.get("assigned", set())
        topic = self.by_finess.get_topic_name()
        owned = {tp.partition for tp in assigned if tp.topic == topic}
        self.recovering = True
        self.guard.forget(owned)
        self.establishments.retain(self._owned_by(owned))

    async def _rebuild_from_table(self) -> None:
        """After recovery (start, restart, rebalance): derive everything from the table."""
        assigned = self._assigned()
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

    def _committed(self) -> dict[Any, int | None]:
        """Faust's committed offsets of this worker's partitions (read at assignment)."""
        return dict(getattr(self.app.consumer, "_committed_offset", {}))

    def _owned_by(self, partitions: set[int]) -> Any:
        count = self.config.partitions
        return lambda finess: partition_of(finess, count) in partitions

    async def _read_registry(self) -> None:
        """Read the whole compacted registry topic, then follow it (no consumer group)."""
        consumer = AIOKafkaConsumer(
            names.ESTABLISHMENTS,
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
                        self._apply_registry(message.key, message.value)
                if not self.registry_loaded.is_set() and await self._caught_up(consumer):
                    self.registry_loaded.set()
        finally:
            await consumer.stop()

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
        tps = sorted(consumer.assignment())
        if not tps:
            return False
        ends = await consumer.end_offsets(tps)
        return all([await consumer.position(tp) >= ends[tp] for tp in tps])

    def _apply_registry(self, key: bytes | None, raw: bytes | None) -> None:
        """The same judgement as the ingest stage, which dead-letters what is refused here."""
        if raw is not None and len(raw) > MAX_EVENT_BYTES:
            return
        try:
            record = parse_for_topic(raw, names.ESTABLISHMENTS, key)
        except InvalidRecord:
            return
        if isinstance(record, RegistryTombstone):
            self.establishments.delete_registry(record.finess)
        elif isinstance(record, EstablishmentRecord):
            self.establishments.set_registry(record)

    # --- web views -------------------------------------------------------------------------

    def _define_views(self) -> None:
        worker = self

        @self.app.page("/indicators")
        class Indicators(View):
            async def get(self, request: Request) -> Response:
                finess = request.query.get("finess")
                rows = [r.as_json() for r in worker.rows(finess)]
                return self.bytes(orjson.dumps(rows), content_type="application/json")

        @self.app.page("/metrics")
        class Metrics(View):
            async def get(self, request: Request) -> Response:
                # aiohttp wants the charset apart from the content type
                content_type = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
                return self.bytes(
                    generate_latest(worker.metrics_registry), content_type=content_type
                )

        @self.app.page("/health")
        class Health(View):
            async def get(self, request: Request) -> Response:
                body = worker.health()
                status = 200 if body["status"] == "ok" else 503
                return self.bytes(
                    orjson.dumps(body), content_type="application/json", status=status
                )

    def rows(self, finess: str | None = None) -> list[IndicatorRow]:
        """The figures, one establishment's failure never hiding another's."""
        picked = [finess] if finess is not None else list(self.establishments.by_finess)
        rows: list[IndicatorRow] = []
        for key in picked:
            try:
                rows.extend(self.establishments.rows(key))
            except Exception as exc:
                log.error("the figures of %s failed: %s", key, type(exc).__name__)
                self.failing[key] = type(exc).__name__
        return rows_of(rows)

    def _assigned(self) -> set[Any]:
        """The internal topic's partitions this worker owns ([] before its consumer starts)."""
        topic = self.by_finess.get_topic_name()
        try:
            assignment = self.app.consumer.assignment()
        except ConsumerNotStarted:
            return set()
        return {tp for tp in assignment if tp.topic == topic}

    def _status(self) -> str:
        if self.ingestor.broker_error is not None:
            return "broker_unreachable"
        if self.recovering:
            return "recovering"
        return "failing" if self.failing else "ok"

    def health(self) -> dict[str, Any]:
        assigned = sorted(self._assigned())
        committed = self._committed() if assigned else {}
        unregistered = [
            f for f in self.establishments.by_finess if f not in self.establishments.registry
        ]
        return {
            "status": self._status(),
            "broker": self.ingestor.broker_error or "ok",
            # partitions of the internal topic this worker owns (its establishments), with
            # the next offset committed and the last one applied by the establishment agent
            "partitions": [tp.partition for tp in assigned],
            "offsets": {
                str(tp.partition): {
                    "committed": committed.get(tp),
                    "applied": self.guard.last_applied.get(tp.partition),
                }
                for tp in assigned
            },
            "input_partitions": self.ingestor.assigned(),
            "registry_loaded": self.registry_loaded.is_set(),
            "establishments": len(self.establishments.by_finess),
            # events counted for a FINESS the registry does not know (no window, no target)
            "unregistered_establishments": len(unregistered),
            "cached_entries": len(self.establishments.cache.entries),
            "failing_establishments": sorted(self.failing),
        }
