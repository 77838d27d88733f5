"""The stop deadline: armed once, it ends the process with its own status when it expires.
(A real worker with its broker gone: test_stop_bound_kafka.py.)"""

from __future__ import annotations

import logging
import threading

import pytest

from streams.worker.stop_bound import STOP_TIMEOUT_EXIT, StopDeadline


def test_the_deadline_exits_once_with_its_status(caplog: pytest.LogCaptureFixture) -> None:
    exited: list[int] = []
    done = threading.Event()

    def exit_now(code: int) -> None:
        exited.append(code)
        done.set()

    deadline = StopDeadline(0.1, exit_now)
    with caplog.at_level(logging.INFO):
        deadline.arm()
        deadline.arm()  # a second signal does not restart the clock
        assert done.wait(10)
    assert exited == [STOP_TIMEOUT_EXIT]
    assert "did not stop within 0.1 s" in caplog.text


def test_an_unarmed_deadline_never_exits() -> None:
    exited: list[int] = []
    StopDeadline(0.01, exited.append)
    threading.Event().wait(0.1)
    assert exited == []
