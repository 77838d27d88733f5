"""OpenID Connect bearer tokens (JWT): checked by PyJWT against the issuer's published keys.

The issuer's discovery document and its JWKS are fetched off the event loop (a thread: the
worker is asyncio), cached, and fetched again when a token names a key (`kid`) not in the
cache — a key rotation at the provider — at most once per REFETCH_INTERVAL, so that tokens
with made-up kids cannot make the worker hammer the provider; and every JWKS_TTL anyway, so
that a key the provider withdrew stops being accepted.

Checked: the signature (asymmetric algorithms only, those of the key), `iss` (exactly the
configured issuer), `aud` (contains the configured audience), `exp` (required), `nbf` and
`iat` when present, with a bounded leeway for clock skew.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from streams.access.errors import AccessDenied
from streams.access.scopes import Principal, Scope

log = logging.getLogger(__name__)

ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
REFETCH_INTERVAL = 5.0  # seconds between two JWKS fetches caused by an unknown kid
JWKS_TTL = 300.0  # seconds a fetched JWKS is trusted before being fetched again
HTTP_TIMEOUT = 10.0
MAX_DOCUMENT_BYTES = 1 << 20


def _fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON document (blocking: called in a thread)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return document


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        scope_claim: str,
        leeway_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.scope_claim = scope_claim
        self.leeway = leeway_seconds
        self._clock = clock
        self._jwks_uri: str | None = None
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        """Discovery (once) and the JWKS, in a thread. AccessDenied(401) when the provider
        cannot be reached and no key is cached: the token cannot be checked."""
        try:
            if self._jwks_uri is None:
                discovery = await asyncio.to_thread(
                    _fetch_json, f"{self.issuer}/.well-known/openid-configuration"
                )
                if str(discovery.get("issuer", "")).rstrip("/") != self.issuer:
                    raise ValueError(
                        f"the discovery document names issuer {discovery.get('issuer')!r}"
                    )
                uri = discovery.get("jwks_uri")
                if not isinstance(uri, str):
                    raise ValueError("the discovery document has no jwks_uri")
                self._jwks_uri = uri
            document = await asyncio.to_thread(_fetch_json, self._jwks_uri)
            keyset = PyJWKSet.from_dict(document)
        except (OSError, ValueError, jwt.PyJWKSetError) as exc:
            self._fetched_at = self._clock()  # rate-limit retries too
            log.error(
                "OpenID provider %s: cannot read its keys (%s)", self.issuer, type(exc).__name__
            )
            return
        self._keys = {
            k.key_id: k
            for k in keyset.keys
            if k.key_id and getattr(k, "public_key_use", None) in (None, "sig")
        }
        self._fetched_at = self._clock()
        log.info("OpenID provider %s: %d signing key(s)", self.issuer, len(self._keys))

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < JWKS_TTL

    async def _key(self, kid: str) -> PyJWK | None:
        known = self._keys.get(kid)
        if known is not None and self._fresh():
            return known  # the usual case: no lock, no wait behind a fetch
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= JWKS_TTL
            unknown = kid not in self._keys and (
                self._fetched_at is None or now - self._fetched_at >= REFETCH_INTERVAL
            )
            if stale or unknown:
                await self._refresh()
            return self._keys.get(kid)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AccessDenied(401, "the bearer token is not a JWT nor a known token") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in ALGORITHMS:
            raise AccessDenied(
                401, "the bearer token is not signed by a key of the OpenID provider"
            )
        key = await self._key(kid)
        if key is None:
            raise AccessDenied(
                401,
                f"the bearer token is signed by a key (kid {kid[:64]!r}) that {self.issuer} does not publish",
            )
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[key.algorithm_name] if key.algorithm_name in ALGORITHMS else ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AccessDenied(401, "the bearer token has expired: sign in again") from None
        except jwt.ImmatureSignatureError:
            raise AccessDenied(
                401, "the bearer token is not valid yet (nbf/iat in the future)"
            ) from None
        except jwt.InvalidAudienceError:
            raise AccessDenied(
                401, f"the bearer token is not for this service (aud must include {self.audience})"
            ) from None
        except jwt.InvalidIssuerError:
            raise AccessDenied(401, f"the bearer token is not from {self.issuer}") from None
        except jwt.InvalidTokenError as exc:
            raise AccessDenied(401, f"the bearer token is refused: {type(exc).__name__}") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = claims.get("preferred_username") or claims.get("sub") or "?"
        raw = claims.get(self.scope_claim, [])
        values = raw.split() if isinstance(raw, str) else raw
        scopes: set[Scope] = set()
        if isinstance(values, list):
            for value in values:
                try:
                    scopes.add(Scope.parse(str(value)))
                except ValueError:
                    # a mapping mistake at the provider: said, not silently widened
                    log.warning(
                        "OpenID token of %s: claim %s holds %r, not a scope",
                        subject,
                        self.scope_claim,
                        value,
                    )
        return Principal(str(subject), frozenset(scopes), "oidc")
