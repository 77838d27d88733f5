"""A worker asked to stop exits within its grace period, whatever the brokers' state.

Faust's orderly stop flushes the changelog, commits and leaves the group: with the brokers
gone it can wait for ever (reported: a worker still spinning 25 minutes after SIGTERM in
aiokafka's metadata loop; reproduced: one stuck in Faust's "Wait for streams..." 300 s after
SIGTERM, the broker killed while it caught up, at ~4 % of a core). Orchestrators give 30 s
before SIGKILL: the first SIGTERM or SIGINT, or a crash that stops the worker, arms a timer
of `grace_seconds` (default 25 s); when it fires the worker logs that it could not stop
cleanly and ends the process at once with STOP_TIMEOUT_EXIT. Nothing is lost: what it had
not committed is read again at the next start, and its local state, never marked clean, is
rebuilt as after a crash (streams/worker/local_state.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 25
STOP_GRACE_ENV = "SUNES_STOP_GRACE_SECONDS"
#: The exit status of a worker that did not stop within its grace period.
STOP_TIMEOUT_EXIT = 4


class StopDeadline:
    """Armed once, at the first stop request; ends the process when it expires."""

    def __init__(self, grace_seconds: float, exit_now: Callable[[int], object] = os._exit) -> None:
        self.grace_seconds = grace_seconds
        self._exit_now = exit_now
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is not None:
            return
        log.info("stopping: at most %g s before the worker exits anyway", self.grace_seconds)
        self._timer = threading.Timer(self.grace_seconds, self.expire)
        self._timer.daemon = True  # a clean stop before the deadline ends the process
        self._timer.start()

    def expire(self) -> None:
        log.error(
            "the worker did not stop within %g s (%s; brokers unreachable?): exiting with "
            "status %d; what it had not flushed or committed is replayed at the next start, "
            "its local state checked as after a crash",
            self.grace_seconds, STOP_GRACE_ENV, STOP_TIMEOUT_EXIT,
        )  # fmt: skip
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        self._exit_now(STOP_TIMEOUT_EXIT)
