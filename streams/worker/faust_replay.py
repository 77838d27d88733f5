"""Monkeypatches: Faust replays a changelog with a few asyncio Tasks per record; fewer.

Why (faust-streaming 0.15.3, mode-streaming, the pinned versions; py-spy of a worker
rebuilding a lost store, bench/README.md "Restart"): the main thread is busy all along and
RocksDB is not the cost.  Each changelog record is handed over by

  ``Consumer._drain_messages``: ``await self.wait_first(callback(message),
  self.suspend_flow.wait())``, and mode's ``Service.wait_first`` wraps each argument, and
  the service's ``stopped`` and ``crashed`` events, in a Task (four per record), waits on
  them with ``asyncio.wait``, then cancels three;
  the conductor's ``on_message`` puts the record into the changelog queue, sized by
  ``stream_buffer_maxsize`` (32 in the worker, for bundles): once it is full, each put is
  one more Task and ``asyncio.wait``;
  ``Recovery._slurp_changelogs`` takes each record with ``asyncio.wait_for(queue.get(),
  timeout=5.0)``: a Task and a timer per record, even when the queue holds records.

The fix, four narrow patches that change what runs, not what happens:
  a. ``Consumer.wait_first`` (the consumer only; its one call with two coroutines is the
     drain's): the callback's first step is run at once; when it completes there (the
     usual case: the record is queued without waiting), its result is returned without a
     Task; when it suspends, the started coroutine goes on inside a Task and the original
     ``wait_first`` waits on it as before (the flow's suspension still cancels it).  Taken
     only while the flow is active and the service neither stopped nor crashed, i.e. when
     the original would return the callback as the one winner too.
  b. ``TableManager.changelog_queue``: sized max(stream_buffer_maxsize, 4096) -- 4096 is
     Faust's default ``stream_buffer_maxsize`` -- so the conductor queues a fetch's
     records without waiting and the recovery takes them in runs.  The queue is still
     cleared on the flow's resume after a rebalance, as before; what it holds for one
     partition is always the next records of its changelog, in order.
  c. ``faust.tables.recovery``'s ``asyncio.wait_for``: when it is given the changelog
     queue's ``get()`` and the queue is not empty, the ``get()`` is awaited directly (it
     returns at once); otherwise (an empty queue: the 5 s timeout ends a recovery) the real
     ``asyncio.wait_for``.
  d. ``Recovery.need_recovery``, called after each record: the same answer without
     building ``active_remaining()``'s ``Counter`` of every partition (11 % of the
     samples once a-c were in).
Every record still goes through Faust's own code (the conductor, the recovery's offsets,
buffers, ``apply_changelog_batch`` and persisted offsets, standbys), in the same order.

``apply()`` checks the versions and raises ``RuntimeError`` for any other, like
streams/worker/faust_patch.py: re-check the four places above on upgrade.

Tests: tests/streams/worker/test_faust_replay.py (each patch against the original, on
Faust's real classes), and the worker's recovery tests over Apache Kafka.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Generator
from typing import Any

from faust.tables import recovery as faust_recovery
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from mode.services import Service, WaitResults
from mode.utils.queues import ThrowableQueue

from streams.worker import faust_patch

CHANGELOG_QUEUE_MAXSIZE = 4096  # Faust's default stream_buffer_maxsize

_originals: dict[str, Any] = {}


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_originals)


def apply() -> None:
    """Patch Faust's changelog replay path (idempotent); call before creating the app."""
    if _originals:
        return
    installed = faust_patch._installed_versions()
    if installed != faust_patch.PINNED_VERSIONS:
        raise RuntimeError(
            f"streams.worker.faust_replay was written for {faust_patch.PINNED_VERSIONS}, "
            f"found {installed}: re-check Consumer._drain_messages' wait_first, "
            "TableManager.changelog_queue, Recovery._slurp_changelogs' wait_for and "
            "Recovery.need_recovery against the installed Faust before changing the pins"
        )
    _originals["wait_first"] = Consumer.__dict__.get("wait_first")
    _originals["changelog_queue"] = TableManager.__dict__["changelog_queue"]
    _originals["asyncio"] = vars(faust_recovery)["asyncio"]
    _originals["need_recovery"] = Recovery.need_recovery
    Consumer.wait_first = _wait_first  # type: ignore[method-assign]
    TableManager.changelog_queue = property(_changelog_queue)  # type: ignore[assignment,method-assign]
    setattr(faust_recovery, "asyncio", _RecoveryAsyncio())  # noqa: B010 (not exported)
    Recovery.need_recovery = _need_recovery  # type: ignore[method-assign]


def revert() -> None:
    """Undo :func:`apply` (for tests); a no-op when not applied."""
    if not _originals:
        return
    if _originals["wait_first"] is None:
        del Consumer.wait_first
    else:
        Consumer.wait_first = _originals["wait_first"]  # type: ignore[method-assign]
    TableManager.changelog_queue = _originals["changelog_queue"]  # type: ignore[method-assign]
    setattr(faust_recovery, "asyncio", _originals["asyncio"])  # noqa: B010
    Recovery.need_recovery = _originals["need_recovery"]  # type: ignore[method-assign]
    _originals.clear()


# --- a. the consumer's wait_first ------------------------------------------------------------


class _Started:
    """Goes on, inside a Task, with a coroutine already stepped once that yielded `yielded`
    (what ``yield from`` does: each value sent or exception thrown is passed on)."""

    def __init__(self, coro: Any, yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the Task: passed on
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _go_on(started: _Started) -> Any:
    return await started


async def _wait_first(self: Any, *coros: Any, timeout: Any = None) -> WaitResults:
    original = Service.wait_first
    if not (
        len(coros) == 2
        and timeout is None
        and asyncio.iscoroutine(coros[0])
        and asyncio.iscoroutine(coros[1])
        and not self.suspend_flow.is_set()
        and not self._stopped.is_set()
        and not self._crashed.is_set()
    ):
        return await original(self, *coros, timeout=timeout)
    callback, other = coros
    try:
        yielded = callback.send(None)
    except StopIteration as done:
        other.close()  # never started: closed so that it is not reported as never awaited
        return WaitResults([callback], [done.value], False)
    except BaseException:
        other.close()
        raise  # as the original's ``f.result()`` raises the callback's exception
    going_on = _go_on(_Started(callback, yielded))
    results: WaitResults = await original(self, going_on, other)
    # the callback, not its wrapper, among the winners (as the original reports it)
    return results._replace(done=[callback if c is going_on else c for c in results.done])


# --- b. the changelog queue's size ---------------------------------------------------------


def _changelog_queue(self: Any) -> ThrowableQueue[Any]:
    """TableManager.changelog_queue, sized for changelog records rather than bundles."""
    if self._changelog_queue is None:
        self._changelog_queue = self.app.FlowControlQueue(
            maxsize=max(self.app.conf.stream_buffer_maxsize, CHANGELOG_QUEUE_MAXSIZE),
            clear_on_resume=True,
        )
    return self._changelog_queue  # type: ignore[no-any-return]


# --- c. the recovery's wait_for --------------------------------------------------------------

_QUEUE_GET = ThrowableQueue.get.__code__


class _RecoveryAsyncio:
    """``asyncio`` as faust.tables.recovery sees it: the module, but for ``wait_for``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def wait_for(aw: Any, timeout: float | None) -> Any:
        if isinstance(aw, types.CoroutineType) and aw.cr_code is _QUEUE_GET:
            queue = inspect.getcoroutinelocals(aw)["self"]
            if not queue.empty():
                return await aw  # returns at once: no Task, no timer
        return await asyncio.wait_for(aw, timeout)


# --- d. need_recovery ----------------------------------------------------------------------


def _need_recovery(self: Any) -> bool:
    """Whether an active partition has records left: ``any(v > 0 for v in
    self.active_remaining().values())`` without the Counter (``active_offsets`` is a
    Counter: a partition missing from it reads 0, as there)."""
    offsets = self.active_offsets
    for tp, highwater in self.active_highwaters.items():
        if highwater is not None:
            offset = offsets[tp]
            if offset is not None and highwater - offset > 0:
                return True
    return False
