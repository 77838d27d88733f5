"""A worker's web views in process (aiohttp's test client), over a collection of registry
records and events: for the views, worklists, access and page tests."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

from processors.collection import Establishments
from processors.store import MemoryStore
from streams.worker.app import SunesWorker
from streams.worker.config import WorkerConfig
from topics.records import EstablishmentRecord
from topics.validation import parse_record

_WORKERS: dict[int, SunesWorker] = {}  # each test client's worker


async def serving(config: WorkerConfig, objs: list[dict[str, Any]]) -> TestClient:
    """A started test client of a worker whose collection holds OBJS."""
    worker = SunesWorker(config)
    # Faust's table takes writes only inside its agent: the same collection on a dict here
    # (the real table behind these views: tests/streams/worker/test_worklists_kafka.py).
    # The stage, the recomputation and through them /metrics read the collection swapped in.
    establishments = Establishments(worker.config.rules, MemoryStore())
    worker.stage.establishments = worker.establishments = establishments
    worker.recomputation.establishments = establishments
    for obj in objs:
        record = parse_record(orjson.dumps(obj))
        if isinstance(record, EstablishmentRecord):
            establishments.set_registry(record)
        else:
            establishments.apply(record)
    establishments.flush()
    web = worker.app.web
    web.init_server()
    client = TestClient(TestServer(web.web_app))
    await client.start_server()
    _WORKERS[id(client)] = worker
    return client


def worker_of(client: TestClient) -> SunesWorker:
    return _WORKERS[id(client)]
