"""The worker's own web views, on a blueprint: /indicators, its worklists, /metrics, /health.

Faust's built-in views (tables, router, statistics) are switched off in streams/worker/app.py:
they would serve the table's stays unauthenticated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from weakref import WeakKeyDictionary

import orjson
from faust import web
from faust.types import AppT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from monitoring.collector import GivenFamilies, restricted
from processors.formatting import units_to_csv
from streams.access.errors import AccessDenied
from streams.access.log import access_log, log_access, printable
from streams.access.scopes import Principal, Scope, is_finess
from streams.worker.worklists import (
    CSV_TYPE,
    WorklistError,
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


def _refusal(
    view: web.View, refused: AccessDenied | WorklistError, what: str, client: str
) -> web.Response:
    access_log.warning(
        "%s refused (%d) to %s: %s",
        printable(what), refused.status, client, printable(refused.message),
    )  # fmt: skip
    body = orjson.dumps({"error": refused.message})
    headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
    return view.bytes(body, content_type="application/json", status=refused.status, headers=headers)


def _client(request: web.Request) -> str:
    return getattr(request, "remote", None) or "?"  # aiohttp's, under Faust's type


def _check_finess(finess: str) -> None:
    if not is_finess(finess):
        raise WorklistError(400, "not a FINESS: give its 9 characters (e.g. 750000001)")


async def _figures_caller(worker: SunesWorker, request: web.Request) -> Principal | None:
    """None when the figures are open (SUNES_FIGURES_ACCESS=open); else the caller, whose
    scopes limit what /indicators and /metrics show."""
    if worker.config.access.figures_access == "open":
        return None
    return await worker.access.authenticate(request.headers.get("Authorization"))


@blueprint.route("/indicators", name="indicators")
class Indicators(web.View):
    """The same rows as `sunes report`; `?finess=` for one establishment. With
    SUNES_FIGURES_ACCESS=token, only the establishments of the caller's scopes."""

    async def get(self, request: web.Request) -> web.Response:
        worker = worker_of(self)
        finess = request.query.get("finess")
        asked = f"indicators finess={finess or 'all'}"
        try:
            caller = await _figures_caller(worker, request)
            registry = worker.establishments.registry
            if caller is not None and finess is not None:
                _check_finess(finess)
                worker.access.require(caller, finess, registry)
        except (AccessDenied, WorklistError) as refused:
            return _refusal(self, refused, asked, _client(request))
        rows = worker.stage.rows(finess)
        used: set[str] = set()
        if caller is not None:
            scope_of = {f: caller.scope_for(f, registry) for f in {r.finess for r in rows}}
            rows = [r for r in rows if scope_of[r.finess] is not None]
            used = {str(scope_of[r.finess]) for r in rows}
        log_access(caller, used, asked, len(rows), _client(request))
        return self.bytes(
            orjson.dumps([r.as_json() for r in rows]), content_type="application/json"
        )


@blueprint.route("/indicators/{finess}/{indicator}/{period}/units", name="units")
class Units(web.View):
    """The units of one figure (streams/worker/worklists.py): to a caller whose scope covers
    the establishment (streams/access)."""

    async def get(
        self, request: web.Request, finess: str, indicator: str, period: str
    ) -> web.Response:
        worker = worker_of(self)
        client = _client(request)
        try:
            _check_finess(finess)
            caller = await worker.access.authenticate(request.headers.get("Authorization"))
            scope = worker.access.require(caller, finess, worker.establishments.registry)
            query = parse_query(
                finess, indicator, period, request.query, request.headers.get("Accept")
            )
            units = worker.stage.units(finess, indicator, period)
        except (AccessDenied, WorklistError) as refused:
            return _refusal(self, refused, f"worklist {finess} {indicator} {period}", client)
        page, total = select(units, query)
        log_access(
            caller, {str(scope)}, f"worklist {query.describe()} of {total}", len(page), client
        )
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
    """All the worker's series when open or to a national caller; to another caller with
    SUNES_FIGURES_ACCESS=token, only the per-establishment series of its scopes (no pipeline
    series: they are the operator's). `?name[]=x&name[]=y`: only the samples of those names,
    as prometheus_client's own handler (an establishment's figures are computed only when
    one of their families is named: a cheap scrape of the pipeline's counters)."""

    async def get(self, request: web.Request) -> web.Response:
        # aiohttp wants the charset apart from the content type
        content_type = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
        worker = worker_of(self)
        try:
            caller = await _figures_caller(worker, request)
        except AccessDenied as refused:
            return _refusal(self, refused, "metrics", _client(request))
        registry = worker.establishments.registry
        # aiohttp's MultiDict under Faust's Mapping type: every name[] given
        names = set(cast(Any, request.query).getall("name[]", [])) or None
        if caller is None or Scope("national", None) in caller.scopes:
            # the pipeline's series, then the indicators' kept text (monitoring.collector)
            pipeline: Collector = worker.metrics_registry
            if names is not None:
                pipeline = GivenFamilies(list(restricted(pipeline.collect(), names)))
            body = generate_latest(pipeline) + await worker.indicators.serve(names=names)
            used = {"national"} if caller is not None else set()
            shown = len(worker.establishments.by_finess)
        else:
            mine = [e for e in worker.stage.current() if caller.scope_for(e.finess, registry)]
            body = await worker.indicators.serve(mine, names)
            used = {str(caller.scope_for(e.finess, registry)) for e in mine}
            shown = len(mine)
        log_access(caller, used, "metrics", shown, _client(request), unit="establishment(s)")
        return self.bytes(body, content_type=content_type)


@blueprint.route("/health", name="health")
class Health(web.View):
    """200 when ok or degraded (serving, but records expired unread: streams/worker/expired.py;
    a restart would not bring them back); 503 while recovering or recomputing, with the brokers gone, or an
    establishment failing."""

    async def get(self, request: web.Request) -> web.Response:
        body = worker_of(self).health()
        status = 200 if body["status"] in ("ok", "degraded") else 503
        return self.bytes(orjson.dumps(body), content_type="application/json", status=status)
