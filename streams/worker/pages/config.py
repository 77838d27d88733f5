"""The pages' settings: SUNES_SESSION_SECRET (or _FILE), SUNES_OIDC_CLIENT_ID,
SUNES_OIDC_CLIENT_SECRET_FILE, SUNES_PUBLIC_URL. The provider itself is the access
interface's (SUNES_OIDC_ISSUER, streams/access)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.cli.errors import ConfigError

SECRET_ENV = "SUNES_SESSION_SECRET"
SECRET_FILE_ENV = "SUNES_SESSION_SECRET_FILE"
CLIENT_ID_ENV = "SUNES_OIDC_CLIENT_ID"
CLIENT_SECRET_FILE_ENV = "SUNES_OIDC_CLIENT_SECRET_FILE"
PUBLIC_URL_ENV = "SUNES_PUBLIC_URL"
MIN_SECRET_LENGTH = 32  # the session key is derived from it: long enough not to be guessed


@dataclass(frozen=True)
class PageConfig:
    # Shared by every worker behind the load balancer: any of them reads any session.
    session_secret: str | None = field(default=None, repr=False)
    client_id: str | None = None  # the OIDC client the browser signs in with
    client_secret: str | None = field(default=None, repr=False)  # None: a public client (PKCE)
    # The address people use (the load balancer's), e.g. https://sunes.ars.example: the
    # redirect URI registered at the provider is <public_url>/ui/callback. None: the request's.
    public_url: str | None = None

    def __post_init__(self) -> None:
        if self.session_secret is not None and len(self.session_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{SECRET_ENV} has {len(self.session_secret)} characters: give one of at least "
                f"{MIN_SECRET_LENGTH}, the same on every worker (e.g. `openssl rand -hex 32`)"
            )
        if self.public_url is not None and not self.public_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"{PUBLIC_URL_ENV} must be the pages' address (https://host[:port]), "
                f"got {self.public_url!r}"
            )

    @property
    def enabled(self) -> bool:
        return self.session_secret is not None


def _first_line(path: Path, variable: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path} ({type(exc).__name__}): check {variable}") from None
    value = (text.strip().splitlines() or [""])[0].strip()
    if not value:
        raise ConfigError(f"{path} is empty: put the secret on its first line ({variable})")
    return value


def page_config_from(env: Mapping[str, str]) -> PageConfig:
    secret = env.get(SECRET_ENV, "").strip() or None
    secret_file = env.get(SECRET_FILE_ENV, "").strip()
    if secret_file:
        if secret is not None:
            raise ConfigError(f"give the session secret once: {SECRET_ENV} or {SECRET_FILE_ENV}")
        secret = _first_line(Path(secret_file), SECRET_FILE_ENV)
    client_secret_file = env.get(CLIENT_SECRET_FILE_ENV, "").strip()
    return PageConfig(
        session_secret=secret,
        client_id=env.get(CLIENT_ID_ENV, "").strip() or None,
        client_secret=(
            _first_line(Path(client_secret_file), CLIENT_SECRET_FILE_ENV)
            if client_secret_file
            else None
        ),
        public_url=(env.get(PUBLIC_URL_ENV, "").strip().rstrip("/") or None),
    )
