"""Publishing to the input topics: routing, an aiokafka producer with periodic flushes, topics.

    async with Publisher("127.0.0.1:9092", client_overrides_for("tansu")) as publisher:
        topic, key = route(record)
        await publisher.send(topic, raw_json, key)
    print(publisher.published)  # acknowledged messages per topic

`send` only queues (aiokafka batches); every `flush_every` messages or `flush_interval`
seconds the producer is flushed and each delivery checked, so a failure surfaces within a
second and memory stays bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from streams.worker.config import client_overrides_for
from topics.names import TOPIC_OF_TYPE
from topics.records import Record

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
BROKER_KIND_ENV = "SUNES_BROKER"
BROKER_KINDS = ("kafka", "tansu")

# Our defaults; a broker's client_overrides() win over them.
DEFAULT_PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",  # the registry and the events must survive a broker failover
    "linger_ms": 10,  # fill batches when publishing fast; imperceptible when paced
    "max_batch_size": 512 * 1024,
    "request_timeout_ms": 30_000,
}
ONE_RECORD_BATCH = 1024  # bytes: a max_batch_size below this holds one event per batch


class PublishError(RuntimeError):
    """Kafka could not be reached or refused messages; the text says what to check."""


def route(record: Record) -> tuple[str, bytes]:
    """The topic of a record's type and its key, the FINESS (registry records included)."""
    return TOPIC_OF_TYPE[record.type], record.finess.encode()


class Publisher:
    def __init__(
        self,
        bootstrap_servers: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        flush_every: int = 5000,
        flush_interval: float = 1.0,
        client_id: str = "sunes-publish",
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        overrides = dict(overrides or {})
        self.settings = {**DEFAULT_PRODUCER_SETTINGS, **overrides}
        if self.settings["max_batch_size"] < ONE_RECORD_BATCH and "linger_ms" not in overrides:
            # One record per batch (Tansu): lingering only delays it (measured: 2x slower).
            self.settings["linger_ms"] = 0
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self.client_id = client_id
        self.published: Counter[str] = Counter()  # acknowledged, per topic
        self._pending: list[tuple[str, asyncio.Future[Any]]] = []
        self._last_flush = time.monotonic()
        self._producer: Any = None

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(flush=exc_type is None)

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id, **self.settings
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise PublishError(
                f"cannot reach Kafka at {self.bootstrap_servers}: {exc}. Is the broker "
                f"running? Check --brokers (or ${BOOTSTRAP_ENV})"
            ) from exc
        self._producer = producer

    async def send(self, topic: str, value: bytes, key: bytes | None) -> None:
        """Queue one message; flushes (and raises PublishError on failures) now and then."""
        from aiokafka.errors import KafkaError

        try:
            future = await self._producer.send(topic, value, key=key)
        except KafkaError as exc:
            raise PublishError(f"cannot send to {topic}: {exc!r}") from exc
        self._pending.append((topic, future))
        if (
            len(self._pending) >= self.flush_every
            or time.monotonic() - self._last_flush >= self.flush_interval
        ):
            await self.flush()

    async def flush(self) -> None:
        """Wait until every queued message is acknowledged; count them per topic."""
        await self._producer.flush()
        self._last_flush = time.monotonic()
        pending, self._pending = self._pending, []
        failures = []
        for topic, future in pending:
            error = _delivery_error(future)
            if error is None:
                self.published[topic] += 1
            else:
                failures.append((topic, error))
        if failures:
            topic, error = failures[0]
            raise PublishError(
                f"{len(failures)} message(s) were not acknowledged, e.g. on {topic}: {error!r}"
            )

    async def stop(self, *, flush: bool = True) -> None:
        if self._producer is None:
            return
        try:
            if flush:
                await self.flush()
        finally:
            await self._producer.stop()
            self._producer = None


def _delivery_error(future: asyncio.Future[Any]) -> BaseException | str | None:
    if future.cancelled():
        return "cancelled"
    if not future.done():
        return "not acknowledged after a flush"
    return future.exception()


# --- command-line options shared by `sunes publish` and `sunes simulate` ------------------


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kafka")
    group.add_argument(
        "--brokers",
        metavar="HOST:PORT[,HOST:PORT]",
        help=f"Kafka bootstrap servers [env {BOOTSTRAP_ENV}]",
    )
    group.add_argument(
        "--broker-kind",
        choices=BROKER_KINDS,
        default=None,
        help="tansu: use the producer settings the Tansu broker needs (one record per "
        f"batch, no idempotence) [default: tansu when ${BROKER_KIND_ENV}=tansu, else kafka]",
    )
    group.add_argument(
        "--no-create-topics",
        dest="create_topics",
        action="store_false",
        help="do not create the missing input topics (by default they are created with "
        "the partitions and compaction of topics/names.py)",
    )


def bootstrap_from(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> str | None:
    value: str | None = args.brokers or env.get(BOOTSTRAP_ENV, "").strip() or None
    return value


def overrides_from(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    kind = args.broker_kind or ("tansu" if env.get(BROKER_KIND_ENV) == "tansu" else "kafka")
    return client_overrides_for(kind)
