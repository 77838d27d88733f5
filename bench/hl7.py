"""HL7 v2 in: messages per second from MLLP to Kafka, through one `sunes hl7 listen`.

    .venv/bin/python -m bench.hl7                      # Apache Kafka from the cached jars
    .venv/bin/python -m bench.hl7 --messages 20000 --connections 1,4,16
    KAFKA_BOOTSTRAP_SERVERS=host:9092 .venv/bin/python -m bench.hl7

The messages are the scenario of tests/fixtures/hl7/scenario/ (ADT, MDM with a base64 CDA,
ORU with two, ZAM), sent once as they are (so that every ZAM finds its document), then over
and over with a fresh MSH-10 each time: every message is converted and its events published
(new event_ids). Each connection sends one message, waits for its ACK (which comes only once
Kafka has acknowledged the events), then sends the next: what a hospital's integration engine
does. Prints messages/s, events/s and the ACK latency per connection count; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import percentile
from streams.brokers import start_broker
from streams.hl7.mllp import END, frame
from streams.hl7.testing import ListenerProcess, read_ack
from streams.kafka_clients import BOOTSTRAP_ENV

SCENARIO = Path(__file__).parents[1] / "tests" / "fixtures" / "hl7" / "scenario"
_EVENTS = re.compile(r"^sunes_hl7_events_published_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def with_control_id(message: bytes, control_id: str) -> bytes:
    """The message with another MSH-10."""
    head, sep, rest = message.partition(b"\r")
    fields = head.split(b"|")
    fields[9] = control_id.encode()
    return b"|".join(fields) + sep + rest


@dataclass
class Run:
    connections: int
    messages: int
    events: float
    seconds: float
    latencies: list[float]
    refused: int

    def lines(self) -> list[str]:
        rate = self.messages / self.seconds if self.seconds else 0.0
        ms = [1000 * percentile(self.latencies, q) for q in (0.5, 0.95, 0.99)]
        return [
            f"{self.connections:>3} connection(s): {self.messages:,} messages in "
            f"{self.seconds:.1f} s = {rate:,.0f} messages/s, {self.events / self.seconds:,.0f} "
            f"events/s to Kafka; ACK p50 {ms[0]:.1f} ms, p95 {ms[1]:.1f} ms, p99 {ms[2]:.1f} ms"
            + (f"; {self.refused} not AA" if self.refused else "")
        ]


async def _connection(port: int, messages: list[bytes], latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    refused = 0
    try:
        for message in messages:
            began = time.perf_counter()
            writer.write(frame(message))
            await writer.drain()
            ack = read_ack((await reader.readuntil(END))[1 : -len(END)])
            latencies.append(time.perf_counter() - began)
            refused += ack.code != "AA"
    finally:
        writer.close()
    return refused


def events_published(listener: ListenerProcess) -> float:
    return sum(float(value) for value in _EVENTS.findall(listener.metrics()))


def run(
    listener: ListenerProcess, templates: list[bytes], connections: int, total: int,
    fresh_ids: bool = True,
) -> Run:  # fmt: skip
    tag = uuid.uuid4().hex[:6]
    batches = [
        [
            with_control_id(templates[n % len(templates)], f"B{tag}{c}.{n}")
            if fresh_ids
            else templates[n % len(templates)]
            for n in range(c, total, connections)
        ]
        for c in range(connections)
    ]
    latencies: list[float] = []
    before = events_published(listener)

    async def all_connections() -> list[int]:
        return await asyncio.gather(*(_connection(listener.port, b, latencies) for b in batches))

    began = time.perf_counter()
    refused = sum(asyncio.run(all_connections()))
    seconds = time.perf_counter() - began
    return Run(connections, total, events_published(listener) - before, seconds, latencies, refused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="per connection count")
    parser.add_argument("--connections", default="1,4,16", help="comma-separated counts")
    parser.add_argument("--brokers", default=os.environ.get(BOOTSTRAP_ENV))
    args = parser.parse_args()
    templates = [path.read_bytes() for path in sorted(SCENARIO.glob("*.hl7"))]
    broker = None if args.brokers else start_broker("apache")
    brokers = args.brokers or broker.bootstrap_servers  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="bench-hl7-") as tmp:
        listener = ListenerProcess(
            brokers, Path(tmp), topic_prefix=f"bench-{uuid.uuid4().hex[:6]}."
        )
        try:
            listener.start()
            warm = run(
                listener, templates, 1, len(templates), fresh_ids=False
            )  # as they are: ZAMs find documents
            print(f"warm-up: the {len(templates)} scenario messages, {warm.refused} not AA")
            for count in (int(c) for c in args.connections.split(",")):
                for line in run(listener, templates, count, args.messages).lines():
                    print(line, flush=True)
            print(f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPU(s)")
        finally:
            listener.stop()
            if broker is not None:
                broker.stop()


if __name__ == "__main__":
    main()
