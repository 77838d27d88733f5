"""Latency: events published at a fixed rate, timed until GET /indicators shows each of them.

Every probe is a stay.discharged of a fresh stay (and patient) of one dedicated FINESS, copied
from a simulated stay that counts in a denominator: the k-th probe applied raises that
denominator to k. One key, so one partition all the way: probes are applied in send order.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.common import (
    Http,
    Message,
    histogram_delta,
    histogram_quantile,
    parse_metrics,
    percentile,
)
from processors.collection import Establishments
from processors.settings import Settings
from topics.names import STAYS
from topics.records import StayDischarged
from topics.validation import parse_record


@dataclass(frozen=True)
class Probe:
    finess: str
    template: dict[str, Any]  # a stay.discharged, as JSON
    indicator: str  # the row whose denominator counts the probes
    period: str
    run: str

    def value(self, index: int) -> bytes:
        ident = f"bench-{self.run}-{index}"
        return orjson.dumps(
            {
                **self.template,
                "finess": self.finess,
                "event_id": ident,
                "stay_id": ident,
                "patient_id": ident,  # a new patient: no DS 1.4 join with other probes
            }
        )


def make_probe(messages: list[Message], taken: frozenset[str], settings: Settings) -> Probe:
    """A probe whose copies each add one to a denominator, checked with the real rules."""
    rng = random.Random()
    while True:
        finess = f"95{rng.randrange(10**7):07d}"  # a fresh establishment for every run
        if finess not in taken:
            break
    run = uuid.uuid4().hex[:8]
    for topic, _, value in messages:
        if topic != STAYS:
            continue
        template = orjson.loads(value)
        if template.get("type") != StayDischarged.TYPE:
            continue
        candidate = Probe(finess, template, "", "", run)
        est = Establishments(settings)  # a memory store: only the rows matter here
        seen: list[dict[tuple[str, str], int]] = []
        for index in range(2):
            record = parse_record(candidate.value(index))
            assert isinstance(record, StayDischarged)
            est.apply(record)
            seen.append({(r.indicator, r.period): r.denominator for r in est.rows()})
        for key, denominator in seen[0].items():
            if denominator == 1 and seen[1].get(key) == 2:
                return Probe(finess, template, key[0], key[1], run)
    raise RuntimeError("no simulated stay.discharged counts in a denominator")


@dataclass
class Latency:
    rate: float  # asked, events/s
    sent: int
    send_seconds: float
    seen: int  # probes visible in /indicators at the end
    # Per probe, send → visible in /indicators: at most `upper` (the first response that
    # shows it), at least `lower` (the request before it, which did not).
    upper_ms: list[float]
    lower_ms: list[float]
    poll_ms: float  # median gap between two /indicators responses (the resolution)
    indicators_ms: float  # median duration of one GET /indicators?finess=…
    polls: int
    histogram_p50_ms: float | None  # from sunes_processing_latency_seconds (bucket estimate)
    histogram_p99_ms: float | None
    histogram_count: int

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else 0.0

    @property
    def mid_ms(self) -> list[float]:
        return [(lo + hi) / 2 for lo, hi in zip(self.lower_ms, self.upper_ms, strict=True)]

    def p(self, q: float, which: str = "upper") -> float:
        return percentile(
            {"mid": self.mid_ms, "lower": self.lower_ms, "upper": self.upper_ms}[which], q
        )


def _denominator(body: bytes | None, probe: Probe) -> int | None:
    if body is None:
        return None
    for row in orjson.loads(body):
        if row["indicator"] == probe.indicator and row["period"] == probe.period:
            return int(row["denominator"])
    return 0


def measure_latency(
    bootstrap_servers: str,
    port: int,
    probe: Probe,
    rate: float = 500.0,
    seconds: float = 20.0,
    poll_interval: float = 0.02,
    drain_seconds: float = 60.0,
) -> Latency:
    """Publish `rate` probes/s for `seconds` while a thread polls /indicators?finess=…"""
    http = Http(port)
    metrics = Http(port)
    path = f"/indicators?finess={probe.finess}"
    before = parse_metrics((metrics.get("/metrics") or b"").decode())
    base = _denominator(http.get(path), probe) or 0
    total = int(rate * seconds)
    sent_at: list[float] = []
    polls: list[tuple[float, float, int]] = []  # (request sent, response read, denominator)
    publishing_done = threading.Event()

    def poll() -> None:
        deadline: float | None = None
        while True:
            began = time.time()
            count = _denominator(http.get(path), probe)
            ended = time.time()
            if count is not None:
                polls.append((began, ended, count - base))
                if count - base >= total:
                    return
            if publishing_done.is_set():
                deadline = deadline or time.monotonic() + drain_seconds
                if time.monotonic() > deadline:
                    return
            time.sleep(max(0.0, poll_interval - (ended - began)))

    async def publish() -> float:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=0)
        await producer.start()
        try:
            values = [probe.value(i) for i in range(total)]
            key = probe.finess.encode()
            began = time.monotonic()
            for index, value in enumerate(values):
                delay = began + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at.append(time.time())
                await producer.send(STAYS, value, key=key)
            await producer.flush()
            return time.monotonic() - began
        finally:
            await producer.stop()

    poller = threading.Thread(target=poll, name="indicators-poller", daemon=True)
    poller.start()
    send_seconds = asyncio.run(publish())
    publishing_done.set()
    poller.join()
    after = parse_metrics((metrics.get("/metrics") or b"").decode())
    http.close()
    metrics.close()

    # The k-th probe is visible from the first response with a denominator of at least k.
    upper: list[float] = []
    lower: list[float] = []
    cursor = 0
    for index, sent in enumerate(sent_at):
        while cursor < len(polls) and polls[cursor][2] < index + 1:
            cursor += 1
        if cursor == len(polls):
            break
        upper.append((polls[cursor][1] - sent) * 1000)
        not_yet = polls[cursor - 1][0] if cursor else sent  # the request before
        lower.append(max(0.0, not_yet - sent) * 1000)
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(polls)]
    buckets, count = histogram_delta(after, before)
    p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
    return Latency(
        rate=rate,
        sent=len(sent_at),
        send_seconds=send_seconds,
        seen=polls[-1][2] if polls else 0,
        upper_ms=upper,
        lower_ms=lower,
        poll_ms=percentile(gaps, 0.5) * 1000,
        indicators_ms=percentile([p[1] - p[0] for p in polls], 0.5) * 1000,
        polls=len(polls),
        histogram_p50_ms=None if p50 is None else p50 * 1000,
        histogram_p99_ms=None if p99 is None else p99 * 1000,
        histogram_count=int(count),
    )
