"""Apache Kafka in a Docker container (the official apache/kafka image), via testcontainers.

Used only where a Docker engine answers (`docker_answers()`). A plain DockerContainer is
configured with KAFKA_* variables rather than testcontainers' KafkaContainer, which runs
Confluent images only. The container's 9092 is bound to a free host port, and the broker
advertises 127.0.0.1:<that port>, so clients on this machine reach it directly.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from streams.brokers._common import (
    LOG_TAIL_LINES,
    BrokerError,
    BrokerSetupError,
    BrokerStartError,
    ContextManagerMixin,
    free_port,
    wait_until_ready,
)
from streams.brokers.apache_kafka import DEFAULT_KAFKA_VERSION, new_cluster_id

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

log = logging.getLogger(__name__)

#: Same Kafka as the Maven-jar broker, so both kinds behave alike.
DEFAULT_IMAGE = f"apache/kafka:{DEFAULT_KAFKA_VERSION}"
IMAGE_ENV = "SUNES_KAFKA_IMAGE"


def docker_answers(timeout: int = 2) -> bool:
    """Whether a Docker engine answers a ping within timeout seconds (False if no client)."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout)
    except Exception:  # no socket, no DOCKER_HOST, bad TLS settings...: no engine for us
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


class KafkaContainerBroker(ContextManagerMixin):
    """One Apache Kafka KRaft node in a container; `kill()` then `start()` keeps the data."""

    kind = "testcontainers"

    def __init__(
        self,
        *,
        image: str | None = None,
        num_partitions: int = 1,
        start_timeout: float = 180.0,  # the first run pulls the image
    ) -> None:
        self.image = image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
        self.num_partitions = num_partitions
        self.start_timeout = start_timeout
        self._container: DockerContainer | None = None
        self._port = 0

    @property
    def bootstrap_servers(self) -> str:
        if not self._port:
            raise BrokerError("the Kafka container has not been started: call start() first")
        return f"127.0.0.1:{self._port}"

    def client_overrides(self) -> dict[str, Any]:
        return {}

    def faust_settings(self) -> dict[str, Any]:
        return {}

    @property
    def running(self) -> bool:
        return self._container is not None and self._why_dead() is None

    def _environment(self) -> dict[str, str]:
        return {
            # The image formats its storage itself, and insists on a cluster id in KRaft mode.
            "CLUSTER_ID": new_cluster_id(),
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{self._port}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "KAFKA_LOG_DIRS": "/tmp/kraft-combined-logs",
            "KAFKA_NUM_PARTITIONS": str(self.num_partitions),
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
            # One node: every replication factor and min ISR must be 1.
            "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
            "KAFKA_MIN_INSYNC_REPLICAS": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
            "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "4",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            # See apache_kafka.py: the log cleaner needs this much heap to start reliably.
            "KAFKA_HEAP_OPTS": "-Xmx1g -XX:+UseSerialGC",
        }

    def start(self) -> None:
        """Create and start the container (or restart it after kill()), then wait for it."""
        began = time.monotonic()
        if self._container is None:
            try:
                from testcontainers.core.container import DockerContainer
            except ImportError:
                raise BrokerSetupError(
                    "the testcontainers broker needs the testcontainers package: "
                    "pip install -e '.[dev]'"
                ) from None
            self._port = free_port()
            container = DockerContainer(self.image)
            container.with_bind_ports(9092, self._port)
            for key, value in self._environment().items():
                container.with_env(key, value)
            try:
                container.start()
            except Exception as exc:
                self._port = 0
                raise BrokerStartError(
                    f"could not start a {self.image} container: {exc}. Is the Docker engine "
                    "running, and can it pull the image?"
                ) from exc
            self._container = container
        else:
            wrapped = self._container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status == "running":
                raise BrokerError(f"the Kafka container already runs on {self.bootstrap_servers}")
            wrapped.start()
        reason = wait_until_ready(self.bootstrap_servers, self.start_timeout, self._why_dead)
        if reason is not None:
            message = (
                f"the {self.image} container did not become ready on "
                f"{self.bootstrap_servers}: {reason}\n--- last lines of its log ---\n"
                f"{self.log_tail()}"
            )
            self.stop()
            raise BrokerStartError(message)
        log.info(
            "Kafka container %s ready on %s in %.1f s",
            self.image,
            self.bootstrap_servers,
            time.monotonic() - began,
        )

    def stop(self) -> None:
        """Remove the container (and its data)."""
        if self._container is not None:
            try:
                self._container.stop()
            finally:
                self._container = None

    def kill(self) -> None:
        """SIGKILL the broker; the container (and its data) stays for a later start()."""
        if self._container is not None:
            wrapped = self._container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status == "running":
                wrapped.kill()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self._container is None:
            return "(no container)"
        try:
            raw = self._container.get_wrapped_container().logs(tail=lines)
        except Exception as exc:
            return f"(cannot read the container's log: {exc})"
        return bytes(raw).decode("utf-8", errors="replace")

    def _why_dead(self) -> str | None:
        if self._container is None:
            return "the container was not started"
        wrapped = self._container.get_wrapped_container()
        try:
            wrapped.reload()
        except Exception as exc:
            return f"the container is gone: {exc}"
        if wrapped.status in ("exited", "dead"):
            return f"the container {wrapped.status}"
        return None
