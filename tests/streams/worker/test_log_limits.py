"""The Kafka client's repeated errors are held back: one line per kind and interval."""

from __future__ import annotations

import logging

import pytest

from streams.worker.log_limits import RepeatLimit


def test_repeated_warnings_are_held_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("aiokafka.test-limit")
    limit = RepeatLimit(interval=3600)
    logger.addFilter(limit)
    try:
        with caplog.at_level(logging.INFO, logger="aiokafka.test-limit"):
            for _ in range(190):
                logger.error("Unable connect to node with id %s", 1)
            logger.error("another kind of error")
            logger.info("informational lines pass")
            logger.info("informational lines pass")
        messages = [r.getMessage() for r in caplog.records]
        assert messages == [
            "Unable connect to node with id 1",
            "another kind of error",
            "informational lines pass",
            "informational lines pass",
        ]
        limit.interval = 0  # the interval is over: the next one says how many were held
        logger.error("Unable connect to node with id %s", 1)
        assert "(189 more like this" in caplog.records[-1].getMessage()
    finally:
        logger.removeFilter(limit)
