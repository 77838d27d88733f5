"""Repeated log lines of the Kafka client, at most one per key and interval.

With the brokers gone, aiokafka logs the same connection error ~190 times a second: the line
that matters drowns, and the log fills the disk. The first line of a kind is kept, then one
per interval with how many were held back.
"""

from __future__ import annotations

import logging
import time

KAFKA_CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.consumer.consumer",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
)


class RepeatLimit(logging.Filter):
    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.interval:.0f} s)"
        return True


def limit_kafka_client_logs(interval: float = 10.0) -> None:
    limit = RepeatLimit(interval)
    for name in KAFKA_CLIENT_LOGGERS:
        logging.getLogger(name).addFilter(limit)
