"""Throughput: a plain aiokafka consumer (the ceiling), then one `sunes worker` end to end."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from aiokafka import AIOKafkaConsumer

from bench.common import (
    INPUT_TOPICS,
    Http,
    crossing_time,
    parse_metrics,
    partitions_of,
    percentile,
    run_delay_seconds,
    worker_cpu_seconds,
    worker_rss_bytes,
)
from bench.common import cpu_seconds as process_cpu_seconds
from topics.validation import InvalidRecord, parse_record

# --- raw consume -------------------------------------------------------------------------------


@dataclass
class RawConsume:
    decoder: str  # "orjson" or "parse_record"
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def raw_consume(
    bootstrap_servers: str, decoder: str = "orjson", topics: Sequence[str] = INPUT_TOPICS
) -> RawConsume:
    """Read every partition of the input topics from the start to the current end, decoding
    each value; no consumer group, no commits (a ceiling for what a worker can do)."""
    decode: Callable[[bytes], Any] = orjson.loads if decoder == "orjson" else parse_record

    async def run() -> RawConsume:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        tps = await partitions_of(bootstrap_servers, topics)
        await consumer.start()
        try:
            consumer.assign(tps)
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if ends[tp] > begins[tp]}
            await consumer.seek_to_beginning(*tps)
            count = 0
            began = time.perf_counter()
            while pending:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        # foreign messages on an external broker: still read
                        with contextlib.suppress(orjson.JSONDecodeError, InvalidRecord):
                            decode(record.value)
                    count += len(records)
                    if tp in pending and await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            return RawConsume(decoder, count, time.perf_counter() - began)
        finally:
            await consumer.stop()

    return asyncio.run(run())


# --- one worker end to end -----------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the worker was spawned
    consumed: float  # sunes_events_consumed_total, valid + invalid
    applied: float  # sunes_processing_latency_seconds_count
    rss: int  # of the worker's process and its ingest process
    cpu: float  # CPU seconds of the worker so far: its process and its ingest process
    main_cpu: float = 0.0  # of its main thread (the event loop: ingest, apply, flush, /metrics)
    main_queued: float = 0.0  # seconds its main thread waited for a core (not idle: queued)
    process_cpu: float = 0.0  # of the worker's own process (cpu less: its ingest process's)


@dataclass
class WorkerThroughput:
    expected: int  # events to apply
    applied: int
    ready_after: float  # spawn → /health answers
    first_applied_after: float | None  # spawn → first applied event (interpolated)
    done_after: float | None  # spawn → all applied (interpolated); None if it never got there
    steady_rate: float | None  # events/s between 10 % and 90 % of the events applied
    ingest_rate: float | None  # same for the ingest agent's consumed counter (all messages)
    cpu_seconds: float  # worker CPU while loading (spawn → done)
    steady_cpu_us: float | None  # worker CPU per event between 10 % and 90 % applied
    peak_rss: int
    scrape_ms: float  # median time of one whole GET /metrics while loading
    progress_ms: float  # median time of one GET of the progress counters (PROGRESS_PATH)
    # the longest: a progress read renders nothing, so it waits for what holds the event loop
    # (an ingest poll, a bundle's apply and flush)
    progress_max_ms: float = 0.0
    # the main thread's CPU per event and its busy share of the wall time, same window: a
    # main thread under 100 % busy waits (for Kafka, for the other stage) rather than works
    steady_main_cpu_us: float | None = None
    steady_main_busy: float | None = None
    # the share of the same wall time it was runnable but waited for a core (the machine's
    # load): 1 - busy - queued is what it really waited for (Kafka, the other stage)
    steady_main_queued: float | None = None
    # the CPU per event of the worker's child processes (its ingest process,
    # SUNES_INGEST=process), same window: included in steady_cpu_us; 0 when inline
    steady_child_cpu_us: float | None = None
    samples: list[Sample] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.done_after is not None

    @property
    def rate_with_startup(self) -> float | None:
        """Events / (spawn → all applied): what a fresh worker really gives."""
        return self.expected / self.done_after if self.done_after else None

    @property
    def rate_after_first(self) -> float | None:
        """Events / (first applied → all applied): start-up and group join left out."""
        if self.done_after is None or self.first_applied_after is None:
            return None
        span = self.done_after - self.first_applied_after
        return self.expected / span if span > 0 else None

    @property
    def cpu_us_per_event(self) -> float | None:
        return self.cpu_seconds / self.applied * 1e6 if self.applied else None


# The progress counters, read with /metrics?name[]=... (only those samples: no indicator
# computed by the worker for them, docs/monitoring.md)
PROGRESS = ("sunes_events_consumed_total", "sunes_processing_latency_seconds_count")
PROGRESS_PATH = "/metrics?" + urlencode([("name[]", name) for name in PROGRESS])


def follow_worker(
    pid: int,
    port: int,
    spawned_at: float,
    ready_at: float,
    expected: int,
    poll: float = 1.0,
    whole_every: float = 5.0,
    stall_seconds: float = 60.0,
    report: Callable[[str], None] = print,
) -> WorkerThroughput:
    """Read the progress counters every `poll` s (PROGRESS_PATH) and scrape the whole
    /metrics every `whole_every` s (timed: the scrape figure), until `expected` events are
    applied (or nothing moves for `stall_seconds`): the applied count is the latency
    histogram's count."""
    http = Http(port)
    samples: list[Sample] = []
    scrape_times: list[float] = []  # of the whole scrapes
    progress_times: list[float] = []
    last_change = time.monotonic()
    last_print = last_whole = 0.0
    try:
        while True:
            began = time.monotonic()
            whole = began - last_whole >= whole_every
            body = http.get("/metrics" if whole else PROGRESS_PATH)
            (scrape_times if whole else progress_times).append(time.monotonic() - began)
            if whole:
                last_whole = began
            if body is not None:
                m = parse_metrics(body.decode())
                sample = Sample(
                    began - spawned_at,
                    m.consumed_valid + m.consumed_invalid,
                    m.applied,
                    worker_rss_bytes(pid),
                    worker_cpu_seconds(pid),
                    process_cpu_seconds(pid, thread=pid),
                    run_delay_seconds(pid, pid),
                    process_cpu_seconds(pid),
                )
                if not samples or sample.applied != samples[-1].applied:
                    last_change = began
                samples.append(sample)
                if began - last_print >= 10:
                    last_print = began
                    report(
                        f"    t={sample.t:5.1f}s consumed={sample.consumed:>9.0f} "
                        f"applied={sample.applied:>9.0f} rss={sample.rss / 2**20:6.0f} MiB"
                    )
                if sample.applied >= expected:
                    break
            if time.monotonic() - last_change > stall_seconds:
                report(f"    stalled: nothing applied for {stall_seconds:.0f} s")
                break
            time.sleep(max(0.0, poll - (time.monotonic() - began)))
    finally:
        http.close()
    series = [(s.t, s.applied) for s in samples]
    done = crossing_time(series, expected)
    consumed = max((s.consumed for s in samples), default=0.0)
    return WorkerThroughput(
        expected=expected,
        applied=int(samples[-1].applied) if samples else 0,
        ready_after=ready_at - spawned_at,
        first_applied_after=crossing_time(series, 1),
        done_after=done,
        steady_rate=_steady(series, expected),
        ingest_rate=_steady([(s.t, s.consumed) for s in samples], consumed),
        cpu_seconds=samples[-1].cpu if samples else 0.0,
        steady_cpu_us=_steady_cpu_us(samples, expected),
        steady_main_cpu_us=_steady_cpu_us(samples, expected, main=True),
        steady_main_busy=_steady_main_busy(samples, expected),
        steady_main_queued=_steady_main_busy(samples, expected, queued=True),
        steady_child_cpu_us=_steady_cpu_us(samples, expected, children=True),
        peak_rss=max((s.rss for s in samples), default=0),
        scrape_ms=percentile(scrape_times, 0.5) * 1000,
        progress_ms=percentile(progress_times, 0.5) * 1000 if progress_times else 0.0,
        progress_max_ms=max(progress_times) * 1000 if progress_times else 0.0,
        samples=samples,
    )


def _steady(series: list[tuple[float, float]], total: float) -> float | None:
    """Rate between 10 % and 90 % of `total`: start-up and the tail left out."""
    at10, at90 = crossing_time(series, 0.1 * total), crossing_time(series, 0.9 * total)
    if at10 is None or at90 is None or at90 <= at10:
        return None
    return 0.8 * total / (at90 - at10)


def _steady_window(samples: list[Sample], total: float) -> tuple[float, float] | None:
    """When the worker has applied 10 % and 90 % of `total`."""
    series = [(s.t, s.applied) for s in samples]
    at10, at90 = crossing_time(series, 0.1 * total), crossing_time(series, 0.9 * total)
    if at10 is None or at90 is None or at90 <= at10:
        return None
    return at10, at90


def _steady_cpu_us(
    samples: list[Sample], total: float, main: bool = False, children: bool = False
) -> float | None:
    """Worker CPU (or its main thread's, or its child processes') per event from 10 % to
    90 % of `total` applied."""
    window = _steady_window(samples, total)
    if window is None:
        return None
    cpu = [
        (s.t, s.main_cpu if main else s.cpu - s.process_cpu if children else s.cpu) for s in samples
    ]
    return (_at(cpu, window[1]) - _at(cpu, window[0])) / (0.8 * total) * 1e6


def _steady_main_busy(samples: list[Sample], total: float, queued: bool = False) -> float | None:
    """The main thread's CPU time (or its wait for a core) / wall time, 10 % to 90 % applied."""
    window = _steady_window(samples, total)
    if window is None:
        return None
    cpu = [(s.t, s.main_queued if queued else s.main_cpu) for s in samples]
    return (_at(cpu, window[1]) - _at(cpu, window[0])) / (window[1] - window[0])


def _at(series: list[tuple[float, float]], t: float) -> float:
    """A series' value at time t, interpolated linearly."""
    for (t0, v0), (t1, v1) in itertools.pairwise(series):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return series[-1][1]
