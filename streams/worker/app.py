"""The worker: the Faust app and its stages, in the order the data flows.

    input topics ─► ingest (plain aiokafka group: validate, bundle per FINESS)
                      ├─► dead-letter topic (original bytes + reason in headers)
                      └─► <app>-events-by-finess (one bundle per FINESS per poll)
    <app>-events-by-finess ─► establishments (Faust agent) ─► facts table (RocksDB on disk,
                                                               changelogged)
    sunes.establishments.v1 ─► registry (every worker reads it all)
    views: /indicators, /metrics (monitoring.collector), /health

At-least-once throughout: the ingest stage commits after its bundles are acknowledged, Faust
commits after the changelog is flushed; the facts merge idempotently and a replay re-derives
what it touches, so a replay after a crash never counts twice. The table holds the facts,
the join indexes and each unit's contribution (processors.state); RAM holds the aggregates,
read back from the stored contributions after every recovery, and a bounded cache.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, cast

import faust
from prometheus_client import CollectorRegistry, disable_created_metrics

from monitoring.collector import IndicatorCollector
from monitoring.pipeline import PipelineMetrics
from processors.collection import Establishments
from streams.access.authenticator import Authenticator
from streams.worker import faust_patch, faust_replay
from streams.worker.config import WorkerConfig
from streams.worker.deadletter import deadletter_headers
from streams.worker.establishments import EstablishmentStage
from streams.worker.expired import ExpiredRecordsCheck, being_cancelled
from streams.worker.ingest import Ingestor
from streams.worker.ingest_process import IngestProcess, IngestProcessDied
from streams.worker.pages.signin import signin
from streams.worker.pages.views import pages
from streams.worker.recompute import Recomputation
from streams.worker.registry import RegistryReader
from streams.worker.release_guard import client_id
from streams.worker.rocksdb_memory import RocksDBMemoryCollector, share_memory
from streams.worker.table_store import ROCKSDB_OPTIONS, TableStore
from streams.worker.views import WORKERS, blueprint
from topics.validation import InvalidRecord

log = logging.getLogger(__name__)

# One series per counter, not a second `_created` one: simpler rules and dashboards.
disable_created_metrics()  # type: ignore[no-untyped-call]


def advertised_host(web_host: str) -> str:
    """Bound to every interface (a container's 0.0.0.0): the others reach it by its host name."""
    return socket.gethostname() if web_host in ("0.0.0.0", "::", "") else web_host


class IngestCancelled(Exception):
    """The ingest stage ended on a CancelledError that was no stop of the worker's."""


class SunesWorker:
    """One worker process: the Faust app, its stages and its metrics."""

    def __init__(self, config: WorkerConfig) -> None:
        faust_patch.apply()  # before the Faust app: see streams/worker/faust_patch.py
        faust_replay.apply()  # fewer Tasks per changelog record: streams/worker/faust_replay.py
        self.config = config
        self.access = Authenticator(config.access)  # who may see what (streams/access)
        self.metrics_registry = CollectorRegistry()
        self.pipeline = PipelineMetrics(self.metrics_registry)
        self.expired = ExpiredRecordsCheck(
            config.bootstrap_servers, config.security, self.metrics_registry
        )
        self.app = self._create_app()
        app = self.app
        self.deadletter_topic = app.topic(config.topics.deadletter, value_serializer="raw")
        self.by_finess = app.topic(
            config.internal_topic,
            internal=True,
            partitions=config.partitions,
            value_serializer="raw",
            key_serializer="raw",
        )
        # bytes → the "raw" codec for the changelog and the store alike (Faust's default is
        # JSON, which cannot read our keys back at recovery).
        self.facts = app.Table(
            "facts",
            key_type=bytes,
            value_type=bytes,
            partitions=config.partitions,
            options=dict(ROCKSDB_OPTIONS) if config.store.startswith("rocksdb") else None,
        )
        rocksdb_options = share_memory(self.facts)  # one RocksDB budget for all partitions
        self.table_store = table_store = TableStore(self.facts)
        table_store.flush_at_stop()  # before the clean mark: streams/worker/local_state.py
        self.establishments = Establishments(config.rules, table_store, config.cache_entries)
        self.ingestor: Ingestor | IngestProcess
        if config.ingest == "process":  # off the main thread: streams/worker/ingest_process.py
            self.ingestor = IngestProcess(
                config, self.by_finess.get_topic_name(), self.pipeline, self.expired
            )
        else:
            self.ingestor = Ingestor(
                config, self.by_finess.get_topic_name(), self.pipeline, config.client_overrides,
                self.expired,
            )  # fmt: skip
        self.ingest_failure: str | None = None  # why the ingest stage ended (the worker stops)
        # Its ingest stage is due: set at the first assignment (before the table's recovery
        # ends) and when its task begins; then `starting` until the stage reads. Not at the
        # task's start alone: between the recovery's end and the task's first step /health
        # said `ok` before anything read (a test polling /health caught it).
        self.ingest_due = False
        self.recomputation = Recomputation(
            self.establishments, config.partitions, self.metrics_registry
        )
        self.stage = EstablishmentStage(
            app, self.by_finess, self.establishments, config.partitions, self.pipeline,
            self.deadletter, self.recomputation, table_store.room, table_store.reading,
        )  # fmt: skip
        self.registry = RegistryReader(config, self.establishments)
        self.facts.on_recover(self.stage.on_recover)
        # mode types the handler more narrowly than it calls it (sender, assigned, signal=)
        app.on_partitions_assigned.connect(cast(Any, self._on_partitions_assigned))
        app.task(self._run_ingest)
        app.agent(self.by_finess, name="establishments")(self.stage.agent)
        app.task(self.registry.run)
        WORKERS[app] = self
        app.web.blueprints.add("", blueprint)
        app.web.blueprints.add("", pages)  # the pages for people (/ui/)
        app.web.blueprints.add("", signin)
        # Not in metrics_registry: /metrics joins its kept text (views.Metrics)
        self.indicators = IndicatorCollector(self.stage.current, self.ingestor.lag)
        if rocksdb_options is not None:
            self.metrics_registry.register(RocksDBMemoryCollector(self.facts, rocksdb_options))

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
            # the URL the other workers forward a FINESS's pages to (streams/worker/pages)
            canonical_url=c.web_url or f"http://{advertised_host(c.web_host)}:{c.web_port}",
            web_in_thread=False,
            # Group joins in seconds, not 30 s (6 s is Kafka's minimum session timeout).
            broker_session_timeout=6.0,
            # which formats it writes: a worker of another release waits for it to leave
            broker_client_id=client_id("agent"),  # streams/worker/release_guard.py
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

    async def _run_ingest(self) -> None:
        """A worker whose ingest stage died would serve stale figures forever: stop it
        instead, so that its supervisor restarts it (and the pipeline alert says so)."""
        self.ingest_due = True
        try:
            await self.ingestor.run()
        except asyncio.CancelledError:
            if being_cancelled():
                raise  # the worker stops
            # passed on by a client, not a stop of ours: the stage ended all the same
            await self._ingest_failed(IngestCancelled("a CancelledError passed on by a client"))
        except Exception as exc:
            await self._ingest_failed(exc)

    async def _ingest_failed(self, exc: Exception) -> None:
        # IngestProcessDied's message is ours (pid, status); another's may hold data
        why = (
            str(exc) if isinstance(exc, IngestProcessDied | IngestCancelled) else type(exc).__name__
        )
        self.ingest_failure = why
        log.critical("the ingest stage failed, stopping the worker: %s", why)
        await self.app.crash(exc)

    async def _on_partitions_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """One receiver, in this order: the stage's bookkeeping (no await: the table's
        recovery must not end before it marks the stage recovering), then the check of the
        internal topic's partitions for records expired unread (awaits Kafka)."""
        self.ingest_due = True
        await self.stage.on_partitions_assigned(sender, *args, **kwargs)
        assigned = args[0] if args else kwargs.get("assigned", set())
        internal = self.by_finess.get_topic_name()
        await self.expired.check(self.app.conf.id, [tp for tp in assigned if tp.topic == internal])

    async def deadletter(
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

    def _status(self) -> str:
        if self.ingest_failure is not None:
            return "ingest_failed"
        if self.ingestor.broker_error is not None:
            return "broker_unreachable"
        if self.stage.recovering:
            return "recovering"
        if self.ingest_due and not self.ingestor.started():
            return "starting"  # the ingest stage is not reading yet (its process starting)
        if self.stage.failing:
            return "failing"
        if self.recomputation.outdated:
            return "recomputing"  # figures withheld: streams/worker/recompute.py
        return "degraded" if self.expired.lost else "ok"

    def health(self) -> dict[str, Any]:
        stage = self.stage
        assigned = sorted(stage.assigned())
        committed = stage.committed() if assigned else {}
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
                    "applied": stage.guard.last_applied.get(tp.partition),
                }
                for tp in assigned
            },
            "input_partitions": self.ingestor.assigned(),
            "ingest": {
                **(
                    self.ingestor.health()
                    if isinstance(self.ingestor, IngestProcess)
                    else {"mode": "inline"}
                ),
                "failure": self.ingest_failure,
            },
            "registry_loaded": self.registry.loaded.is_set(),
            "establishments": len(self.establishments.by_finess),
            # events counted for a FINESS the registry does not know (no window, no target)
            "unregistered_establishments": len(unregistered),
            "cached_entries": len(self.establishments.cache.entries),
            "failing_establishments": sorted(stage.failing),
            # establishments counted under other settings or an older state version, found
            # at the last recovery: how many, done, left, units derived again
            "recomputing": self.recomputation.health(),
            # records a topic's retention deleted before they were applied (degraded)
            **self.expired.health(),
        }
