"""What the benchmarks share: the data set, Kafka helpers, /metrics parsing, process stats."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from processors.collection import Establishments
from processors.state import DOCUMENT, RECIPIENT, STAY, parse_store_key
from processors.store import KeyValueStore
from simulator.config import SimulationConfig
from simulator.generator import generate
from streams.kafka_clients import ensure_topics
from topics import names
from topics.records import EstablishmentRecord, Event
from topics.validation import parse_record

Message = tuple[str, bytes, bytes]  # (topic, key, value)

# What the worker's ingest agent reads (streams.worker.app.INGESTED_TOPICS, without importing Faust).
INPUT_TOPICS = (names.STAYS, names.DMP, names.MSS, names.ESTABLISHMENTS)


# --- the data set ----------------------------------------------------------------------------


@dataclass
class Dataset:
    messages: list[Message]  # registry records first, then the events
    registry: int  # establishment records: consumed by the worker, not applied
    events: int  # what the establishment agent applies (re-sent duplicates included)
    by_label: Counter[str]
    finess: frozenset[str]
    generate_seconds: float

    @property
    def total(self) -> int:
        return len(self.messages)


def build_dataset(
    events: int, establishments: int = 50, stays_per_day: float = 30.0, seed: int = 1
) -> Dataset:
    """The registry records, then the first `events` valid events of an endless simulation.

    Invalid messages are left out (the dead-letter path is not what is measured); re-sent
    duplicates, late and out-of-order events, corrections and cancellations stay in.
    """
    config = SimulationConfig(
        establishments=establishments, stays_per_day=stays_per_day, days=None, seed=seed
    )
    began = time.perf_counter()
    messages: list[Message] = []
    labels: Counter[str] = Counter()
    registry = applied = 0
    for m in generate(config):
        if not m.valid:
            continue
        if m.topic == names.ESTABLISHMENTS:
            registry += 1
        elif applied >= events:
            break
        else:
            applied += 1
        labels[m.label] += 1
        messages.append((m.topic, m.key, m.value))
    return Dataset(
        messages,
        registry,
        applied,
        labels,
        frozenset(m[1].decode() for m in messages),
        time.perf_counter() - began,
    )


# --- the domain's store ---------------------------------------------------------------------

ENTITY_KINDS = (STAY, DOCUMENT, RECIPIENT)


def feed_simulation(domain: Establishments, config: SimulationConfig) -> int:
    """Every valid simulated message through the domain code, in process: registry records
    set, events applied, a flush every 10,000 events and at the end. The events applied."""
    events = 0
    for message in generate(config):
        if not message.valid:
            continue
        record = parse_record(message.value)
        if isinstance(record, EstablishmentRecord):
            domain.set_registry(record)
        elif isinstance(record, Event):
            domain.apply(record)
            events += 1
            if events % 10_000 == 0:
                domain.flush()
    domain.flush()
    return events


def store_counts(store: KeyValueStore) -> Counter[str]:
    """Stored entries by kind (processors.state: "s" stays, "d" documents, "us" units...)."""
    counts: Counter[str] = Counter()
    for key, _ in store.items():
        counts[parse_store_key(key)[1]] += 1
    return counts


def entities(counts: Counter[str]) -> int:
    """Stays + documents + MSS Pro recipients stored."""
    return sum(counts[kind] for kind in ENTITY_KINDS)


# --- Kafka -----------------------------------------------------------------------------------


def create_input_topics(bootstrap_servers: str) -> list[str]:
    """The contract's topics with their partition counts (else auto-creation gives 1)."""
    return asyncio.run(ensure_topics(bootstrap_servers))


def publish(bootstrap_servers: str, messages: Iterable[Message]) -> tuple[int, float]:
    """Publish as fast as aiokafka goes; return (count, seconds)."""

    async def run() -> tuple[int, float]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, linger_ms=20, max_batch_size=512 * 1024
        )
        await producer.start()
        began = time.perf_counter()
        count = 0
        try:
            for topic, key, value in messages:
                await producer.send(topic, value, key=key)  # waits for buffer space only
                count += 1
            await producer.flush()
        finally:
            await producer.stop()
        return count, time.perf_counter() - began

    return asyncio.run(run())


async def partitions_of(
    bootstrap_servers: str, topics: Sequence[str], timeout: float = 30.0
) -> list[TopicPartition]:
    """Every partition of the topics; retried while a topic just created is not yet known."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            described = await admin.describe_topics(list(topics))
            if all(t["error_code"] == 0 and t["partitions"] for t in described):
                return sorted(
                    TopicPartition(t["topic"], p["partition"])
                    for t in described
                    for p in t["partitions"]
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no metadata for {sorted(topics)} after {timeout:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


def messages_in_topics(bootstrap_servers: str, topics: Sequence[str] = INPUT_TOPICS) -> int:
    """End minus start offsets, summed: what a consumer from the beginning would read."""

    async def run() -> int:
        tps = await partitions_of(bootstrap_servers, topics)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
        await consumer.start()
        try:
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            return sum(ends[tp] - begins[tp] for tp in tps)
        finally:
            await consumer.stop()

    return asyncio.run(run())


# --- the worker's /metrics -------------------------------------------------------------------

_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_WANTED = ("sunes_events_consumed_total", "sunes_processing_latency_seconds")


@dataclass
class WorkerMetrics:
    consumed_valid: float = 0.0
    consumed_invalid: float = 0.0
    applied: float = 0.0  # sunes_processing_latency_seconds_count: one per applied event
    latency_sum: float = 0.0
    buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative)


def parse_metrics(text: str) -> WorkerMetrics:
    """The pipeline series the benchmarks read (the indicator gauges are skipped)."""
    out = WorkerMetrics()
    for line in text.splitlines():
        if not line.startswith(_WANTED):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, raw_labels, raw_value = match.groups()
        labels = dict(_LABEL.findall(raw_labels or ""))
        value = float(raw_value)
        if name == "sunes_events_consumed_total":
            if labels.get("outcome") == "valid":
                out.consumed_valid += value
            else:
                out.consumed_invalid += value
        elif name == "sunes_processing_latency_seconds_count":
            out.applied = value
        elif name == "sunes_processing_latency_seconds_sum":
            out.latency_sum = value
        elif name == "sunes_processing_latency_seconds_bucket":
            out.buckets.append((float(labels["le"]), value))
    out.buckets.sort()
    return out


def histogram_delta(
    after: WorkerMetrics, before: WorkerMetrics
) -> tuple[list[tuple[float, float]], float]:
    """The buckets and count of what was observed between two scrapes."""
    earlier = dict(before.buckets)
    buckets = [(le, count - earlier.get(le, 0.0)) for le, count in after.buckets]
    return buckets, after.applied - before.applied


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket of rank q."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower_le  # beyond the last finite bound: that bound, as Prometheus does
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return None


# --- HTTP ------------------------------------------------------------------------------------


class Http:
    """A keep-alive HTTP/1.1 connection to the worker's web views (cheap to poll often)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> bytes | None:
        for _ in range(2):  # one retry on a fresh connection (the server may close idle ones)
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("GET", path)
                response = self._conn.getresponse()
                body = response.read()
                return body if response.status == 200 else None
            except (OSError, http.client.HTTPException):
                self.close()
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- processes and the machine -----------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    """Resident memory now (VmRSS)."""
    return _status_kb(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """Highest resident memory so far (VmHWM)."""
    return _status_kb(pid, "VmHWM") * 1024


def descendants(pid: int) -> list[int]:
    """The processes a process started, and theirs (a worker's ingest process:
    streams/worker/ingest_process.py); those ended are gone."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(child) for child in f.read().split()]
            except FileNotFoundError:
                continue
            found += children
            todo += children
    return found


def _of_tree(measure: Callable[[int], float], pid: int) -> float:
    """measure(pid) plus its descendants' (one that ends meanwhile counts 0)."""
    total = measure(pid)
    for child in descendants(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += measure(child)
    return total


def worker_rss_bytes(pid: int) -> int:
    """A worker's resident memory now: its process's and its ingest process's."""
    return int(_of_tree(rss_bytes, pid))


def worker_peak_rss_bytes(pid: int) -> int:
    """The sum of each process's own peak (VmHWM): an upper bound of the worker's peak."""
    return int(_of_tree(peak_rss_bytes, pid))


def worker_cpu_seconds(pid: int) -> float:
    """A worker's CPU: its process's and its ingest process's (honest CPU per event)."""
    return _of_tree(cpu_seconds, pid)


def dir_bytes(path: Path) -> int:
    """Bytes of the regular files under a directory (0 if it does not exist)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of a process, all its threads (or of one thread: its tid; the
    main thread's tid is the pid)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    with open(path) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / _TICKS  # fields 14 and 15: utime, stime


def run_delay_seconds(pid: int, thread: int) -> float:
    """Time a thread spent runnable but waiting for a core (`/proc/.../schedstat`, its second
    field): on a shared machine, what its wall time holds besides its CPU and its real waits."""
    with open(f"/proc/{pid}/task/{thread}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


class LoadSampler:
    """os.getloadavg() every few seconds in a thread, for the report: the machine is shared."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 1)

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), *os.getloadavg()))
            if self._stop.wait(self.interval):
                return

    def between(self, start: float, end: float) -> tuple[float, float]:
        """(mean, max) of the 1-minute load average sampled between two monotonic times."""
        values = [s[1] for s in self.samples if start <= s[0] <= end] or [os.getloadavg()[0]]
        return sum(values) / len(values), max(values)


# --- small statistics ----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); values need not be sorted."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def crossing_time(samples: Sequence[tuple[float, float]], level: float) -> float | None:
    """When a growing series of (time, value) first reached `level`, interpolated linearly."""
    previous: tuple[float, float] | None = None
    for t, value in samples:
        if value >= level:
            if previous is None or value == previous[1]:
                return t
            t0, v0 = previous
            return t0 + (t - t0) * (level - v0) / (value - v0)
        previous = (t, value)
    return None
