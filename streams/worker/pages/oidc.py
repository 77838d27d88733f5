"""Signing in with the OpenID Connect provider (Keycloak, or any): discovery, the
authorization code flow with PKCE (S256), state and nonce, the token exchange and refresh,
and signing out at the provider (its end_session_endpoint, from the server: no id token
needs to travel in the cookie).

The access token is then checked by the access interface (streams/access: signature,
issuer, audience, expiry, scopes), never here. The id token comes straight from the token
endpoint over the connection the worker opened (OIDC Core 3.1.3.7: the transport
authenticates its issuer), so only its nonce, issuer and audience are read from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from streams.worker.pages.session import LoginState, Session

TIMEOUT = aiohttp.ClientTimeout(total=10)
DISCOVERY_SECONDS = 3600  # the provider's endpoints are read again after an hour


class SignInError(Exception):
    """Signing in or refreshing failed: a message for the person (French) and the log."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorization: str
    token: str
    end_session: str | None


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _claims(jwt: str) -> dict[str, Any]:
    """A JWT's payload, unverified (see the module's docstring for why that is enough here)."""
    try:
        payload = jwt.split(".")[1]
        data = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, orjson.JSONDecodeError):
        raise SignInError("le fournisseur d'identité a rendu un jeton illisible") from None
    if not isinstance(data, dict):
        raise SignInError("le fournisseur d'identité a rendu un jeton illisible")
    return data


class OidcClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str | None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self._endpoints: Endpoints | None = None
        self._read_at = 0.0

    async def endpoints(self) -> Endpoints:
        if self._endpoints is None or time.monotonic() - self._read_at > DISCOVERY_SECONDS:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                async with (
                    aiohttp.ClientSession(timeout=TIMEOUT) as http,
                    http.get(url) as response,
                ):
                    response.raise_for_status()
                    doc = await response.json(content_type=None)
                self._endpoints = Endpoints(
                    doc["authorization_endpoint"], doc["token_endpoint"],
                    doc.get("end_session_endpoint"),
                )  # fmt: skip
            except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as exc:
                raise SignInError(
                    f"le fournisseur d'identité ne répond pas ({type(exc).__name__})"
                ) from None
            self._read_at = time.monotonic()
        return self._endpoints

    async def start(self, redirect_uri: str, next_path: str) -> tuple[str, LoginState]:
        """Where to send the browser, and what to keep until it comes back."""
        login = LoginState(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),  # 64 characters, within RFC 7636's 43-128
            next_path=next_path,
            redirect_uri=redirect_uri,
        )
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": pkce_challenge(login.verifier),
            "code_challenge_method": "S256",
        }
        return f"{(await self.endpoints()).authorization}?{urlencode(query)}", login

    async def finish(self, login: LoginState, state: str, code: str) -> Session:
        """The callback: the state must be ours, the code is exchanged with the verifier."""
        if not hmac.compare_digest(state.encode(), login.state.encode()):
            raise SignInError("la connexion ne correspond pas à celle qui a été demandée")
        tokens = await self._token({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": login.redirect_uri,
            "code_verifier": login.verifier,
        })  # fmt: skip
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInError("le fournisseur d'identité n'a pas rendu de jeton d'identité")
        claims = _claims(id_token)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if (
            not hmac.compare_digest(str(claims.get("nonce", "")).encode(), login.nonce.encode())
            or str(claims.get("iss", "")).rstrip("/") != self.issuer
            or self.client_id not in audiences
        ):
            raise SignInError("le jeton d'identité ne correspond pas à cette connexion")
        return _session(tokens)

    async def refresh(self, session: Session) -> Session:
        if not session.refresh_token:
            raise SignInError("la session a expiré")
        tokens = await self._token(
            {"grant_type": "refresh_token", "refresh_token": session.refresh_token}
        )
        return _session(tokens, keep_refresh=session.refresh_token)

    async def end(self, session: Session) -> None:
        """Ends the person's session at the provider (Keycloak ends it on a POST of the
        refresh token to its end_session_endpoint); best effort: the cookie goes anyway."""
        endpoint = (await self.endpoints()).end_session
        if endpoint is None or not session.refresh_token:
            return
        form = {**self._client_auth(), "refresh_token": session.refresh_token}
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(endpoint, data=form) as response,
        ):
            if response.status >= 400:
                raise SignInError(
                    f"le fournisseur d'identité a refusé la déconnexion ({response.status})"
                )

    def _client_auth(self) -> dict[str, str]:
        auth = {"client_id": self.client_id}
        if self.client_secret is not None:
            auth["client_secret"] = self.client_secret
        return auth

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        endpoint = (await self.endpoints()).token
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as http,
                http.post(endpoint, data={**form, **self._client_auth()}) as response,
            ):
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SignInError(
                f"le fournisseur d'identité ne répond pas ({type(exc).__name__})"
            ) from None
        try:
            tokens = orjson.loads(body)
        except orjson.JSONDecodeError:
            tokens = None
        if status != 200 or not isinstance(tokens, dict) or "access_token" not in tokens:
            error = tokens.get("error") if isinstance(tokens, dict) else None
            raise SignInError(
                f"le fournisseur d'identité a refusé ({status} {error or ''})".strip()
            )
        return tokens


def _session(tokens: dict[str, Any], keep_refresh: str | None = None) -> Session:
    try:
        lifetime = float(tokens.get("expires_in", 60))
    except (TypeError, ValueError):
        lifetime = 60.0
    refresh = tokens.get("refresh_token")
    return Session(
        access_token=str(tokens["access_token"]),
        refresh_token=refresh if isinstance(refresh, str) else keep_refresh,
        # a few seconds early: the token must still be valid when the worker checks it
        expires_at=time.time() + max(lifetime - 10, 0),
    )
