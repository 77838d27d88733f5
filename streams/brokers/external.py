"""A Kafka broker that already runs elsewhere, named by $KAFKA_BOOTSTRAP_SERVERS.

It is not ours: `start()` only checks that it answers, `stop()` leaves it running, and
`kill()` is refused.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from streams.brokers._common import (
    BrokerSetupError,
    BrokerStartError,
    BrokerUnsupportedError,
    ContextManagerMixin,
    split_bootstrap,
    wait_until_ready,
)
from streams.kafka_clients import BOOTSTRAP_ENV as BOOTSTRAP_ENV  # re-exported by streams.brokers

log = logging.getLogger(__name__)


class ExternalBroker(ContextManagerMixin):
    """A running broker; bootstrap_servers defaults to $KAFKA_BOOTSTRAP_SERVERS."""

    kind = "external"

    def __init__(
        self, bootstrap_servers: str | None = None, *, start_timeout: float = 30.0
    ) -> None:
        value = (bootstrap_servers or os.environ.get(BOOTSTRAP_ENV, "")).strip()
        if not value:
            raise BrokerSetupError(
                f"{BOOTSTRAP_ENV} is not set: set it to the host:port of a running Kafka "
                f"broker (e.g. {BOOTSTRAP_ENV}=127.0.0.1:9092), or pick a broker kind this "
                "project starts itself (apache, tansu, testcontainers)"
            )
        split_bootstrap(value)  # fail now, with the value in the message, if it is malformed
        self._bootstrap_servers = value
        self.start_timeout = start_timeout
        self._started = False

    @property
    def bootstrap_servers(self) -> str:
        return self._bootstrap_servers

    def client_overrides(self) -> dict[str, Any]:
        return {}

    def faust_settings(self) -> dict[str, Any]:
        return {}

    @property
    def running(self) -> bool:
        """Whether start() found the broker answering (and stop() was not called since)."""
        return self._started

    def start(self) -> None:
        """Wait until the broker answers a metadata request."""
        reason = wait_until_ready(self._bootstrap_servers, self.start_timeout)
        if reason is not None:
            raise BrokerStartError(
                f"no Kafka broker answers at {self._bootstrap_servers} (from {BOOTSTRAP_ENV}"
                f" or the caller): {reason}. Is it running, and does it advertise an "
                "address this machine can reach?"
            )
        self._started = True
        log.info("using the Kafka broker at %s", self._bootstrap_servers)

    def stop(self) -> None:
        """Nothing to stop: the broker is not ours; only forget it."""
        self._started = False

    def kill(self) -> None:
        raise BrokerUnsupportedError(
            f"the broker at {self._bootstrap_servers} runs outside this process and cannot "
            "be killed from here; use the apache, tansu or testcontainers kind for "
            "hard-kill scenarios"
        )
