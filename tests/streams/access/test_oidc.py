"""The OIDC verifier against a small real HTTP server publishing a discovery document and a
JWKS (keys made here): signature, iss, aud, exp/nbf with leeway, key rotation by refetch on
an unknown kid, rate-limited. Against Keycloak itself: test_access_keycloak.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from streams.access.errors import AccessDenied
from streams.access.oidc import REFETCH_INTERVAL, OidcVerifier
from streams.access.scopes import Scope

AUDIENCE = "sunes-worker"


class Provider:
    """An issuer whose published keys the test changes; counts the JWKS fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa.generate_private_key(65537, 2048)}
        self.published = ["k1"]
        self.jwks_fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith("/.well-known/openid-configuration"):
                    body: dict[str, Any] = {
                        "issuer": provider.issuer,
                        "jwks_uri": provider.issuer + "/certs",
                    }
                elif self.path.endswith("/certs"):
                    provider.jwks_fetches += 1
                    body = {"keys": [provider.jwk(kid) for kid in provider.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/test"

    def jwk(self, kid: str) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**public, "kid": kid, "alg": "RS256", "use": "sig"}

    def token(self, kid: str = "k1", key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": "u-1", "preferred_username": "dim",
                "iat": now, "exp": now + 300, "sunes_scopes": ["region:IDF"], **claims}  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    thread = threading.Thread(target=p.server.serve_forever, daemon=True)
    thread.start()
    yield p
    p.server.shutdown()
    p.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(provider: Provider, clock: Clock | None = None, leeway: int = 30) -> OidcVerifier:
    return OidcVerifier(provider.issuer, AUDIENCE, "sunes_scopes", leeway, clock or Clock())


async def test_a_good_token_gives_its_subject_and_scopes(provider: Provider) -> None:
    principal = await verifier(provider).verify(provider.token())
    assert principal.subject == "dim" and principal.via == "oidc"
    assert principal.scopes == {Scope("region", "IDF")}


async def test_scopes_as_a_space_separated_string_and_a_bad_one_skipped(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    token = provider.token(sunes_scopes="finess:750000001 everything national")
    principal = await verifier(provider).verify(token)
    assert principal.scopes == {Scope("finess", "750000001"), Scope("national", None)}
    assert "holds 'everything', not a scope" in caplog.text


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"exp": int(time.time()) - 31}, "has expired"),
        ({"nbf": int(time.time()) + 60}, "not valid yet"),
        ({"aud": "another-client"}, "not for this service"),
        ({"iss": "http://127.0.0.1:1/realms/other"}, "is not from"),
        ({"exp": None}, "refused: MissingRequiredClaimError"),
    ],
)
async def test_claims_are_checked(provider: Provider, claims: dict[str, Any], says: str) -> None:
    with pytest.raises(AccessDenied, match=says) as caught:
        await verifier(provider).verify(provider.token(**claims))
    assert caught.value.status == 401


async def test_the_leeway_bounds_the_clock_skew(provider: Provider) -> None:
    token = provider.token(exp=int(time.time()) - 20)
    assert (await verifier(provider, leeway=30).verify(token)).subject == "dim"
    with pytest.raises(AccessDenied, match="has expired"):
        await verifier(provider, leeway=5).verify(token)


async def test_a_foreign_signature_is_refused(provider: Provider) -> None:
    foreign = rsa.generate_private_key(65537, 2048)
    with pytest.raises(AccessDenied, match="Signature") as caught:
        await verifier(provider).verify(provider.token(key=foreign))  # the provider's kid
    assert caught.value.status == 401
    unsigned = jwt.encode({"iss": provider.issuer, "aud": AUDIENCE}, "x" * 32, algorithm="HS256",
                          headers={"kid": "k1"})  # fmt: skip
    with pytest.raises(AccessDenied, match="not signed by a key"):
        await verifier(provider).verify(unsigned)


async def test_a_rotation_is_followed_and_unknown_kids_are_rate_limited(
    provider: Provider,
) -> None:
    clock = Clock()
    v = verifier(provider, clock)
    await v.verify(provider.token())
    assert provider.jwks_fetches == 1
    provider.keys["k2"] = rsa.generate_private_key(65537, 2048)
    provider.published = ["k2"]  # rotated: k1 withdrawn
    clock.now += REFETCH_INTERVAL
    assert (await v.verify(provider.token("k2"))).subject == "dim"
    assert provider.jwks_fetches == 2
    for n in range(5):  # made-up kids: one fetch per interval at most
        with pytest.raises(AccessDenied, match=f"kid .made-up-{n}."):
            await v.verify(provider.token(f"made-up-{n}", key=provider.keys["k2"]))
    assert provider.jwks_fetches == 2
    clock.now += REFETCH_INTERVAL
    with pytest.raises(AccessDenied, match="does not publish"):
        await v.verify(provider.token("made-up-x", key=provider.keys["k2"]))
    assert provider.jwks_fetches == 3


async def test_a_withdrawn_key_stops_working_after_the_cache_time(provider: Provider) -> None:
    from streams.access.oidc import JWKS_TTL

    clock = Clock()
    v = verifier(provider, clock)
    old = provider.token("k1")
    await v.verify(old)
    provider.keys["k2"] = rsa.generate_private_key(65537, 2048)
    provider.published = ["k2"]
    assert (await v.verify(old)).subject == "dim"  # cached
    clock.now += JWKS_TTL
    with pytest.raises(AccessDenied, match="does not publish"):
        await v.verify(old)


async def test_an_unreachable_provider_refuses_with_401(provider: Provider) -> None:
    v = OidcVerifier("http://127.0.0.1:1/realms/none", AUDIENCE, "sunes_scopes", 30)
    with pytest.raises(AccessDenied) as caught:
        await v.verify(provider.token())
    assert caught.value.status == 401
