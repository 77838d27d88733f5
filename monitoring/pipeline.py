"""Pipeline-health metrics of a worker: consumption, dead letters, freshness, latency."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter(
            "sunes_events_consumed",
            "Input messages consumed, by topic and outcome (valid or invalid).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.deadlettered = Counter(
            "sunes_deadletter_events",
            "Messages sent to the dead-letter topic, by source topic and reason code.",
            ["topic", "reason"],
            registry=registry,
        )
        self.last_event = Gauge(
            "sunes_last_event_timestamp_seconds",
            "Wall-clock time (unix seconds) of the last message consumed, by topic.",
            ["topic"],
            registry=registry,
        )
        self.applied_events = Counter(
            "sunes_events_applied",
            "Events the establishment stage merged into the state (after ingest bundled "
            "them): it stops while ingest goes on when the stage is stuck.",
            registry=registry,
        )
        self.latency = Histogram(
            "sunes_processing_latency_seconds",
            "From the Kafka record timestamp of an input event to its effect on the state.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )

        self.offset_holes = Counter(
            "sunes_offset_holes",
            "Holes found in the offsets the establishment agent applies (records the consumer "
            "skipped): each one is sought back and read again. Should stay 0.",
            ["partition"],
            registry=registry,
        )
        self.purged = Counter(
            "sunes_purged_entries",
            "Entries of the state purged past the retention horizon (processors.purge), by "
            "kind: stay, document, recipient, message, index, unit.",
            ["kind"],
            registry=registry,
        )

    def consumed_valid(self, topic: str, count: int = 1) -> None:
        self.consumed.labels(topic, "valid").inc(count)
        self.last_event.labels(topic).set(time.time())

    def consumed_invalid(self, topic: str, reason: str) -> None:
        self.consumed.labels(topic, "invalid").inc()
        self.deadlettered.labels(topic, reason).inc()
        self.last_event.labels(topic).set(time.time())

    def add_ingest(self, tally: IngestDeltas) -> None:
        """What an ingest stage in another process counted since its last report
        (streams/worker/ingest_process.py): the same counters, as if counted here."""
        for topic, count in tally.valid.items():
            self.consumed.labels(topic, "valid").inc(count)
        for (topic, reason), count in tally.invalid.items():
            self.consumed.labels(topic, "invalid").inc(count)
            self.deadlettered.labels(topic, reason).inc(count)
        for topic, moment in tally.last_event.items():
            self.last_event.labels(topic).set(moment)

    def applied(self, record_timestamps: Sequence[float | None]) -> None:
        """The events of one bundle, applied now: one count, one clock reading, then the
        latency of each event that had a record timestamp."""
        self.applied_events.inc(len(record_timestamps))
        now = time.time()
        latencies = [max(0.0, now - stamp) for stamp in record_timestamps if stamp]
        if latencies:
            observe_all(self.latency, latencies)


@dataclass(frozen=True, slots=True)
class IngestDeltas:
    """Counts of an ingest stage since its previous report: valid by topic, invalid (and
    dead-lettered) by (topic, reason), the wall-clock time of each topic's last message."""

    valid: dict[str, int]
    invalid: dict[tuple[str, str], int]
    last_event: dict[str, float]

    def __bool__(self) -> bool:
        return bool(self.valid or self.invalid or self.last_event)


class IngestTally:
    """The ingest stage's counts kept as deltas, in a process without the worker's
    PipelineMetrics (streams/worker/ingest_process.py): `take` hands them over."""

    def __init__(self) -> None:
        self._valid: dict[str, int] = {}
        self._invalid: dict[tuple[str, str], int] = {}
        self._last_event: dict[str, float] = {}

    def consumed_valid(self, topic: str, count: int = 1) -> None:
        self._valid[topic] = self._valid.get(topic, 0) + count
        self._last_event[topic] = time.time()

    def consumed_invalid(self, topic: str, reason: str) -> None:
        key = (topic, reason)
        self._invalid[key] = self._invalid.get(key, 0) + 1
        self._last_event[topic] = time.time()

    def take(self) -> IngestDeltas:
        """The counts since the last take, and start again from zero."""
        deltas = IngestDeltas(self._valid, self._invalid, self._last_event)
        self._valid, self._invalid, self._last_event = {}, {}, {}
        return deltas


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(value)` for each value, in one go: a lock per bucket touched and
    one for the sum, not two per value (~1 % of the worker's main thread, per event).
    Through Histogram's own fields (read in prometheus_client 0.26: `_upper_bounds`, ending
    with +Inf; `_buckets`; `_sum`), for an unlabelled histogram without exemplars;
    tests/monitoring/test_pipeline.py compares it with `observe`, so a change there fails."""
    counts: dict[int, int] = {}
    bounds = histogram._upper_bounds
    for value in values:
        index = bisect_left(bounds, value)  # the first bound >= value, as observe picks it
        counts[index] = counts.get(index, 0) + 1
    histogram._sum.inc(sum(values))
    for index, count in counts.items():
        histogram._buckets[index].inc(count)
