"""The ingest's poll size (`--ingest-batch`): how long one poll holds the event loop.

    .venv/bin/python -m bench.ingest_poll [--sizes 5000,10000,20000] [--rounds 5]

The ingest stage bundles a whole poll before it yields (streams/worker/ingest.py: validation
and bundling are synchronous, the producer's sends return at once): meanwhile the worker's
only event loop runs nothing else, neither the establishment agent nor /health, /metrics or
/indicators. This times `Ingestor._process` in process on polls of the first N simulated
valid events (50 establishments × 30 stays/day, seed 1), with a producer that acknowledges
at once (no broker): wall and CPU time per poll (median and worst of the rounds), CPU per
event, the bundles it makes and the bytes it allocates at its peak (tracemalloc, one more
round). Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import tracemalloc
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from bench.common import build_dataset
from monitoring.pipeline import PipelineMetrics
from streams.worker.config import WorkerConfig
from streams.worker.ingest import Ingestor

INTERNAL = "bench-events-by-finess"
PARTITIONS = 6  # the contract's input partitions: a poll spans them


class AckingProducer:
    """Takes every send and acknowledges it at once; counts the bundles and their bytes."""

    def __init__(self) -> None:
        self.bundles = 0
        self.largest = 0

    async def send(
        self, topic: str, value: bytes | None = None, *, key: bytes | None = None, **_: Any
    ) -> asyncio.Future[Any]:
        if topic == INTERNAL:
            self.bundles += 1
            self.largest = max(self.largest, len(value or b""))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def poll_of(
    messages: list[tuple[str, bytes | None, bytes]],
) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
    now_ms = int(time.time() * 1000)
    batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
    for offset, (topic, key, value) in enumerate(messages):
        tp = TopicPartition(topic, hash(key) % PARTITIONS)
        batches.setdefault(tp, []).append(
            ConsumerRecord(topic, tp.partition, offset, now_ms, 0, key, value, None, 0, 0, [])
        )
    return batches


async def one_poll(
    batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
) -> tuple[float, float, AckingProducer]:
    ingestor = Ingestor(
        WorkerConfig(store="memory://"), INTERNAL, PipelineMetrics(CollectorRegistry()), {}
    )
    producer = AckingProducer()
    wall, cpu = time.perf_counter(), time.process_time()
    await ingestor._process(batches, producer)
    return time.perf_counter() - wall, time.process_time() - cpu, producer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_poll", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--sizes", default="5000,10000,20000", help="messages per poll")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    dataset = build_dataset(max(sizes))
    events = [m for m in dataset.messages[dataset.registry :]]
    print(f"load {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, {args.rounds} rounds")
    print(
        f"{'poll':>7} {'wall ms p50 / max':>18} {'CPU ms p50':>11} {'CPU µs/ev':>10} "
        f"{'bundles':>8} {'largest':>9} {'peak alloc':>11}"
    )
    for size in sizes:
        batches = poll_of(events[:size])
        walls, cpus = [], []
        for _ in range(args.rounds):
            wall, cpu, producer = asyncio.run(one_poll(batches))
            walls.append(wall)
            cpus.append(cpu)
        tracemalloc.start()
        asyncio.run(one_poll(batches))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"{size:>7,} {statistics.median(walls) * 1e3:>8.0f} / {max(walls) * 1e3:<7.0f} "
            f"{statistics.median(cpus) * 1e3:>11.0f} {statistics.median(cpus) / size * 1e6:>10.1f} "
            f"{producer.bundles:>8} {producer.largest / 1024:>6.0f} KiB {peak / 2**20:>7.1f} MiB"
        )
    print(f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
