"""Pieces the broker launchers share: errors, free ports, log tails and the readiness probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

#: How many lines of a broker's log an error message carries.
LOG_TAIL_LINES = 40


class BrokerError(RuntimeError):
    """Base of every error raised by the broker launchers."""


class BrokerSetupError(BrokerError):
    """The broker cannot even be tried: a tool, a file or a setting is missing."""


class BrokerStartError(BrokerError):
    """The broker was launched but did not become ready; the message has its log tail."""


class BrokerUnsupportedError(BrokerError):
    """The operation makes no sense for this kind of broker (e.g. killing an external one)."""


class ContextManagerMixin:
    """`with broker:` starts it (unless it runs) and stops it, whatever happens in the block."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> Self:
        # `with start_broker(...) as broker:` enters a broker that already runs.
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalProcessMixin(ContextManagerMixin):
    """A broker that is a child process of ours, with a work directory holding its log."""

    NAME = "broker"  # for logs
    _workdir: Path | None
    _proc: subprocess.Popen[bytes] | None

    @property
    def log_path(self) -> Path | None:
        return self._workdir / "broker.log" if self._workdir else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    @property
    def bootstrap_servers(self) -> str:
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL, as in a crash; start() brings the broker back on the same port."""
        if self._proc is not None and self._proc.poll() is None:
            hard_kill(self._proc)
            log.info("%s on %s killed", self.NAME, self.bootstrap_servers)

    def _stop_at_exit(self) -> None:
        # A test or script that forgets stop() must not leave a broker process behind.
        try:
            self.stop()
        except Exception:
            log.exception("stopping %s at exit failed", self.NAME)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; it may be taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def split_bootstrap(bootstrap_servers: str) -> tuple[str, int]:
    """("host", port) of the first server of a "host:port[,host:port...]" string."""
    first = bootstrap_servers.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        raise BrokerSetupError(
            f"bootstrap servers {bootstrap_servers!r} are not of the form host:port[,host:port]"
        )
    return host.strip("[]") or "127.0.0.1", int(port)


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note saying why there are none."""
    if path is None:
        return "(no log file)"
    try:
        with path.open("rb") as f:
            # Read only the end: a broker log can be large and the tail is what explains a failure.
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"({path} is empty)"


def with_log_tail(message: str, path: Path | None) -> str:
    return f"{message}\n--- last lines of {path} ---\n{log_tail(path)}"


async def _metadata_brokers(bootstrap_servers: str, timeout: float) -> int:
    """Number of brokers a metadata request reports (raises when the request fails)."""
    # Imported here so `import streams.brokers` stays cheap for code that never probes.
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=max(1000, int(timeout * 1000)),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return len(client.cluster.brokers())
    finally:
        await client.close()


def metadata_works(bootstrap_servers: str, timeout: float = 5.0) -> bool:
    """Whether a Kafka metadata request to bootstrap_servers lists at least one broker.

    Runs its own event loop in a thread, so it is safe to call from sync code, from a
    running event loop (pytest-asyncio tests, Faust start-up) and from a thread.
    """
    outcome: list[int | BaseException] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(_metadata_brokers(bootstrap_servers, timeout)))
        except BaseException as exc:  # reported to the caller below, never lost in the thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name="kafka-metadata-probe", daemon=True)
    thread.start()
    thread.join(timeout + 2.0)
    if not outcome:
        return False
    result = outcome[0]
    if isinstance(result, BaseException):
        log.debug("metadata request to %s failed: %r", bootstrap_servers, result)
        return False
    return result > 0


def wait_until_ready(
    bootstrap_servers: str,
    timeout: float,
    why_dead: Callable[[], str | None] = lambda: None,
    poll_interval: float = 0.1,
) -> str | None:
    """Wait until the broker accepts connections and answers a metadata request.

    Returns None when ready, else what went wrong (the broker died, or the timeout passed).
    why_dead() says why the broker can no longer become ready (e.g. its process exited).
    """
    host, port = split_bootstrap(bootstrap_servers)
    deadline = time.monotonic() + timeout
    # A cheap socket check first: the Kafka client logs an error for every refused connection.
    while True:
        dead = why_dead()
        if dead is not None:
            return dead
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"not ready after {timeout:.0f} s"
        if port_open(host, port, timeout=min(0.5, remaining)) and metadata_works(
            bootstrap_servers, timeout=max(1.0, min(2.0, remaining))
        ):
            return None
        time.sleep(poll_interval)


def process_exit_reason(proc: subprocess.Popen[bytes] | None) -> str | None:
    """Why a broker process cannot become ready, or None while it runs."""
    if proc is None:
        return "the broker process was not started"
    code = proc.poll()
    if code is None:
        return None
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"the broker process was killed by {signal.Signals(-code).name}"
    return f"the broker process exited with code {code}"


def terminate(proc: subprocess.Popen[bytes], timeout: float, name: str) -> None:
    """SIGTERM (an orderly shutdown), then SIGKILL if it takes longer than timeout."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0f s of SIGTERM; killing it", name, timeout)
        hard_kill(proc)


def hard_kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap, so no zombie is left behind."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
