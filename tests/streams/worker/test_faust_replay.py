"""streams.worker.faust_replay: the same results as Faust's own code, with fewer Tasks.

Each patch runs on Faust's real classes (an app's real, unstarted consumer; the app's
changelog queue; faust.tables.recovery's ``asyncio``), patched and not: what it returns,
raises or cancels is the same both ways, and the patched one creates no Task where the
original creates one or more per record. The replay itself, end to end over Apache Kafka
(a worker restarted after a kill rebuilds its table from the changelog), is run by
test_worker_orders.py (scale-out) and test_faults_kafka.py.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
import warnings
from collections import Counter
from collections.abc import Coroutine, Iterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.tables import recovery as faust_recovery
from faust.tables.recovery import Recovery
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from streams.worker import faust_patch, faust_replay

MODES = ["unpatched", "patched"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    was_applied = faust_replay.is_applied()
    if request.param == "patched":
        faust_replay.apply()
    else:
        faust_replay.revert()
    yield request.param
    if was_applied:
        faust_replay.apply()
    else:
        faust_replay.revert()


@pytest.fixture
def app() -> faust.App:
    return faust.App(
        f"faust-replay-{uuid.uuid4().hex}", broker="kafka://127.0.0.1:1", stream_buffer_maxsize=32
    )


class TaskCount:
    """Counts the Tasks the loop creates (its task factory)."""

    def __init__(self) -> None:
        self.created = 0
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            self.created += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)

    def close(self) -> None:
        asyncio.get_running_loop().set_task_factory(None)


async def _queued(record: str) -> str:
    """A callback that completes at once (the conductor queues a record)."""
    return record


def _drain_call(consumer: Any, callback: Coroutine[Any, Any, Any]) -> Any:
    """What Consumer._drain_messages awaits for each record."""
    return consumer.wait_first(callback, consumer.suspend_flow.wait())


# --- a. the consumer's wait_first ------------------------------------------------------------


async def test_a_callback_that_completes_at_once(mode: str, app: faust.App) -> None:
    consumer = app.consumer
    tasks = TaskCount()
    try:
        callback = _queued("r1")
        result = await _drain_call(consumer, callback)
    finally:
        tasks.close()
    assert (result.done, result.results, result.stopped) == ([callback], ["r1"], False)
    # the original wraps the callback, the flow's wait, stopped and crashed: 4 Tasks
    assert tasks.created == (0 if mode == "patched" else 4)


async def test_a_callback_that_waits_goes_on_in_a_task(mode: str, app: faust.App) -> None:
    consumer = app.consumer
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[str] = loop.create_future()
    steps: list[str] = []

    async def callback() -> str:
        steps.append("first")
        got = await gate  # the queue is full: the conductor waits for room
        steps.append(got)
        await asyncio.sleep(0)  # a bare yield, passed through as well
        return got + "!"

    coro = callback()
    waiting = asyncio.ensure_future(_drain_call(consumer, coro))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert steps == ["first"] and not waiting.done()
    gate.set_result("room")
    result = await waiting
    assert steps == ["first", "room"]
    assert (result.done, result.results, result.stopped) == ([coro], ["room!"], False)


async def test_an_error_in_the_callback_propagates(mode: str, app: faust.App) -> None:
    consumer = app.consumer
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()

    async def at_once() -> None:
        raise ValueError("at once")

    async def later() -> None:
        await gate
        raise ValueError("later")

    with pytest.raises(ValueError, match="at once"):
        await _drain_call(consumer, at_once())
    waiting = asyncio.ensure_future(_drain_call(consumer, later()))
    await asyncio.sleep(0)
    gate.set_result(None)
    with pytest.raises(ValueError, match="later"):
        await waiting
    # an exception thrown into the waiting callback reaches it
    failing: asyncio.Future[None] = loop.create_future()

    async def awaits_a_failure() -> str:
        try:
            await failing
        except KeyError:
            return "caught"
        return "not reached"

    waiting = asyncio.ensure_future(_drain_call(consumer, awaits_a_failure()))
    await asyncio.sleep(0)
    failing.set_exception(KeyError("x"))
    assert (await waiting).results == ["caught"]


async def test_a_flow_suspended_while_the_callback_waits_cancels_it(
    mode: str, app: faust.App
) -> None:
    consumer = app.consumer
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    seen: list[str] = []

    async def callback() -> None:
        seen.append("first")
        try:
            await never
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    coro = callback()
    flow_wait = consumer.suspend_flow.wait()
    waiting = asyncio.ensure_future(consumer.wait_first(coro, flow_wait))
    await asyncio.sleep(0)
    consumer.suspend_flow.set()  # a rebalance: Consumer.stop_flow
    result = await waiting
    await asyncio.sleep(0)
    assert result.done == [flow_wait] and not result.stopped
    assert seen == ["first", "cancelled"]


async def test_a_suspended_flow_takes_the_original_path(mode: str, app: faust.App) -> None:
    consumer = app.consumer
    consumer.suspend_flow.set()
    tasks = TaskCount()
    try:
        result = await _drain_call(consumer, _queued("r"))
    finally:
        tasks.close()
    assert result.results and not result.stopped
    assert tasks.created == 4  # patched or not: the flow's state is the original's to read


async def test_no_coroutine_is_left_never_awaited(mode: str, app: faust.App) -> None:
    consumer = app.consumer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(20):
            await _drain_call(consumer, _queued(str(n)))
        await asyncio.sleep(0)
        gc.collect()
    assert [w for w in caught if "never awaited" in str(w.message)] == []


# --- b. the changelog queue's size ---------------------------------------------------------


def test_the_changelog_queue_holds_a_fetch_not_a_few_bundles(mode: str, app: faust.App) -> None:
    queue = app.tables.changelog_queue
    assert queue is app.tables.changelog_queue  # one queue, made once
    assert queue._clear_on_resume  # still cleared when the flow resumes after a rebalance
    assert queue.maxsize == (4096 if mode == "patched" else 32)
    assert app.conf.stream_buffer_maxsize == 32  # the agents' buffers are untouched


# --- c. the recovery's wait_for --------------------------------------------------------------


async def test_the_recovery_takes_a_queued_record_without_a_task(mode: str, app: faust.App) -> None:
    queue = app.tables.changelog_queue
    wait_for = faust_recovery.asyncio.wait_for  # what Recovery._slurp_changelogs calls
    for n in range(3):
        queue.put_nowait(f"r{n}")
    tasks = TaskCount()
    try:
        got = [await wait_for(queue.get(), timeout=5.0) for _ in range(3)]
    finally:
        tasks.close()
    assert got == ["r0", "r1", "r2"]
    assert tasks.created == (0 if mode == "patched" else 3)


async def test_the_recovery_still_times_out_on_an_empty_queue(mode: str, app: faust.App) -> None:
    queue = app.tables.changelog_queue
    wait_for = faust_recovery.asyncio.wait_for
    with pytest.raises(asyncio.TimeoutError):
        await wait_for(queue.get(), timeout=0.01)  # how a recovery learns it is caught up
    waiting = asyncio.ensure_future(wait_for(queue.get(), timeout=5.0))
    await asyncio.sleep(0)
    queue.put_nowait("late")
    assert await waiting == "late"
    assert faust_recovery.asyncio.TimeoutError is asyncio.TimeoutError  # the rest: asyncio's


async def test_an_error_thrown_into_the_queue_still_reaches_the_recovery(
    mode: str, app: faust.App
) -> None:
    queue = app.tables.changelog_queue
    queue._throw(KeyError("thrown"))  # ThrowableQueue.throw: the conductor's decode errors
    with pytest.raises(KeyError):
        await faust_recovery.asyncio.wait_for(queue.get(), timeout=5.0)


# --- d. need_recovery ----------------------------------------------------------------------

_offsets = st.one_of(st.none(), st.integers(-1, 6))


@given(
    highwaters=st.dictionaries(st.integers(0, 5), _offsets, max_size=6),
    offsets=st.dictionaries(st.integers(0, 7), _offsets, max_size=8),
)
def test_need_recovery_answers_as_faust_does(
    highwaters: dict[int, int | None], offsets: dict[int, int | None]
) -> None:
    """Any partitions, highwaters and offsets (None, -1, missing from the Counter)."""
    recovery = SimpleNamespace(
        active_highwaters=Counter({TP("t-changelog", p): h for p, h in highwaters.items()}),
        active_offsets=Counter({TP("t-changelog", p): o for p, o in offsets.items()}),
    )
    recovery.active_remaining = lambda: Recovery.active_remaining(recovery)  # type: ignore[attr-defined]
    original = faust_replay._originals.get("need_recovery", Recovery.need_recovery)
    assert faust_replay._need_recovery(recovery) == original(recovery)


def test_need_recovery_builds_no_counter_per_record(mode: str) -> None:
    recovery = SimpleNamespace(
        active_highwaters={TP("t-changelog", 0): 10}, active_offsets=Counter()
    )
    recovery.active_remaining = lambda: pytest.fail("active_remaining() called")  # type: ignore[attr-defined]
    if mode == "patched":
        assert Recovery.need_recovery(recovery) is True  # type: ignore[arg-type]
    else:
        with pytest.raises(pytest.fail.Exception):
            Recovery.need_recovery(recovery)  # type: ignore[arg-type]


# --- apply / revert ------------------------------------------------------------------------


def test_apply_is_idempotent_and_revert_restores_the_originals() -> None:
    was_applied = faust_replay.is_applied()
    faust_replay.revert()
    consumer_cls = faust.transport.consumer.Consumer
    manager_cls = faust.tables.manager.TableManager
    originals = (
        consumer_cls.wait_first,
        manager_cls.__dict__["changelog_queue"],
        faust_recovery.asyncio,
        Recovery.need_recovery,
    )
    try:
        faust_replay.apply()
        patched = (consumer_cls.wait_first, manager_cls.__dict__["changelog_queue"])
        assert patched[0] is not originals[0] and faust_recovery.asyncio is not asyncio
        assert Recovery.need_recovery is not originals[3]
        faust_replay.apply()
        assert (consumer_cls.wait_first, manager_cls.__dict__["changelog_queue"]) == patched
        faust_replay.revert()
        assert (
            consumer_cls.wait_first,
            manager_cls.__dict__["changelog_queue"],
            faust_recovery.asyncio,
            Recovery.need_recovery,
        ) == originals
        assert "wait_first" not in consumer_cls.__dict__  # mode's Service.wait_first again
    finally:
        if was_applied:
            faust_replay.apply()


def test_apply_refuses_unpinned_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    was_applied = faust_replay.is_applied()
    faust_replay.revert()
    monkeypatch.setattr(faust, "__version__", "9.9.9")
    try:
        with pytest.raises(RuntimeError, match="faust_replay was written for"):
            faust_replay.apply()
        assert not faust_replay.is_applied()
    finally:
        monkeypatch.undo()
        if was_applied:
            faust_replay.apply()
    assert faust_patch.PINNED_VERSIONS["faust-streaming"] == faust.__version__
