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
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Dataset
from processors.settings import Settings
from streams.state import EstablishmentStore
from topics.records import EstablishmentRecord, Event
from topics.validation import parse_record

# --- the domain code alone -------------------------------------------------------------------


@dataclass
class Domain:
    events: int
    parse_seconds: float  # parse_record of every event
    apply_seconds: float  # EstablishmentStore.apply (facts, indexes, aggregates, JSON)
    table_writes: int  # (key, value) pairs the agent writes to its facts table
    stays: int  # open stays held in the end
    entities: int  # stays + documents + recipients (what /health calls open_entities)
    rows_ms: float  # one EstablishmentStore.rows() over every establishment (GET /indicators)
    hotspots: str = ""  # cProfile, top functions by own time

    @property
    def rate(self) -> float:
        """Events/s of one parse + apply: the agent's work without Faust and Kafka."""
        return self.events / (self.parse_seconds + self.apply_seconds)


def domain_apply(dataset: Dataset, partitions: int = 4, profile_events: int = 0) -> Domain:
    """Run the data set through the establishment agent's own calls, timed; then, when
    profile_events > 0, that many events again under cProfile on a fresh store."""
    store = EstablishmentStore(Settings(), partitions)
    events: list[Event] = []
    began = time.perf_counter()
    for _, _, value in dataset.messages:
        record = parse_record(value)
        if isinstance(record, EstablishmentRecord):
            store.set_registry(record)
        elif isinstance(record, Event):
            events.append(record)
    parsed = time.perf_counter()
    writes = 0
    for event in events:
        writes += len(store.apply(event))
    applied = time.perf_counter()
    store.rows()
    rows_ms = (time.perf_counter() - applied) * 1000
    stays = sum(len(e.stays) for e in store.establishments.values())
    result = Domain(
        len(events),
        parsed - began,
        applied - parsed,
        writes,
        stays,
        store.open_entities(),
        rows_ms,
    )
    if profile_events > 0:
        result.hotspots = _profile(dataset, profile_events, partitions)
    return result


def _profile(dataset: Dataset, limit: int, partitions: int, top: int = 18) -> str:
    store = EstablishmentStore(Settings(), partitions)
    profiler = cProfile.Profile()
    profiler.enable()
    count = 0
    for _, _, value in dataset.messages:
        record = parse_record(value)  # the agent parses every event again (after ingest)
        if isinstance(record, EstablishmentRecord):
            store.set_registry(record)
        elif isinstance(record, Event):
            store.apply(record)
            count += 1
            if count >= limit:
                break
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

    def __init__(self, pid: int, output: Path, rate: int = 100) -> None:
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
                "--nonblocking",
                "--idle",
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


ROOT = str(Path(__file__).resolve().parents[1]) + "/"  # the project's own code lives here

# Where a sampled stack spends its time: the first rule whose needle is in a frame, looking
# from the top of the stack down. Idle is the event loop waiting in select/epoll.
AREAS: tuple[tuple[str, str], ...] = (
    ("idle (event loop waiting)", "select (selectors.py"),
    ("orjson", "orjson"),
    ("prometheus_client", "prometheus_client/"),
    ("topics (parse_record, validation)", "/topics/"),
    ("processors (facts, rules, aggregates)", "/processors/"),
    ("streams (the agents, the store)", "/streams/"),
    ("faust tables / changelog", "faust/tables/"),
    ("faust streams / agents", "faust/streams/"),
    ("faust transport / producer / consumer", "faust/transport/"),
    ("faust other", "/faust/"),
    ("mode (service framework)", "/mode/"),
    ("aiokafka", "/aiokafka/"),
    ("aiohttp (web views)", "/aiohttp/"),
    ("asyncio", "/asyncio/"),
)


@dataclass
class Profile:
    samples: int
    areas: list[tuple[str, float]] = field(default_factory=list)  # (area, % of samples)
    own: list[tuple[str, float]] = field(default_factory=list)  # top functions by own time %
    inclusive: list[tuple[str, float]] = field(default_factory=list)  # our code, inclusive %


def summarize(collapsed: Path, top: int = 15) -> Profile:
    """Read py-spy's collapsed stacks ("frame;frame;... count", root first)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, raw = line.rpartition(" ")
        if not stack or not raw.isdigit():
            continue
        count = int(raw)
        frames = [f for f in stack.split(";") if not f.startswith(("thread ", "process "))]
        if not frames:
            continue
        total += count
        own[_short(frames[-1])] += count
        for name in {_short(f) for f in frames if ROOT in f and "/.venv/" not in f}:
            inclusive[name] += count
        areas[_area(frames)] += count
    pct = 100.0 / total if total else 0.0
    return Profile(
        total,
        [(a, c * pct) for a, c in areas.most_common()],
        [(f, c * pct) for f, c in own.most_common(top)],
        [(f, c * pct) for f, c in inclusive.most_common(top)],
    )


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):  # from the top of the stack
        for area, needle in AREAS:
            if needle in frame:
                return area
    return "other"


def _short(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py:12)` → `func (pkg/mod.py:12)`."""
    name, _, where = frame.partition(" (")
    where = _PREFIX.sub("", where.rstrip(")").replace(ROOT, ""))
    return f"{name} ({where})" if where else name


_PREFIX = re.compile(r"^.*(?:site-packages|/lib/python3\.\d+)/")
