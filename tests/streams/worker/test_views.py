"""Every route the worker answers: the product's own views only, none of Faust's.

Faust's built-in views would serve a stay's facts (`/table/facts/<key>/`: patient id, dates,
MSSanté addresses), the partition assignment and sensor counters, unauthenticated.
"""

from __future__ import annotations

from streams.worker.app import SunesWorker
from streams.worker.config import WorkerConfig


async def test_the_worker_serves_only_its_own_views() -> None:
    worker = SunesWorker(WorkerConfig(store="memory://"))
    web = worker.app.web
    web.init_server()
    routes = {(r.method, r.resource.canonical) for r in web.web_app.router.routes() if r.resource}
    assert routes == {
        (method, path)
        for path in (
            "/indicators",
            "/indicators/{finess}/{indicator}/{period}/units",
            "/metrics",
            "/health",
            "/",
            # the pages for people (streams/worker/pages)
            "/ui/",
            "/ui/{finess}/{indicator}/{period}",
            "/ui/figures.json",
            "/ui/login",
            "/ui/callback",
        )
        for method in ("GET", "HEAD")
    } | {("POST", "/ui/logout"), ("HEAD", "/ui/logout")}


async def test_health_says_recovering_until_the_state_is_read_back() -> None:
    worker = SunesWorker(WorkerConfig(store="memory://"))
    health = worker.health()
    assert health["status"] == "recovering"
    assert health["partitions"] == [] and health["offsets"] == {}
