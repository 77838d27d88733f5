"""What every page shares: the identity of who asks (session cookie or bearer token), the
site of a worker (cookie sealer, OIDC client, peers), French error pages, safe headers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from weakref import WeakKeyDictionary

from faust import web

from streams.access.errors import AccessDenied
from streams.access.log import access_log, printable
from streams.access.scopes import Principal
from streams.worker.pages.forwarding import FORWARDED, Peers
from streams.worker.pages.oidc import OidcClient, SignInError
from streams.worker.pages.render import render
from streams.worker.pages.session import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SESSION_HOURS,
    CookieTooLarge,
    Sealer,
)
from streams.worker.views import worker_of

if TYPE_CHECKING:
    from streams.worker.app import SunesWorker

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
            link_label=link_label, **who(identity),
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

    async def person(self, request: web.Request) -> Identity | web.Response:
        """Who is asking for an HTML page, or the page that answers instead: the pages off,
        the sign-in, a refusal."""
        off = self.off(sign_in="Authorization" not in request.headers)
        if off is not None:
            return off
        try:
            return await self.identify(request)
        except Redirect as go:
            return self.redirect(go.location)
        except AccessDenied as denied:
            return self.message("Accès refusé", denied.message, denied.status)

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


def who(identity: Identity | None) -> dict[str, Any]:
    if identity is None:
        return {"subject": ""}
    return {"subject": identity.principal.subject, "scopes": identity.principal.describe_scopes()}


def aio(value: Any) -> Any:
    """aiohttp's request or response under Faust's types (path_qs, scheme, host, cookies)."""
    return value


def client_of(request: web.Request) -> str:
    return getattr(request, "remote", None) or "?"
