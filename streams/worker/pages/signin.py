"""Signing in and out (streams.worker.pages.oidc does the protocol): /ui/login sends the
browser to the provider, /ui/callback opens the session, POST /ui/logout ends it here and at
the provider."""

from __future__ import annotations

from faust import web

from streams.access.errors import AccessDenied
from streams.access.log import access_log, printable
from streams.worker.pages.base import (
    PageView,
    aio,
    client_of,
    safe_next,
    set_session_cookie,
)
from streams.worker.pages.oidc import SignInError
from streams.worker.pages.session import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_COOKIE,
    CookieTooLarge,
    Session,
)

signin = web.Blueprint("sunes-signin")


@signin.route("/ui/login", name="ui-login")
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
        aio(response).set_cookie(
            LOGIN_COOKIE, site.sealer.seal_login(login), path=COOKIE_PATH, httponly=True,
            secure=self.secure(request), samesite="Lax", max_age=LOGIN_SECONDS,
        )  # fmt: skip
        return response


@signin.route("/ui/callback", name="ui-callback")
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
            client_of(request),
        )  # fmt: skip
        response = self.redirect(login.next_path)
        set_session_cookie(response, sealed, self.secure(request))
        aio(response).del_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response


@signin.route("/ui/logout", name="ui-logout")
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
