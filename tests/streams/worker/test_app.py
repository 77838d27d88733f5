"""streams/worker/app.py: the worker stops when its ingest stage ends (never serves stale
figures), also on a CancelledError that is not a stop of the worker's."""

from __future__ import annotations

import asyncio

import pytest

from streams.worker.app import IngestCancelled, SunesWorker
from streams.worker.config import WorkerConfig


def worker_whose_ingest(ends: type[BaseException]) -> tuple[SunesWorker, list[BaseException]]:
    worker = SunesWorker(WorkerConfig(store="memory://", app_id="app-test", ingest="inline"))
    crashes: list[BaseException] = []

    async def run() -> None:
        raise ends

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    worker.ingestor.run = run  # type: ignore[method-assign]
    worker.app.crash = crash  # type: ignore[method-assign]
    return worker, crashes


def test_an_ingest_stage_ended_by_a_passed_on_cancel_stops_the_worker() -> None:
    """aiokafka can pass a CancelledError of its own tasks on (streams/worker/expired.py):
    the stage's task then ended silently and the worker served stale figures."""
    worker, crashes = worker_whose_ingest(asyncio.CancelledError)
    asyncio.run(worker._run_ingest())
    assert [type(c) for c in crashes] == [IngestCancelled]
    assert worker._status() == "ingest_failed"


def test_an_ingest_stage_that_raises_stops_the_worker() -> None:
    worker, crashes = worker_whose_ingest(ConnectionError)
    asyncio.run(worker._run_ingest())
    assert [type(c) for c in crashes] == [ConnectionError]
    assert worker.ingest_failure == "ConnectionError"  # the type only: a message may hold data


def test_a_stopping_worker_cancels_its_ingest_stage_without_a_crash() -> None:
    worker = SunesWorker(WorkerConfig(store="memory://", app_id="app-test", ingest="inline"))
    crashes: list[BaseException] = []

    async def run() -> None:
        await asyncio.sleep(60)

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    worker.ingestor.run = run  # type: ignore[method-assign]
    worker.app.crash = crash  # type: ignore[method-assign]

    async def stop_it() -> None:
        task = asyncio.ensure_future(worker._run_ingest())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(stop_it())
    assert crashes == [] and worker.ingest_failure is None


def test_health_says_starting_between_the_first_recovery_and_the_ingest_stages_start() -> None:
    """Faust starts the app's tasks (the ingest stage among them) after the table's first
    recovery: /health said `ok` in between, before anything read (a worker's start-up wait
    then passed too early; test_expired_kafka caught it)."""
    worker = SunesWorker(WorkerConfig(store="memory://", app_id="app-test", ingest="inline"))
    assert worker._status() == "recovering"  # until the first recovery ends

    asyncio.run(worker._on_partitions_assigned(worker.app, set()))
    assert worker._status() == "recovering"
    worker.stage.recovering = False  # the recovery ended; the ingest task not begun
    assert worker._status() == "starting"
