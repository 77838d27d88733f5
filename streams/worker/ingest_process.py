"""The ingest stage in a process of its own (SUNES_INGEST=process, the default).

The worker's main thread is its bottleneck (bench/README.md): the ingest stage, 15 % of it,
runs in a child process, its own interpreter and event loop, so that the main thread only
applies. The child runs the very Ingestor of streams/worker/ingest.py (same consumer group,
same at-least-once: it commits a poll only once the internal topic and the dead letters have
its records); the parent keeps what the worker shows of it true:

- after each poll it committed, and every REPORT_SECONDS (0.5 s), the child sends a Report
  over the pipe: the counts since the last one (events consumed valid/invalid, dead
  letters, last event time), the lag of its partitions, its assignment, the brokers' state
  and the expired-records holes it found. The parent adds them to its PipelineMetrics and ExpiredRecordsCheck: the counts of a poll
  reach /metrics right after its commit (a few ms: its bundles may be applied just before);
  the lag, the assignment and the brokers' state are at most 0.5 s old, plus a poll's
  processing (~60 ms at 5,000 messages). Until the child reports its clients started, the
  worker's /health says `starting` (the worker is not ready: nothing is read yet).
- Lifecycle. The child starts with the worker's ingest task, started fresh (not forked: the
  parent has threads and RocksDB open), with its settings sent explicitly over the pipe and
  the parent's log format and level. A worker's stop asks the child to stop: it finishes the
  poll in hand, commits it and exits (killed after STOP_SECONDS). A child that ends unasked
  is a failure: IngestProcessDied, which the worker logs as critical, shows in /health and
  stops on, so that its supervisor restarts it. A parent that dies (even SIGKILL) takes the
  child with it: PR_SET_PDEATHSIG on Linux, else the pipe's end (the child stops).
- Signals: the child ignores SIGINT and SIGTERM (a terminal's Ctrl-C and systemd's stop reach
  the whole group): its parent stops it, in order.

Run as `python -m streams.worker.ingest_process FD PARENT_PID` by IngestProcess only.
"""

from __future__ import annotations

import asyncio
import contextlib
import copyreg
import ctypes
import io
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields, replace
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from monitoring.pipeline import IngestDeltas, IngestTally, PipelineMetrics
from processors.settings import Settings
from streams.access.config import AccessConfig
from streams.worker.config import WorkerConfig
from streams.worker.expired import Expired, ExpiredRecordsCheck
from streams.worker.ingest import Ingestor
from streams.worker.pages.config import PageConfig

log = logging.getLogger(__name__)

REPORT_SECONDS = 0.5  # the staleness of what the parent shows of the ingest stage, at most
STOP_SECONDS = 10.0  # a stop request's wait for the child to commit and exit, then SIGKILL
ORPHAN_SECONDS = 5.0  # an orphaned child's (no PR_SET_PDEATHSIG) bound to stop in order
_STOP = "stop"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildStart:
    """What the child needs, sent explicitly (spawned, it inherits nothing of the parent)."""

    config: WorkerConfig
    internal_topic: str
    log_level: int
    log_format: str | None
    log_datefmt: str | None


@dataclass(frozen=True)
class Report:
    """The child's ingest stage as the parent shows it (see the module's docstring)."""

    counts: IngestDeltas
    lag: dict[tuple[str, int], int]
    assigned: list[str]
    broker_error: str | None
    holes: list[Expired] = field(default_factory=list)
    started: bool = True  # its clients started, its topics subscribed (Ingestor.started)


@dataclass(frozen=True)
class Failed:
    """The child's ingest stage raised: the exception's type (its message may hold data)."""

    error: str


class IngestProcessDied(Exception):
    """The ingest process ended without being asked to."""


class IngestProcess:
    """The worker's side of the ingest process: starts it, takes its reports, stops it. The
    same surface as an Ingestor for the worker (run, assigned, lag, broker_error)."""

    def __init__(
        self,
        config: WorkerConfig,
        internal_topic: str,
        pipeline: PipelineMetrics,
        expired: ExpiredRecordsCheck,
    ) -> None:
        # the settings the ingest stage needs, not the access secrets of the views
        self.config = replace(config, access=AccessConfig(), pages=PageConfig())
        self.internal_topic = internal_topic
        self.pipeline = pipeline
        self.expired = expired
        self.broker_error: str | None = None
        self.pid: int | None = None
        self.failure: str | None = None  # the child's own report of why it ended
        self._lag: dict[tuple[str, int], int] = {}
        self._assigned: list[str] = []
        self._reported_at: float | None = None  # time.monotonic() of the last report
        self._started = False

    def assigned(self) -> list[str]:
        return list(self._assigned)

    def lag(self) -> dict[tuple[str, int], int]:
        return dict(self._lag)

    def started(self) -> bool:
        """Whether the child reported its clients started (spawned, it takes a few seconds:
        until then the worker is not ready, /health says `starting`)."""
        return self._started

    def health(self) -> dict[str, Any]:
        age = None if self._reported_at is None else time.monotonic() - self._reported_at
        return {
            "mode": "process",
            "pid": self.pid,
            "last_report_seconds": None if age is None else round(age, 1),
        }

    async def run(self) -> None:
        """Start the child and take its reports until it ends. Cancelled (the worker
        stops): ask it to stop, wait for it (STOP_SECONDS at most, then kill it), then
        re-raise. Ended unasked: raise IngestProcessDied."""
        loop = asyncio.get_running_loop()
        ours, theirs = Pipe()
        process = _spawn(theirs)
        theirs.close()
        self.pid = process.pid
        ended: asyncio.Future[None] = loop.create_future()
        try:
            ours.send_bytes(_dumps(self._start_message()))
            loop.add_reader(ours.fileno(), self._receive, ours, ended)
            try:
                await asyncio.shield(ended)
            except asyncio.CancelledError:
                await self._stop(process, ours, ended)
                raise
            code = await _exit_code(process, STOP_SECONDS)
            raise IngestProcessDied(
                f"the ingest process (pid {process.pid}) ended with status {code}"
                + (f" after {self.failure}" if self.failure else "")
            )
        finally:
            if not ended.done():
                loop.remove_reader(ours.fileno())
            ours.close()
            if process.poll() is None:  # a failure of ours, above: not a child left behind
                process.kill()
                process.wait()

    def _start_message(self) -> ChildStart:
        root = logging.getLogger()
        formatter = next((h.formatter for h in root.handlers if h.formatter), None)
        return ChildStart(
            self.config,
            self.internal_topic,
            root.getEffectiveLevel(),
            formatter._fmt if formatter else None,
            formatter.datefmt if formatter else None,
        )

    async def _stop(
        self, process: subprocess.Popen[bytes], ours: Connection, ended: asyncio.Future[None]
    ) -> None:
        try:
            ours.send(_STOP)
            await asyncio.wait_for(asyncio.shield(ended), STOP_SECONDS)
        except (OSError, TimeoutError):
            log.error(
                "the ingest process (pid %d) did not stop within %g s: killed; its last poll "
                "is read again at the next start",
                process.pid, STOP_SECONDS,
            )  # fmt: skip
            process.kill()
        await _exit_code(process, STOP_SECONDS)

    def _receive(self, conn: Connection, ended: asyncio.Future[None]) -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if isinstance(message, Report):
                    self._apply(message)
                elif isinstance(message, Failed):
                    self.failure = message.error
        except (EOFError, OSError):  # the child's end is closed: it ended
            asyncio.get_running_loop().remove_reader(conn.fileno())
            if not ended.done():
                ended.set_result(None)

    def _apply(self, report: Report) -> None:
        self._reported_at = time.monotonic()
        if report.counts:
            self.pipeline.add_ingest(report.counts)
        self._lag = report.lag
        self._assigned = report.assigned
        self._started = report.started
        self.broker_error = report.broker_error
        for hole in report.holes:
            self.expired.adopt(hole)


def _dumps(message: object) -> bytes:
    """Pickled, with the counting rules by their fields: compiled by mypyc, a frozen
    dataclass does not unpickle by its slots (FrozenInstanceError)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, Settings: _reduce_settings}
    pickler.dump(message)
    return buffer.getvalue()


def _reduce_settings(settings: Settings) -> tuple[Any, tuple[dict[str, Any]]]:
    return _settings, ({f.name: getattr(settings, f.name) for f in fields(settings)},)


def _settings(values: dict[str, Any]) -> Settings:
    return Settings(**values)


def _spawn(theirs: Connection) -> subprocess.Popen[bytes]:
    """A fresh interpreter running this module's main, the pipe's other end its only extra
    file; stdout and stderr the worker's own (one log stream)."""
    root = str(Path(__file__).resolve().parents[2])  # where `streams` is importable from
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    fd = theirs.fileno()
    # -P: `-m` would put the working directory first on sys.path, before PYTHONPATH: a worker
    # started from another checkout's directory (a bench comparing builds, an operator in a
    # repository) had its ingest process run that checkout's code, not its own.
    command = [sys.executable, "-P", "-m", __name__, str(fd), str(os.getpid())]
    return subprocess.Popen(command, pass_fds=(fd,), env=env, stdin=subprocess.DEVNULL)


async def _exit_code(process: subprocess.Popen[bytes], timeout: float) -> int:
    """The child's exit status once it ended (killed after `timeout`), without blocking."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            return process.wait()
        await asyncio.sleep(0.05)
    return process.returncode


# --- the child --------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    fd, parent = int(argv[0]), int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # its parent stops it, in order
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(parent)
    conn = Connection(fd)
    start: ChildStart = pickle.loads(conn.recv_bytes())
    _log_like_the_worker(start)
    from streams.worker.log_limits import limit_kafka_client_logs

    limit_kafka_client_logs()
    try:
        import uvloop  # as the worker's loop: streams/cli/worker.py
    except ImportError:
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(_serve(conn, start))
    except Exception as exc:  # its traceback, as the worker's crash logs one (inline)
        log.critical("the ingest process failed: %s", type(exc).__name__, exc_info=True)
        _send(conn, Failed(type(exc).__name__))
        return 1
    return 0


def _log_like_the_worker(start: ChildStart) -> None:
    """The worker's format and level, on the same stream (stderr, inherited). Fields of the
    worker's own formatter (Faust's: log_color, extra) that a plain record lacks print empty."""
    fmt = start.log_format or logging.BASIC_FORMAT
    plain = vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
    defaults = {name: "" for name in re.findall(r"%\((\w+)\)", fmt) if name not in plain}
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(fmt, start.log_datefmt, defaults=defaults))
    logging.basicConfig(level=start.log_level, handlers=[handler])


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the parent dies (Linux): a child left behind would hold the ingest
    group's partitions for a worker that is gone. Nothing is lost: what it had acked but not
    committed is read again by the next owner."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the pipe's end stops the child (_serve)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


async def _serve(conn: Connection, start: ChildStart) -> None:
    config = start.config
    tally = IngestTally()
    expired = ExpiredRecordsCheck(config.bootstrap_servers, config.security, CollectorRegistry())
    ingestor = Ingestor(config, start.internal_topic, tally, config.client_overrides, expired)
    loop = asyncio.get_running_loop()

    def on_message() -> None:
        try:
            while conn.poll():
                if conn.recv() == _STOP:
                    ingestor.stop()
        except (EOFError, OSError):  # the worker is gone (without PR_SET_PDEATHSIG)
            loop.remove_reader(conn.fileno())
            log.error("the worker is gone: the ingest process stops")
            ingestor.stop()
            loop.call_later(ORPHAN_SECONDS, os._exit, 1)

    loop.add_reader(conn.fileno(), on_message)
    ingestor.after_poll = lambda: _send(conn, _report(ingestor, tally, expired))
    reports = asyncio.create_task(_report_every(conn, ingestor, tally, expired))
    try:
        await ingestor.run()
    finally:
        reports.cancel()
        _send(conn, _report(ingestor, tally, expired))  # the last poll's counts


async def _report_every(
    conn: Connection, ingestor: Ingestor, tally: IngestTally, expired: ExpiredRecordsCheck
) -> None:
    while True:
        await asyncio.sleep(REPORT_SECONDS)
        _send(conn, _report(ingestor, tally, expired))


def _report(ingestor: Ingestor, tally: IngestTally, expired: ExpiredRecordsCheck) -> Report:
    return Report(
        tally.take(),
        ingestor.lag(),
        ingestor.assigned(),
        ingestor.broker_error,
        expired.holes(),
        ingestor.started(),
    )


def _send(conn: Connection, message: object) -> None:
    with contextlib.suppress(OSError):  # the worker is gone: nobody to tell
        conn.send(message)


if __name__ == "__main__":
    # main of the module under its own name, not __main__'s copy: what it pickles (Report)
    # must unpickle in the worker as streams.worker.ingest_process's classes
    from streams.worker import ingest_process

    sys.exit(ingest_process.main(sys.argv[1:]))
