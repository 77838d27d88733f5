"""The pages' routes, on a blueprint of the worker's web server (aiohttp under Faust):

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
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from weakref import WeakKeyDictionary

import orjson
from faust import web

from processors.catalogue import BY_ID
from processors.formatting import KIND_HEADERS, REASON_LABELS, STATUS_LABELS, units_to_csv
from processors.units import REASONS, STATUSES
from streams.access.errors import AccessDenied
from streams.access.log import access_log, log_access, printable
from streams.access.scopes import Principal, Scope, is_finess
from streams.worker.pages.figures import establishment_figures
from streams.worker.pages.forwarding import FORWARDED, Peers, PeerUnreachable
from streams.worker.pages.oidc import OidcClient, SignInError
from streams.worker.pages.render import render
from streams.worker.pages.session import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_COOKIE,
    SESSION_HOURS,
    CookieTooLarge,
    Sealer,
    Session,
)
from streams.worker.views import worker_of
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
# No external asset, no frame, forms only to this site.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class Site:
    """What the pages of one worker keep: the cookie sealer, the OIDC client, the peers."""

    def __init__(self, worker: SunesWorker) -> None:
        pages_config = worker.config.pages
        access = worker.config.access
        self.sealer = Sealer(pages_config.session_secret) if pages_config.session_secret else None
        client_id = pages_config.client_id or access.oidc_audience
        self.oidc = (
            OidcClient(access.oidc_issuer, client_id, pages_config.client_secret)
            if access.oidc_issuer and client_id
            else None
        )
        self.public_url = pages_config.public_url
        self.peers = Peers(worker.app, worker.facts, worker.config.partitions)


SITES: WeakKeyDictionary[SunesWorker, Site] = WeakKeyDictionary()


def site_of(worker: SunesWorker) -> Site:
    if worker not in SITES:
        SITES[worker] = Site(worker)
    return SITES[worker]


@dataclass(frozen=True, slots=True)
class Identity:
    principal: Principal
    token: str  # the access token, forwarded to the owner of a FINESS
    renewed: str | None  # a new sealed session cookie (the access token was refreshed)
    forwarded: bool  # the request came from a peer: never forward it again


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class PageView(web.View):
    """A page: identity from the cookie or a bearer token, French errors, safe headers."""

    @property
    def worker(self) -> SunesWorker:
        return worker_of(self)

    @property
    def site(self) -> Site:
        return site_of(self.worker)

    def page(self, template: str, status: int = 200, **context: Any) -> web.Response:
        body = render(template, **context).decode()
        return self.html(body, status=status, headers=dict(HEADERS))

    def message(
        self, heading: str, message: str, status: int, identity: Identity | None = None,
        link: str | None = "/ui/", link_label: str = "Retour aux indicateurs",
    ) -> web.Response:  # fmt: skip
        return self.page(
            "message.html", status=status, heading=heading, message=message, link=link,
            link_label=link_label, **_who(identity),
        )  # fmt: skip

    def redirect(self, location: str) -> web.Response:
        return self.bytes(b"", status=302, headers={**HEADERS, "Location": location})

    def secure(self, request: web.Request) -> bool:
        public = self.site.public_url
        return bool(getattr(request, "secure", False)) or bool(
            public and public.startswith("https://")
        )

    def finish(
        self, response: web.Response, request: web.Request, identity: Identity | None
    ) -> web.Response:
        if identity is not None and identity.renewed is not None:
            set_session_cookie(response, identity.renewed, self.secure(request))
        return response

    def off(self, sign_in: bool = True) -> web.Response | None:
        """The pages need the session secret; signing in, an OIDC provider too (a bearer
        token, from a peer or a script, needs none)."""
        if self.site.sealer is None or (sign_in and self.site.oidc is None):
            return self.message(
                "Pages désactivées",
                "Ce worker ne sert pas les pages : il lui faut SUNES_SESSION_SECRET (le même "
                "sur tous les workers) et un fournisseur d'identité (SUNES_OIDC_ISSUER). "
                "Voir docs/pages.md.",
                404, link=None,
            )  # fmt: skip
        return None

    async def identify(self, request: web.Request) -> Identity:
        """The person (or peer) asking; Redirect to the sign-in when there is none; AccessDenied
        for a bearer token that does not hold."""
        access = self.worker.access
        forwarded = FORWARDED in request.headers
        authorization = request.headers.get("Authorization")
        if authorization:
            principal = await access.authenticate(authorization)
            token = authorization.partition(" ")[2].strip()
            return Identity(principal, token, None, forwarded)
        site = self.site
        assert site.sealer is not None
        session = site.sealer.open_session(request.cookies.get(SESSION_COOKIE))
        if session is None or site.oidc is None:
            raise Redirect(login_path(aio(request).path_qs))
        renewed: str | None = None
        for attempt in range(2):
            if attempt or time.time() >= session.expires_at:
                try:
                    session = await site.oidc.refresh(session)
                    renewed = site.sealer.seal_session(session)
                except (SignInError, CookieTooLarge) as exc:
                    access_log.info("page session not renewed: %s", printable(str(exc)))
                    raise Redirect(login_path(aio(request).path_qs)) from None
            try:
                principal = await access.principal_from_token(session.access_token)
                if renewed is not None:
                    access_log.info("page session renewed for %s", printable(principal.subject))
                return Identity(principal, session.access_token, renewed, forwarded)
            except AccessDenied as denied:
                if denied.status != 401:
                    raise
        raise Redirect(login_path(aio(request).path_qs))


def set_session_cookie(response: Any, sealed: str, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, sealed, path=COOKIE_PATH, httponly=True, secure=secure,
        samesite="Lax", max_age=SESSION_HOURS * 3600,
    )  # fmt: skip


def login_path(next_path: str) -> str:
    return "/ui/login?" + urlencode({"next": next_path})


def safe_next(value: str | None) -> str:
    """Only a page of this site: never an open redirect."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


def _who(identity: Identity | None) -> dict[str, Any]:
    if identity is None:
        return {"subject": ""}
    return {"subject": identity.principal.subject, "scopes": identity.principal.describe_scopes()}


def aio(value: Any) -> Any:
    """aiohttp's request or response under Faust's types (path_qs, scheme, host, cookies)."""
    return value


def _client(request: web.Request) -> str:
    return getattr(request, "remote", None) or "?"


@pages.route("/ui/", name="ui-figures")
class FiguresPage(PageView):
    async def get(self, request: web.Request) -> web.Response:
        off = self.off(sign_in="Authorization" not in request.headers)
        if off is not None:
            return off
        try:
            identity = await self.identify(request)
        except Redirect as go:
            return self.redirect(go.location)
        except AccessDenied as denied:
            return self.message("Accès refusé", denied.message, denied.status)
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
            len(establishments), _client(request), "establishment(s)",
        )  # fmt: skip
        response = self.page(
            "figures.html", establishments=establishments, unreachable=unreachable,
            **_who(identity),
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
        visible, worker.stage.rows, worker.establishments.unit_counts, registry
    )


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
        off = self.off(sign_in="Authorization" not in request.headers)
        if off is not None:
            return off
        try:
            identity = await self.identify(request)
        except Redirect as go:
            return self.redirect(go.location)
        except AccessDenied as denied:
            return self.message("Accès refusé", denied.message, denied.status)
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
            _client(request), f"of {total} unit(s)",
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
            **_who(identity),
        )


@pages.route("/ui/login", name="ui-login")
class Login(PageView):
    async def get(self, request: web.Request) -> web.Response:
        off = self.off()
        if off is not None:
            return off
        site = self.site
        assert site.sealer is not None and site.oidc is not None
        base = site.public_url or f"{aio(request).scheme}://{aio(request).host}"
        try:
            location, login = await site.oidc.start(
                f"{base}/ui/callback", safe_next(request.query.get("next"))
            )
        except SignInError as exc:
            return self.message("Connexion impossible", str(exc), 502, link=None)
        response = self.redirect(location)
        cast_response: Any = response
        cast_response.set_cookie(
            LOGIN_COOKIE, site.sealer.seal_login(login), path=COOKIE_PATH, httponly=True,
            secure=self.secure(request), samesite="Lax", max_age=LOGIN_SECONDS,
        )  # fmt: skip
        return response


@pages.route("/ui/callback", name="ui-callback")
class Callback(PageView):
    async def get(self, request: web.Request) -> web.Response:
        off = self.off()
        if off is not None:
            return off
        site = self.site
        assert site.sealer is not None and site.oidc is not None
        again = "/ui/login"
        if "error" in request.query:
            return self.message(
                "Connexion refusée",
                f"Le fournisseur d'identité a refusé la connexion ({request.query['error']}).",
                403, link=again, link_label="Se connecter",
            )  # fmt: skip
        login = site.sealer.open_login(request.cookies.get(LOGIN_COOKIE))
        if login is None:
            return self.message(
                "Connexion expirée",
                "La connexion a pris trop de temps ou a été ouverte dans un autre navigateur : "
                "recommencez.",
                400, link=again, link_label="Se connecter",
            )  # fmt: skip
        try:
            session = await site.oidc.finish(
                login, request.query.get("state", ""), request.query.get("code", "")
            )
            principal = await self.worker.access.principal_from_token(session.access_token)
            sealed = site.sealer.seal_session(session)
        except (SignInError, CookieTooLarge) as exc:
            access_log.warning("page sign-in failed: %s", printable(str(exc)))
            return self.message(
                "Connexion impossible", str(exc), 400, link=again, link_label="Se connecter"
            )
        except AccessDenied as denied:
            return self.message("Accès refusé", denied.message, denied.status, link=None)
        access_log.info(
            "page sign-in: %s with %s (%s)", printable(principal.subject), principal.describe_scopes(),
            _client(request),
        )  # fmt: skip
        response = self.redirect(login.next_path)
        set_session_cookie(response, sealed, self.secure(request))
        aio(response).del_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response


@pages.route("/ui/logout", name="ui-logout")
class Logout(PageView):
    async def post(self, request: web.Request) -> web.Response:
        off = self.off()
        if off is not None:
            return off
        site = self.site
        assert site.sealer is not None and site.oidc is not None
        session: Session | None = site.sealer.open_session(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            try:
                await site.oidc.end(session)
            except (SignInError, OSError) as exc:
                access_log.warning("page sign-out at the provider failed: %s", printable(str(exc)))
        response = self.message(
            "Déconnecté",
            "Vous êtes déconnecté, ici et auprès du fournisseur d'identité.",
            200, link="/ui/", link_label="Se connecter",
        )  # fmt: skip
        aio(response).del_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response
