"""Where the time goes: the establishment agent's domain code in-process (optionally under
cProfile), and a running worker sampled by py-spy (if installed: `pip install py-spy`)."""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Dataset, entities, store_counts
from processors.collection import Establishments
from processors.settings import Settings
from processors.state import STAY
from processors.store import MemoryStore
from topics.records import EstablishmentRecord, Event
from topics.validation import parse_record

# The worker flushes its state once per bundle (one FINESS's events of one poll); in-process
# the domain flushes every FLUSH_EVERY events, with the worker's default cache.
FLUSH_EVERY = 1000
CACHE_ENTRIES = 100_000

# --- the domain code alone -------------------------------------------------------------------


@dataclass
class Domain:
    events: int
    parse_seconds: float  # parse_record of every event
    apply_seconds: float  # Establishments.apply + flush every FLUSH_EVERY events
    table_writes: int  # entries written by the flushes (the worker's table writes)
    stays: int  # stays in the store in the end
    entities: int  # stays + documents + recipients in the store
    cached_entries: int  # decoded entries in the cache in the end (what /health reports)
    rows_ms: float  # one Establishments.rows() over every establishment (GET /indicators)
    hotspots: str = ""  # cProfile, top functions by own time

    @property
    def rate(self) -> float:
        """Events/s of one parse + apply: the agent's work without Faust and Kafka."""
        return self.events / (self.parse_seconds + self.apply_seconds)


def domain_apply(
    dataset: Dataset, profile_events: int = 0, clock: Callable[[], float] = time.perf_counter
) -> Domain:
    """Run the data set through the establishment agent's own calls (over a MemoryStore),
    timed by `clock` (wall time; bench.mypyc passes CPU time); then, when profile_events > 0,
    that many events again under cProfile."""
    domain = Establishments(Settings(), MemoryStore(), CACHE_ENTRIES)
    events: list[Event] = []
    began = clock()
    for _, _, value in dataset.messages:
        record = parse_record(value)
        if isinstance(record, EstablishmentRecord):
            domain.set_registry(record)
        elif isinstance(record, Event):
            events.append(record)
    parsed = clock()
    writes = 0
    for start in range(0, len(events), FLUSH_EVERY):
        for event in events[start : start + FLUSH_EVERY]:
            domain.apply(event)
        writes += domain.flush()
    applied = clock()
    domain.rows()
    rows_ms = (clock() - applied) * 1000
    counts = store_counts(domain.store)
    result = Domain(
        len(events),
        parsed - began,
        applied - parsed,
        writes,
        counts[STAY],
        entities(counts),
        len(domain.cache.entries),
        rows_ms,
    )
    if profile_events > 0:
        result.hotspots = _profile(dataset, profile_events)
    return result


def _profile(dataset: Dataset, limit: int, top: int = 18) -> str:
    domain = Establishments(Settings(), MemoryStore(), CACHE_ENTRIES)
    profiler = cProfile.Profile()
    profiler.enable()
    count = 0
    for _, _, value in dataset.messages:
        record = parse_record(value)  # the agent parses every event again (after ingest)
        if isinstance(record, EstablishmentRecord):
            domain.set_registry(record)
        elif isinstance(record, Event):
            domain.apply(record)
            count += 1
            if count % FLUSH_EVERY == 0:
                domain.flush()
            if count >= limit:
                break
    domain.flush()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- a running worker, sampled by py-spy ---------------------------------------------------------


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class PySpy:
    """`py-spy record --format raw` (collapsed stacks) on a pid until stop()."""

    def __init__(self, pid: int, output: Path, rate: int = 100, native: bool = False) -> None:
        exe = py_spy_path()
        if exe is None:
            raise FileNotFoundError("py-spy is not installed (`.venv/bin/pip install py-spy`)")
        self.output = output
        self.process = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(output),
                "--idle",
                "--threads",
                # C frames too (uvloop, orjson, RocksDB): without them their time lands on
                # the innermost Python frame, e.g. the event loop's on the worker's run call
                *(["--native"] if native else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> str:
        """Stop sampling (py-spy writes its file on SIGINT); return its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err.decode(errors="replace")


# Who a sampled stack works for: the first of these rules that a frame of the task matches.
OWNERS: tuple[tuple[str, str], ...] = (
    ("Metrics.get (", "GET /metrics"),
    ("Indicators.get (", "GET /indicators"),
    ("Health.get (", "GET /health"),
    ("SunesWorker._ingest (", "ingest agent"),
    ("(streams/worker/ingest.py", "ingest stage (streams/worker/ingest.py)"),
    ("SunesWorker._establishments (", "establishments agent"),
    ("SunesWorker._rebuild_from_table (", "recovery (aggregates from the table)"),
    ("SunesWorker._read_registry (", "registry reader"),
    ("(aiokafka/producer/", "aiokafka producer (sender)"),
    ("(faust/transport/producer.py", "faust producer buffer"),
    ("(faust/transport/consumer.py", "faust consumer (fetch → streams)"),
    ("(faust/transport/conductor.py", "faust conductor (dispatch)"),
    ("(faust/tables/", "faust tables"),
    ("(aiokafka/", "aiokafka other"),
    ("(faust/", "faust other"),
    ("(mode/", "mode services"),
)
# What it does there: the first of these frames from the top of the stack.
LEAVES: tuple[tuple[str, str], ...] = (
    ("(faust/stores/", "faust RocksDB store (rocksdict)"),
    ("(streams/worker/table_store.py", "domain: table store (Faust table)"),
    ("(processors/codec.py", "domain: state codec"),
    ("(processors/", "domain: processors (facts, rules, aggregates, cache)"),
    ("parse_record (", "domain: validation"),
    ("record_from_object (", "domain: validation"),
    ("_bundle (", "bundles (orjson)"),
    ("(prometheus_client/", "prometheus_client"),
    ("(faust/tables/", "faust tables / changelog"),
    ("(faust/topics.py", "faust send"),
    ("(faust/channels.py", "faust send"),
    ("(faust/streams.py", "faust stream iteration / acks"),
    ("(faust/", "faust other"),
    ("(aiokafka/", "aiokafka"),
    ("(mode/", "mode"),
    ("(monitoring/", "monitoring"),
    ("(streams/", "streams (own code)"),
    ("(asyncio/", "asyncio machinery"),
)
IDLE = ("select (selectors.py", "wait (threading.py", "_wait_for_tstate_lock")


@dataclass
class Profile:
    samples: int  # of the main thread (the event loop running the agents)
    idle_pct: float  # of those, waiting in epoll
    threads: list[tuple[str, int, float]] = field(default_factory=list)  # (name, samples, busy %)
    owners: list[tuple[str, float, list[tuple[str, float]]]] = field(default_factory=list)
    own: list[tuple[str, float]] = field(default_factory=list)  # top functions, own time


def summarize(collapsed: Path, top: int = 15) -> Profile:
    """Read py-spy's collapsed stacks (`--threads`: "thread (tid): name;frame;... count");
    percentages are of the main thread's busy samples."""
    per_thread: Counter[str] = Counter()
    idle_thread: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = {}
    own: Counter[str] = Counter()
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, raw = line.rpartition(" ")
        if not stack or not raw.isdigit():
            continue
        count = int(raw)
        frames = stack.split(";")
        thread = "MainThread"
        if frames[0].startswith("thread ("):
            thread = frames.pop(0).partition(": ")[2] or "?"
        if not frames:
            continue
        per_thread[thread] += count
        if any(mark in frames[-1] for mark in IDLE):
            idle_thread[thread] += count
            continue
        if thread != "MainThread":
            continue
        owner = _owner(frames)
        owners[owner] += count
        leaves.setdefault(owner, Counter())[_first(frames[::-1], LEAVES, "other")] += count
        own[_short(frames[-1])] += count
    main = per_thread["MainThread"]
    busy = main - idle_thread["MainThread"]
    pct = 100.0 / busy if busy else 0.0
    return Profile(
        main,
        idle_thread["MainThread"] * 100.0 / main if main else 0.0,
        [(t, n, (n - idle_thread[t]) * 100.0 / n) for t, n in per_thread.most_common()],
        [
            (o, c * pct, [(leaf, lc * pct) for leaf, lc in leaves[o].most_common(6)])
            for o, c in owners.most_common()
        ],
        [(f, c * pct) for f, c in own.most_common(top)],
    )


def print_profile(profile: Profile) -> None:
    print(
        f"   py-spy, main thread (the event loop of the agents): {profile.samples:,} samples, "
        f"{profile.idle_pct:.0f} % idle in epoll"
    )
    print("   threads: " + ", ".join(f"{t} {b:.0f} % busy" for t, _, b in profile.threads))
    print("   main thread busy time, by whom it is for (and what it does there):")
    for owner, pct, leaves in profile.owners:
        print(f"     {pct:5.1f} %  {owner}")
        for leaf, leaf_pct in leaves:
            print(f"              {leaf_pct:5.1f} %  {leaf}")
    print("   top functions, own time (% of main thread busy):")
    for name, pct in profile.own:
        print(f"     {pct:5.1f} %  {name}")


def _owner(frames: list[str]) -> str:
    """The first OWNERS rule met anywhere in the task's frames (those under Handle._run:
    below it are only the worker's start-up frames and the event loop)."""
    start = next((i for i, f in enumerate(frames) if f.startswith("Handle._run (")), None)
    if start is None:
        return "event loop (select, scheduling)"
    task = frames[start + 1 :]
    for needle, name in OWNERS:
        if any(needle in frame for frame in task):
            return name
    return "asyncio callbacks (futures, tasks)"


def _first(frames: list[str], rules: tuple[tuple[str, str], ...], default: str) -> str:
    for frame in frames:
        for needle, name in rules:
            if needle in frame:
                return name
    return default


def _short(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py:12)` → `func (pkg/mod.py:12)`."""
    name, _, where = frame.partition(" (")
    where = _PREFIX.sub("", where.rstrip(")"))
    return f"{name} ({where})" if where else name


_PREFIX = re.compile(r"^.*(?:site-packages|/lib/python3\.\d+)/")
