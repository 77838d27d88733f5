"""Publishing to the input topics: routing, and an aiokafka producer with periodic flushes.

    async with Publisher("127.0.0.1:9092", client_overrides_for("tansu"),
                         security=security_from_env()) as publisher:
        topic, key = route(record)
        await publisher.send(topic, raw_json, key)
    print(publisher.published)  # acknowledged messages per topic

`send` only queues (aiokafka batches); every `flush_every` messages or `flush_interval`
seconds the producer is flushed and each delivery checked, so a failure surfaces within a
second and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from streams.cli.errors import CliError, Exit
from streams.kafka_clients import BOOTSTRAP_ENV, Security, aiokafka_security
from topics.names import CONTRACT_TOPICS, TopicNames
from topics.records import Record

# Our defaults; a broker's client_overrides() win over them.
DEFAULT_PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",  # the registry and the events must survive a broker failover
    "linger_ms": 10,  # fill batches when publishing fast; imperceptible when paced
    "max_batch_size": 512 * 1024,
    "request_timeout_ms": 30_000,
}
ONE_RECORD_BATCH = 1024  # bytes: a max_batch_size below this holds one event per batch


class PublishError(CliError, RuntimeError):
    """Kafka could not be reached or refused messages; the text says what to check."""

    exit = Exit.KAFKA


def route(record: Record, topics: TopicNames = CONTRACT_TOPICS) -> tuple[str, bytes]:
    """The topic of a record's type and its key, the FINESS (registry records included)."""
    return topics.of_type(record.type), record.finess.encode()


class Publisher:
    def __init__(
        self,
        bootstrap_servers: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        security: Security | None = None,
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
        self.security = security or Security()
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
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            **aiokafka_security(self.security),
            **self.settings,
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:  # OSError: a TLS handshake that failed
            await producer.stop()
            settings = ""
            if self.security.protocol != "PLAINTEXT":
                settings = (
                    f", and the SUNES_TLS* / SUNES_SASL_* settings ({self.security.protocol})"
                )
            raise PublishError(
                f"cannot reach Kafka at {self.bootstrap_servers}: {exc}. Is the broker "
                f"running? Check --brokers (or ${BOOTSTRAP_ENV}){settings}"
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
