"""The figures and worklist pages, on a blueprint of the worker's web server (aiohttp under
Faust; signing in and out: streams.worker.pages.signin):

    GET  /ui/                                  the figures of every establishment in scope
    GET  /ui/{finess}/{indicator}/{period}     a figure's units: filters, paging, ?format=csv
    GET  /ui/figures.json                      this worker's share of the figures (for peers)
    GET  /ui/login, /ui/callback               signing in (streams.worker.pages.oidc)
    POST /ui/logout                            signing out, here and at the provider

Who is asking comes from the session cookie (a person) or a bearer token (a peer forwarding
a person's request, or a script); the access interface (streams/access) checks the token and
the scope, never this module. A FINESS another worker owns is forwarded to it.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from faust import web

from processors.catalogue import BY_ID
from processors.formatting import KIND_HEADERS, REASON_LABELS, STATUS_LABELS, units_to_csv
from processors.units import REASONS, STATUSES
from streams.access.errors import AccessDenied
from streams.access.log import access_log, log_access, printable
from streams.access.scopes import Principal, Scope, is_finess
from streams.worker.pages.base import HEADERS, Identity, PageView, Redirect, aio, client_of, who
from streams.worker.pages.figures import establishment_figures
from streams.worker.pages.forwarding import PeerUnreachable
from streams.worker.worklists import (
    CSV_TYPE,
    MAX_PAGE_SIZE,
    WorklistError,
    parse_query,
    select,
)

if TYPE_CHECKING:
    from streams.worker.app import SunesWorker

pages = web.Blueprint("sunes-pages")
PAGE_SIZES = (25, 50, 100, 500)


@pages.route("/ui/", name="ui-figures")
class FiguresPage(PageView):
    async def get(self, request: web.Request) -> web.Response:
        identity = await self.person(request)
        if not isinstance(identity, Identity):
            return identity
        establishments = local_figures(self.worker, identity.principal)
        unreachable: list[str] = []
        if not identity.forwarded:
            peers = self.site.peers.others()
            shares = await asyncio.gather(*(self.share_of(p, identity.token) for p in peers))
            seen = {e["finess"] for e in establishments}
            for peer, theirs in zip(peers, shares, strict=True):
                if theirs is None:
                    unreachable.append(peer)
                    continue
                establishments += [e for e in theirs if e["finess"] not in seen]
                seen |= {e["finess"] for e in theirs}
        establishments.sort(key=lambda e: e["finess"])
        log_access(
            identity.principal, [str(s) for s in identity.principal.scopes], "page figures",
            len(establishments), client_of(request), "establishment(s)",
        )  # fmt: skip
        response = self.page(
            "figures.html", establishments=establishments, unreachable=unreachable,
            **who(identity),
        )  # fmt: skip
        return self.finish(response, request, identity)

    async def share_of(self, peer: str, token: str) -> list[dict[str, Any]] | None:
        """A peer's establishments within the person's scope; None when it does not answer."""
        try:
            reply = await self.site.peers.get(peer, "/ui/figures.json", token)
            theirs = orjson.loads(reply.body) if reply.status == 200 else None
        except (PeerUnreachable, orjson.JSONDecodeError):
            return None
        return theirs if isinstance(theirs, list) else None


def local_figures(worker: SunesWorker, principal: Principal) -> list[dict[str, Any]]:
    registry = worker.establishments.registry
    visible = principal.visible(worker.establishments.by_finess, registry)
    return establishment_figures(
        visible, worker.stage.rows, worker.establishments.unit_counts, registry,
        worker.recomputation.withheld,
    )  # fmt: skip


@pages.route("/ui/figures.json", name="ui-figures-json")
class FiguresJson(PageView):
    """This worker's establishments within the caller's scope (a peer's figures page)."""

    async def get(self, request: web.Request) -> web.Response:
        off = self.off(sign_in=False)
        if off is not None:
            return off
        try:
            identity = await self.identify(request)
        except Redirect:
            return self.json({"error": "sign in first"}, status=401)
        except AccessDenied as denied:
            return self.json({"error": denied.message}, status=denied.status)
        body = orjson.dumps(local_figures(self.worker, identity.principal))
        return self.bytes(body, content_type="application/json", headers=dict(HEADERS))


@pages.route("/ui/{finess}/{indicator}/{period}", name="ui-worklist")
class WorklistPage(PageView):
    async def get(
        self, request: web.Request, finess: str, indicator: str, period: str
    ) -> web.Response:
        identity = await self.person(request)
        if not isinstance(identity, Identity):
            return identity
        worker = self.worker
        if not is_finess(finess):  # before anything is logged or forwarded
            message = "Ce n'est pas un FINESS : donnez ses 9 caractères (par exemple 750000001)."
            response = self.message("FINESS invalide", message, 400, identity)
            return self.finish(response, request, identity)
        try:
            scope = worker.access.require(
                identity.principal, finess, worker.establishments.registry
            )
        except AccessDenied as denied:
            access_log.warning(
                "page worklist %s refused (%d) to %s: %s",
                printable(f"{finess} {indicator} {period}"), denied.status,
                printable(identity.principal.subject), printable(denied.message),
            )  # fmt: skip
            message = f"Cette liste est hors de votre périmètre. {denied.message}"
            return self.finish(
                self.message("Accès refusé", message, 403, identity), request, identity
            )
        if finess not in worker.establishments.by_finess and not identity.forwarded:
            owner = self.site.peers.owner(finess)
            if owner is not None and not self.site.peers.is_me(owner):
                return self.finish(await self.forward(owner, request, identity), request, identity)
        response = self.worklist(request, identity, scope, (finess, indicator, period))
        return self.finish(response, request, identity)

    async def forward(self, owner: str, request: web.Request, identity: Identity) -> web.Response:
        try:
            reply = await self.site.peers.get(owner, aio(request).path_qs, identity.token)
        except PeerUnreachable:
            return self.message(
                "Worker injoignable",
                "Le worker qui tient cet établissement ne répond pas. Réessayez dans un instant.",
                502, identity,
            )  # fmt: skip
        return self.bytes(
            reply.body, content_type=reply.content_type, status=reply.status,
            headers={**HEADERS, **reply.headers},
        )  # fmt: skip

    def worklist(
        self, request: web.Request, identity: Identity, scope: Scope, figure: tuple[str, str, str]
    ) -> web.Response:
        finess, indicator, period = figure
        worker = self.worker
        try:
            query = parse_query(finess, indicator, period, request.query, None)
            row = next(
                (
                    r
                    for r in worker.stage.rows(finess)
                    if (r.indicator, r.period) == (indicator, period)
                ),
                None,
            )
            if row is None:
                raise WorklistError(
                    404, f"Aucun chiffre {indicator} {period} pour le FINESS {finess} (pas encore "
                    "de séjour, de compte rendu ou de correspondant pour cette période)."
                )  # fmt: skip
            everything = worker.stage.units(finess, indicator, period)
        except WorklistError as refused:
            return self.message("Liste indisponible", refused.message, refused.status, identity)
        shown, total = select(everything, query)
        log_access(
            identity.principal, [str(scope)], f"page worklist {query.describe()}", len(shown),
            client_of(request), f"of {total} unit(s)",
        )  # fmt: skip
        if query.csv:
            name = f"unites-{finess}-{indicator}-{period}.csv"
            headers = {**HEADERS, "Content-Disposition": f'attachment; filename="{name}"',
                       "X-Total-Count": str(total)}  # fmt: skip
            return self.bytes(units_to_csv(shown).encode(), content_type=CSV_TYPE, headers=headers)
        kind = everything[0].kind if everything else "stay"
        unit_header, day_header = KIND_HEADERS[kind]
        filters = {
            "status": ",".join(sorted(query.statuses)),
            "reason": ",".join(sorted(query.reasons)),
        }
        filters = {k: v for k, v in filters.items() if v}
        base = aio(request).path
        pages_count = max(1, math.ceil(total / query.page_size))

        def link(**extra: Any) -> str:
            return f"{base}?{urlencode({**filters, **extra})}"

        record = worker.establishments.registry.get(finess)
        tally = Counter(u.status for u in everything)
        est = worker.establishments.by_finess.get(finess)
        now = est.now if est is not None else None
        return self.page(
            "worklist.html",
            finess=finess,
            name=record.name if record is not None else "",
            label=BY_ID[indicator].short_label,
            row={**row.as_json(), "window": row.is_window},
            tally={s: tally[s] for s in STATUSES},
            now="–" if now is None else now.strftime("%d/%m/%Y"),
            query=query,
            units=shown,
            total=total,
            first=(query.page - 1) * query.page_size + 1,
            last=(query.page - 1) * query.page_size + len(shown),
            pages=pages_count,
            statuses=[(s, STATUS_LABELS[s]) for s in STATUSES],
            reasons=[(r, REASON_LABELS[r]) for r in REASONS],
            status_labels=STATUS_LABELS,
            reason_labels=REASON_LABELS,
            page_sizes=sorted({*PAGE_SIZES, query.page_size}),
            unit_header=unit_header,
            day_header=day_header if kind != "correspondent" else "",
            csv_link=link(format="csv", page_size=MAX_PAGE_SIZE),
            previous_link=link(page=query.page - 1, page_size=query.page_size)
            if query.page > 1
            else None,
            next_link=link(page=query.page + 1, page_size=query.page_size)
            if query.page < pages_count
            else None,
            **who(identity),
        )
