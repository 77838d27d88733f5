"""The pages' cookies, sealed with the secret every worker shares (Fernet: AES-128-CBC and
HMAC-SHA256, with its time stamp): the browser carries them, any worker behind the load
balancer reads them, nobody can read or change what is in them.

    sunes_session  the person's access and refresh tokens and when the access token expires
    sunes_login    while signing in: the OIDC state, nonce, PKCE verifier and where to go back

Each cookie has its own key (derived from the secret with its name): one cannot stand for the
other. The tokens are compressed: a cookie holds at most 4096 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

SESSION_COOKIE = "sunes_session"
LOGIN_COOKIE = "sunes_login"
COOKIE_PATH = "/ui"
SESSION_HOURS = 10  # a working day: then sign in again, whatever the refresh token allows
LOGIN_SECONDS = 600  # to fill in the provider's form
MAX_COOKIE_BYTES = 4000  # browsers keep at most 4096 bytes of name, value and attributes


class CookieTooLarge(ValueError):
    """The provider's tokens do not fit in a cookie (too many claims in them)."""


@dataclass(frozen=True, slots=True)
class Session:
    access_token: str
    refresh_token: str | None
    expires_at: float  # epoch seconds: refresh the access token from then on

    def as_json(self) -> dict[str, Any]:
        return {"a": self.access_token, "r": self.refresh_token, "e": self.expires_at}


@dataclass(frozen=True, slots=True)
class LoginState:
    state: str
    nonce: str
    verifier: str  # the PKCE code verifier (its S256 challenge went to the provider)
    next_path: str  # a /ui/ path of this site, where the person was going
    redirect_uri: str


class Sealer:
    """Seals and opens the pages' cookies with keys derived from the shared secret."""

    def __init__(self, secret: str) -> None:
        self._session = Fernet(_key(secret, SESSION_COOKIE))
        self._login = Fernet(_key(secret, LOGIN_COOKIE))

    def seal_session(self, session: Session) -> str:
        sealed = self._session.encrypt(zlib.compress(orjson.dumps(session.as_json()), 9)).decode()
        if len(sealed) > MAX_COOKIE_BYTES - 200:  # room for the name and attributes
            raise CookieTooLarge(
                f"the session's tokens take {len(sealed)} bytes once sealed: more than a "
                "cookie holds; map fewer claims into the access token at the provider"
            )
        return sealed

    def open_session(self, sealed: str | None) -> Session | None:
        data = _open(self._session, sealed, SESSION_HOURS * 3600, compressed=True)
        if data is None:
            return None
        try:
            return Session(str(data["a"]), data["r"], float(data["e"]))
        except (KeyError, TypeError, ValueError):
            return None

    def seal_login(self, login: LoginState) -> str:
        data = {
            "s": login.state, "n": login.nonce, "v": login.verifier, "p": login.next_path,
            "u": login.redirect_uri,
        }  # fmt: skip
        return self._login.encrypt(orjson.dumps(data)).decode()

    def open_login(self, sealed: str | None) -> LoginState | None:
        data = _open(self._login, sealed, LOGIN_SECONDS, compressed=False)
        if data is None:
            return None
        try:
            return LoginState(data["s"], data["n"], data["v"], data["p"], data["u"])
        except (KeyError, TypeError):
            return None


def _key(secret: str, purpose: str) -> bytes:
    digest = hashlib.sha256(f"sunes-pages-v1\0{purpose}\0{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _open(fernet: Fernet, sealed: str | None, ttl: int, compressed: bool) -> Any:
    """The cookie's content; None when absent, forged, sealed with another secret or too old."""
    if not sealed:
        return None
    try:
        raw = fernet.decrypt(sealed.encode(), ttl=ttl)
        return orjson.loads(zlib.decompress(raw) if compressed else raw)
    except (InvalidToken, zlib.error, orjson.JSONDecodeError, ValueError):
        return None
