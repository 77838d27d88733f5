"""How long the pages take in one worker, in process (no Kafka, no browser): the figures page,
a worklist page and its CSV, over simulated establishments. Prints, never asserts.

    .venv/bin/python -m bench.pages [--establishments 20] [--days 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bench.common import feed_simulation
from processors.collection import Establishments
from processors.store import MemoryStore
from simulator.generator import SimulationConfig
from streams.access.config import AccessConfig
from streams.access.static import hash_token
from streams.worker.app import SunesWorker
from streams.worker.config import WorkerConfig
from streams.worker.pages.config import PageConfig

TOKEN = "bench-pages-token-0123456789abcdef"


async def timed(client: TestClient, path: str, runs: int) -> tuple[float, int]:
    """Median milliseconds of GET path, and the body's size."""
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        response = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        body = await response.read()
        times.append(1000 * (time.perf_counter() - start))
        assert response.status == 200, body[:200]
        size = len(body)
    return statistics.median(times), size


async def run(establishments: int, days: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.toml"
        tokens.write_text(
            f'[[token]]\nname = "bench"\nsha256 = "{hash_token(TOKEN)}"\nscopes = ["national"]\n'
        )
        worker = SunesWorker(WorkerConfig(
            store="memory://", access=AccessConfig(tokens_file=tokens),
            pages=PageConfig(session_secret="b" * 32),
        ))  # fmt: skip
        collection = Establishments(worker.config.rules, MemoryStore())
        worker.stage.establishments = worker.establishments = collection
        config = SimulationConfig(
            establishments=establishments, stays_per_day=30, days=days, seed=1
        )
        events = feed_simulation(collection, config)
        worker.app.web.init_server()
        client = TestClient(TestServer(worker.app.web.web_app))
        await client.start_server()
        try:
            rows = collection.rows()
            largest = max(rows, key=lambda r: r.denominator)
            page = f"/ui/{largest.finess}/{largest.indicator}/{largest.period}"
            print(f"{establishments} establishments, {events} events, {len(rows)} figures; "
                  f"largest list {largest.denominator} units; cpus {os.cpu_count()}, "
                  f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
            for label, path in (
                ("figures page /ui/", "/ui/"),
                ("worklist page, 500 units", page + "?page_size=500"),
                ("worklist page, 25 units", page + "?page_size=25"),
                ("CSV, up to 10000 units", page + "?format=csv&page_size=10000"),
            ):
                ms, size = await timed(client, path, runs)
                print(f"  {label:<28} {ms:8.1f} ms (median of {runs})  {size / 1024:8.1f} KiB")
        finally:
            await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--establishments", type=int, default=20)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.establishments, args.days, args.runs))


if __name__ == "__main__":
    main()
