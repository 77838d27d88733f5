"""The sign-in's own checks (the flow against Keycloak: test_pages_browser.py): PKCE S256 as
RFC 7636 computes it, the state and the id token's nonce, issuer and audience."""

from __future__ import annotations

import base64

import orjson
import pytest

from streams.worker.pages.oidc import OidcClient, SignInError, pkce_challenge
from streams.worker.pages.session import LoginState

ISSUER = "http://127.0.0.1:1/realms/sunes"


def test_pkce_s256_of_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def id_token(**claims: object) -> str:
    def part(data: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


class Answering(OidcClient):
    """The provider's token endpoint answering `tokens` (no network)."""

    def __init__(self, tokens: dict[str, object]) -> None:
        super().__init__(ISSUER, "sunes-pages", None)
        self.tokens = tokens

    async def _token(self, form: dict[str, str]) -> dict[str, object]:
        return self.tokens


LOGIN = LoginState("the-state", "the-nonce", "v" * 64, "/ui/", "http://w/ui/callback")


async def test_the_callback_checks_state_nonce_issuer_and_audience() -> None:
    good = {"iss": ISSUER, "aud": "sunes-pages", "nonce": "the-nonce"}
    tokens = {"access_token": "a.b.c", "refresh_token": "r", "expires_in": 300}
    session = await Answering({**tokens, "id_token": id_token(**good)}).finish(
        LOGIN, "the-state", "code"
    )
    assert session.access_token == "a.b.c" and session.refresh_token == "r"
    with pytest.raises(SignInError, match="ne correspond pas"):
        await Answering({**tokens, "id_token": id_token(**good)}).finish(LOGIN, "other", "code")
    for wrong in ({"nonce": "replayed"}, {"iss": "http://evil/realms/x"}, {"aud": "another"}):
        answer = {**tokens, "id_token": id_token(**{**good, **wrong})}
        with pytest.raises(SignInError, match="jeton d'identité"):
            await Answering(answer).finish(LOGIN, "the-state", "code")
