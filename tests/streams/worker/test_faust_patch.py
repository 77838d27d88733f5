"""streams.worker.faust_patch: the end of a table recovery must not skip stream records.

The scenario runs Faust's real ``Consumer.getmany`` -> ``_wait_next_records`` ->
``AIOKafkaConsumerThread.getmany`` -> ``_fetch_records`` over a real, unstarted
``AIOKafkaConsumer`` whose real ``Fetcher`` and ``SubscriptionState`` hold buffered
record batches, as aiokafka's background fetch leaves them.  The fakes are few: the
fetcher's background task does nothing (the test plays the broker and fills the
buffer), the consumer thread runs its calls on the test's loop instead of its own
thread, and the group has no committed offset yet (``committed`` returns None).

Recovery state: the stream partition S is paused and has 5 records buffered; the
changelog partition C is the only active one.  The recovery then ends and pauses C,
emptying the active set, either

* ``request-queued``: while the fetch request waits in the thread's queue, or
* ``fetch-waiting``: while ``fetched_records`` waits for data (which then arrives for C);

then, as ``Recovery.on_recovery_completed`` does, S is resumed and ``perform_seek``
runs, and the test polls until S is drained.  Without the patch the 5 buffered
records of S are never delivered (and S's position is past them); with it all are.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import struct
import tomllib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, Fetcher, FetchResult, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.worker import faust_patch

ROOT = Path(__file__).resolve().parents[3]

# Faust's TP for the Faust calls; aiokafka gets its own TopicPartition (equal tuples).
S = TP("sunes-events-by-finess", 0)  # stream partition
C = TP("sunes-facts-changelog", 0)  # changelog partition
S_LOG_END = 8  # S holds offsets 0..7; 0..4 are buffered when the recovery ends
S_BUFFERED = 5
C_START, C_END = 3, 6  # C is caught up at 3; 3..5 arrive in the "fetch-waiting" case
SCENARIOS = ["request-queued", "fetch-waiting"]


class _BrokerlessFetcher(Fetcher):
    """aiokafka's Fetcher without its background fetch task; the test fills the buffer."""

    async def _fetch_requests_routine(self) -> None:
        await asyncio.Event().wait()  # cancelled by Fetcher.close()


class Harness:
    def __init__(self, ak: aiokafka.AIOKafkaConsumer, app: faust.App) -> None:
        self.ak = ak
        self.app = app
        self.consumer: Any = app.consumer
        self.fetcher: Fetcher = ak._fetcher
        self.before_thread_call: list[Any] = []  # one-shot hooks, see call_thread

    def state(self, tp: TP) -> Any:
        return self.ak._subscription.subscription.assignment.state_value(tp)

    def position(self, tp: TP) -> int:
        return int(self.state(tp).position)

    def buffer(self, faust_tp: TP, end: int) -> None:
        """What a fetch response does: buffer records [position, end) of tp, wake waiters."""
        tp = TopicPartition(*faust_tp)
        start = self.position(tp)
        builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
        for delta in range(end - start):
            builder.append(delta, timestamp=1_000, key=None, value=b"v", headers=[])
        data = builder.build()
        struct.pack_into(">q", data, 0, start)  # base offset, set by the broker
        records = PartitionRecords(
            tp, MemoryRecords(bytes(data)), [], start, None, None, True, READ_UNCOMMITTED
        )
        assignment = self.ak._subscription.subscription.assignment
        self.fetcher._records[tp] = FetchResult(
            tp, assignment=assignment, partition_records=records, backoff=0
        )
        self.state(tp).highwater = end
        for waiter in list(self.fetcher._fetch_waiters):
            self.fetcher._notify(waiter)

    async def call_thread(self, fun: Any, *args: Any, **kwargs: Any) -> Any:
        # Stands in for ServiceThread.call_thread: the hooks run what the main thread
        # does while the request sits in the consumer thread's queue.
        while self.before_thread_call:
            self.before_thread_call.pop(0)()
        return await fun(*args, **kwargs)

    async def poll(self, timeout: float = 0.05) -> list[tuple[TP, int]]:
        return [(tp, m.offset) async for tp, m in self.consumer.getmany(timeout=timeout)]


@pytest.fixture
async def harness(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    app = faust.App(f"faust-patch-{uuid.uuid4().hex}", broker="kafka://127.0.0.1:1")
    ak = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", enable_auto_commit=False)
    ak._fetcher = _BrokerlessFetcher(ak._client, ak._subscription)
    ak._subscription.assign_from_user({TopicPartition(*S), TopicPartition(*C)})
    ak.seek(TopicPartition(*S), 0)
    ak.seek(TopicPartition(*C), C_START)

    async def no_committed_offset(tp: TopicPartition) -> None:
        return None

    monkeypatch.setattr(ak, "committed", no_committed_offset)
    h = Harness(ak, app)
    thread = h.consumer._thread
    thread._consumer = ak
    monkeypatch.setattr(thread, "call_thread", h.call_thread)
    # Recovery in progress: the stream partition paused, the changelog one active.
    h.consumer._set_active_tps({S, C})
    h.consumer.pause_partitions({S})
    h.buffer(S, S_BUFFERED)  # aiokafka kept fetching S: Faust pauses only in its books
    try:
        yield h
    finally:
        await ak.stop()
        thread.thread_loop.close()  # the thread's own loop, never started here


async def run_recovery_end(h: Harness, scenario: str) -> dict[TP, list[int]]:
    delivered: dict[TP, list[int]] = {S: [], C: []}

    def record(batch: list[tuple[TP, int]]) -> None:
        for tp, offset in batch:
            delivered[tp].append(offset)

    def recovery_ends() -> None:  # Recovery._restart_recovery: pause(active_tps)
        h.consumer.pause_partitions({C})

    if scenario == "request-queued":
        h.before_thread_call.append(recovery_ends)
        record(await h.poll())
    else:
        polling = asyncio.create_task(h.poll(timeout=5.0))
        for _ in range(1000):
            if h.fetcher._fetch_waiters:
                break
            await asyncio.sleep(0)
        assert h.fetcher._fetch_waiters, "fetched_records never waited"
        recovery_ends()
        h.buffer(C, C_END)
        record(await polling)
    # Recovery.on_recovery_completed: resume the stream partitions, seek to committed.
    h.consumer.resume_partitions({S})
    await h.consumer.perform_seek()
    # Normal flow: the broker answers fetches from S's position until S is drained.
    for _ in range(5):
        if S not in h.fetcher._records and h.position(S) < S_LOG_END:
            h.buffer(S, S_LOG_END)
        batch = await h.poll()
        if not batch:
            break
        record(batch)
    return delivered


@pytest.fixture
def unpatched() -> Iterator[None]:
    was_applied = faust_patch.is_applied()
    faust_patch.revert()
    yield
    if was_applied:
        faust_patch.apply()


@pytest.fixture
def patched() -> Iterator[None]:
    was_applied = faust_patch.is_applied()
    faust_patch.apply()
    yield
    if not was_applied:
        faust_patch.revert()


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_without_the_patch_the_buffered_stream_records_are_skipped(
    unpatched: None, harness: Harness, scenario: str
) -> None:
    delivered = await run_recovery_end(harness, scenario)
    # The empty active set made aiokafka drain S; getmany dropped it; no seek back.
    assert delivered[S] == list(range(S_BUFFERED, S_LOG_END))
    assert harness.position(S) == S_LOG_END  # the next commit moves past 0..4
    if scenario == "fetch-waiting":
        assert delivered[C] == []
        assert harness.position(C) == C_END  # changelog records 3..5 dropped as well


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_with_the_patch_every_stream_record_is_delivered(
    patched: None, harness: Harness, scenario: str
) -> None:
    delivered = await run_recovery_end(harness, scenario)
    assert delivered[S] == list(range(S_LOG_END))
    assert harness.position(S) == S_LOG_END
    assert delivered[C] == []  # C stays paused after the recovery
    # (b): C's records, fetched while C was being paused, are rewound, not dropped.
    assert harness.position(C) == C_START


async def test_patched_fetch_with_an_empty_active_set_fetches_nothing(
    patched: None, harness: Harness
) -> None:
    thread = harness.consumer._thread
    assert await thread._fetch_records(harness.ak, set(), timeout=0) == {}
    assert harness.position(S) == 0
    assert S in harness.fetcher._records  # still buffered


def test_apply_is_idempotent_and_revert_restores_the_original(unpatched: None) -> None:
    cls = AIOKafkaConsumerThread
    original = cls._fetch_records
    faust_patch.apply()
    patched_fn = cls._fetch_records
    assert patched_fn is not original
    assert patched_fn.__wrapped__ is original
    faust_patch.apply()
    assert cls._fetch_records is patched_fn
    faust_patch.revert()
    assert cls._fetch_records is original
    assert not faust_patch.is_applied()


@pytest.mark.parametrize("package", ["faust", "aiokafka"])
def test_apply_refuses_unpinned_versions(
    unpatched: None, monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    module = faust if package == "faust" else aiokafka
    monkeypatch.setattr(module, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match="re-check the patch"):
        faust_patch.apply()
    assert not faust_patch.is_applied()


def test_apply_refuses_an_unpinned_mode(unpatched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "9.9.9" if name == "mode-streaming" else real(name),
    )
    with pytest.raises(RuntimeError, match="re-check the patch"):
        faust_patch.apply()
    assert not faust_patch.is_applied()


def test_pyproject_pins_the_patched_versions_exactly() -> None:
    """pip installs what pyproject.toml allows; the patches refuse any other version at
    start, so a looser bound there would give a worker that installs and cannot start."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = dict(
        requirement.split("==", 1)
        for requirement in project["project"]["dependencies"]
        if "==" in requirement
    )
    assert {name: pins.get(name) for name in faust_patch.PINNED_VERSIONS} == (
        faust_patch.PINNED_VERSIONS
    )
    assert faust_patch._installed_versions() == faust_patch.PINNED_VERSIONS


# --- rewind: the establishment agent's hole must not be committed past ------------------
#
# The same real Faust consumer (app.consumer over the real, unstarted aiokafka consumer);
# acks go through ConsumerMessage.ack -> Consumer.ack and commits through Faust's own
# _filter_committable_offsets -> _new_offset, the broker commit call left out.


def ack(h: Harness, *offsets: int) -> None:
    for offset in offsets:
        message = ConsumerMessage(S.topic, S.partition, offset, 1.0, 0, [], None, b"v", None)
        message.ack(h.consumer)


def commit(h: Harness) -> int | None:
    """The offset Faust's commit would commit for S now (and record it as committed)."""
    offsets = h.consumer._filter_committable_offsets([S])
    h.consumer._committed_offset.update(offsets)  # as Consumer._commit_offsets does
    return offsets.get(S)


@pytest.fixture
def acking(harness: Harness) -> Harness:
    harness.app.topics._acking_topics.add(S.topic)
    return harness


async def test_without_rewind_gap_filling_commits_past_the_hole(acking: Harness) -> None:
    ack(acking, *range(5))
    await acking.consumer._add_gap(S, 5, 9)  # what _drain_messages does when 10 follows 4
    ack(acking, 10)
    assert acking.consumer._new_offset(S) == 11  # 5..9 applied by no one, committed


@pytest.mark.parametrize("in_flight_ack", ["before-rewind", "after-rewind"])
async def test_rewind_keeps_the_commit_at_the_hole_until_it_is_replayed(
    acking: Harness, in_flight_ack: str
) -> None:
    h = acking
    ack(h, *range(5))
    await h.consumer._add_gap(S, 5, 9)
    if in_flight_ack == "before-rewind":
        ack(h, 10)  # the stream acks 10, which the guard refused
    await faust_patch.rewind(h.consumer, S, 5)
    if in_flight_ack == "after-rewind":
        ack(h, 10)
    assert h.position(S) == 5  # the client fetches from the hole again
    assert h.consumer._read_offset[S] == 5  # and _drain_messages accepts the replay
    assert not h.consumer._gap[S]
    points = [commit(h)]
    ack(h, 11, 12)  # more records fetched before the seek, refused by the guard
    points += [commit(h), commit(h)]
    assert points == [5, None, None]
    # The replay: the commit follows it record by record.
    replayed = []
    for offset in range(5, 13):
        ack(h, offset)
        replayed.append(commit(h))
    # 10..12, acked while in flight and not applied, count only when replayed.
    assert replayed == list(range(6, 14))


async def test_rewind_stops_a_one_record_hole_at_the_committed_offset(acking: Harness) -> None:
    h = acking
    ack(h, *range(5))
    assert commit(h) == 5
    # Without rewind: record 5 lost, 6 acked -> Faust commits 7 with no gap at all
    # (_new_offset's head check is `min(acked) - committed > 1`).
    ack(h, 6)
    assert h.consumer._new_offset(S) == 7
    # (that call consumed the ack of 6; committed is still 5.)  Now with rewind:
    await faust_patch.rewind(h.consumer, S, 5)
    ack(h, 6)
    assert commit(h) is None
    ack(h, 5)
    assert commit(h) == 6
    ack(h, 6)
    assert commit(h) == 7


async def test_a_rebalance_voids_a_pending_rewind(acking: Harness) -> None:
    h = acking
    ack(h, *range(5))
    await faust_patch.rewind(h.consumer, S, 5)
    ack(h, 6)
    assert commit(h) == 5
    # New generation: positions reset to the committed offset (5), acks count again.
    h.app.consumer_generation_id += 1
    ack(h, 5, 6)
    assert commit(h) == 7


async def replay_after_a_stale_delivery(h: Harness) -> int | None:
    """A hole at 5 rewound while ``_drain_messages`` delivers 12, fetched before the seek:
    its ``set_read_offset(tp, 12)`` comes after the rewind's. Then the broker answers the
    fetch from the hole. Returns the read offset ``_drain_messages`` filters that replay by
    (it drops every record below it)."""
    h.consumer.resume_partitions({S})
    h.consumer.pause_partitions({C})
    h.fetcher._records.pop(TopicPartition(*S), None)
    await faust_patch.rewind(h.consumer, S, 5)
    h.consumer._read_offset[S] = 12  # the stale record's delivery, after the rewind
    h.buffer(S, 13)  # the replay: 5..12
    assert [offset for _, offset in await h.poll()] == list(range(5, 13))
    return h.consumer._read_offset[S]  # type: ignore[no-any-return]


async def test_with_the_patch_the_replay_of_a_hole_passes_the_read_offset(
    patched: None, acking: Harness
) -> None:
    assert await replay_after_a_stale_delivery(acking) == 5  # 5..12 are all delivered


async def test_without_the_read_offset_fix_the_replay_is_dropped(
    patched: None, acking: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faust_patch, "_reopen_read_offset", lambda *args: None)
    # 12: _drain_messages would drop 5..12 (offset < read offset) and the partition stalls.
    assert await replay_after_a_stale_delivery(acking) == 12


# --- (d) and (e): the stream fed without waiting on stale fetches -------------------------------


async def _held_then_resumed(h: Harness, timeout: float) -> dict[TP, list[Any]]:
    """S has records buffered in aiokafka but is held back (its stream buffer full) when the
    fetch starts, on C alone; S is resumed while the fetch waits for C's data, which never
    comes. What the fetch returns."""
    h.consumer.resume_partitions({S})
    h.consumer.on_buffer_full(S)  # Conductor: the stream buffer of S is full
    assert S in h.consumer._buffered_partitions and S not in h.consumer._active_partitions
    thread = h.consumer._thread
    fetching = asyncio.create_task(
        thread._fetch_records(h.ak, h.consumer._get_active_partitions(), timeout=timeout)
    )
    for _ in range(1000):
        if h.fetcher._fetch_waiters:
            break
        await asyncio.sleep(0)
    assert h.fetcher._fetch_waiters, "fetched_records never waited"
    h.consumer.on_buffer_drop(S)  # the agent drained its buffer
    # a guard against a hang only: the fetch's own timeout is far longer when patched
    records: dict[TP, list[Any]] = await asyncio.wait_for(fetching, 60)
    return records


async def test_without_the_patch_a_resumed_partition_waits_for_the_whole_fetch(
    unpatched: None, harness: Harness
) -> None:
    records = await _held_then_resumed(harness, timeout=0.2)
    assert records == {}  # S's buffered records left for the next fetch: the agent idles


async def test_with_the_patch_a_resumed_partition_is_read_at_once(
    patched: None, harness: Harness
) -> None:
    records = await _held_then_resumed(harness, timeout=3600)
    assert [r.offset for r in records[TopicPartition(*S)]] == list(range(S_BUFFERED))


async def test_the_worker_consumer_waits_less_for_an_empty_fetch(
    patched: None, harness: Harness
) -> None:
    thread = harness.consumer._thread
    consumers = [thread._create_worker_consumer(harness.app.transport)]
    assert consumers[0]._fetch_max_wait_ms == faust_patch.FETCH_MAX_WAIT_MS < 1500
    faust_patch.revert()
    consumers.append(thread._create_worker_consumer(harness.app.transport))
    assert consumers[1]._fetch_max_wait_ms == 1500  # Faust's own
    for consumer in consumers:
        await consumer.stop()
