"""The worker's own web views, on a blueprint: /indicators, its worklists, /metrics, /health.

Faust's built-in views (tables, router, statistics) are switched off in streams/worker/app.py:
they would serve the table's stays unauthenticated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import orjson
from faust import web
from faust.types import AppT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from processors.formatting import units_to_csv
from streams.worker.worklists import (
    CSV_TYPE,
    WorklistError,
    access_log,
    check_token,
    page_json,
    parse_query,
    select,
)

if TYPE_CHECKING:
    from streams.worker.app import SunesWorker

blueprint = web.Blueprint("sunes")
# The worker behind each Faust app (a view is given the app, not our worker).
WORKERS: WeakKeyDictionary[AppT, SunesWorker] = WeakKeyDictionary()


def worker_of(view: web.View) -> SunesWorker:
    return WORKERS[view.app]


@blueprint.route("/indicators", name="indicators")
class Indicators(web.View):
    """The same rows as `sunes report`; `?finess=` for one establishment."""

    async def get(self, request: web.Request) -> web.Response:
        finess = request.query.get("finess")
        rows = [r.as_json() for r in worker_of(self).stage.rows(finess)]
        return self.bytes(orjson.dumps(rows), content_type="application/json")


@blueprint.route("/indicators/{finess}/{indicator}/{period}/units", name="units")
class Units(web.View):
    """The units of one figure (streams/worker/worklists.py): behind the access token."""

    async def get(
        self, request: web.Request, finess: str, indicator: str, period: str
    ) -> web.Response:
        worker = worker_of(self)
        client = getattr(request, "remote", None) or "?"  # aiohttp's, under Faust's type
        try:
            check_token(worker.config.api_token, request.headers.get("Authorization"))
            query = parse_query(
                finess, indicator, period, request.query, request.headers.get("Accept")
            )
            units = worker.stage.units(finess, indicator, period)
        except WorklistError as refused:
            access_log.warning(
                "worklist refused (%d) to %s: %s", refused.status, client, refused.message
            )
            body = orjson.dumps({"error": refused.message})
            headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
            return self.bytes(
                body, content_type="application/json", status=refused.status, headers=headers
            )
        page, total = select(units, query)
        access_log.info(
            "worklist %s: %d of %d unit(s) served to %s", query.describe(), len(page), total,
            client,
        )  # fmt: skip
        headers = {"X-Total-Count": str(total), "Cache-Control": "no-store"}
        if query.csv:
            csv = units_to_csv(page)  # as `sunes explain --format csv`
            return self.bytes(csv.encode(), content_type=CSV_TYPE, headers=headers)
        return self.bytes(
            orjson.dumps(page_json(query, page, total)),
            content_type="application/json",
            headers=headers,
        )


@blueprint.route("/metrics", name="metrics")
class Metrics(web.View):
    async def get(self, request: web.Request) -> web.Response:
        # aiohttp wants the charset apart from the content type
        content_type = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
        registry = worker_of(self).metrics_registry
        return self.bytes(generate_latest(registry), content_type=content_type)


@blueprint.route("/health", name="health")
class Health(web.View):
    """200 when ok or degraded (serving, but records expired unread: streams/worker/expired.py;
    a restart would not bring them back); 503 while recovering, with the brokers gone, or an
    establishment failing."""

    async def get(self, request: web.Request) -> web.Response:
        body = worker_of(self).health()
        status = 200 if body["status"] in ("ok", "degraded") else 503
        return self.bytes(orjson.dumps(body), content_type="application/json", status=status)
