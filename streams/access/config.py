"""Access settings (SUNES_OIDC_*, SUNES_ACCESS_TOKENS_FILE, SUNES_API_TOKEN, SUNES_FIGURES_ACCESS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams.cli.errors import ConfigError

MIN_TOKEN_LENGTH = 16  # a shorter token could be guessed
MAX_LEEWAY_SECONDS = 300
FIGURES_ACCESS = ("open", "token")


@dataclass(frozen=True)
class AccessConfig:
    oidc_issuer: str | None = None  # SUNES_OIDC_ISSUER, e.g. http://127.0.0.1:8080/realms/sunes
    oidc_audience: str | None = None  # SUNES_OIDC_AUDIENCE (the client id the tokens are for)
    oidc_scope_claim: str = (
        "sunes_scopes"  # SUNES_OIDC_SCOPE_CLAIM: a list, or a space-separated string
    )
    oidc_leeway_seconds: int = 30  # SUNES_OIDC_LEEWAY_SECONDS, bounded (≤ 300)
    tokens_file: Path | None = None  # SUNES_ACCESS_TOKENS_FILE: static machine tokens, hashed
    legacy_token: str | None = field(default=None, repr=False)  # SUNES_API_TOKEN: scope national
    figures_access: str = "open"  # SUNES_FIGURES_ACCESS: what /indicators and /metrics need

    def __post_init__(self) -> None:
        if self.oidc_issuer is not None and not self.oidc_audience:
            raise ConfigError(
                "SUNES_OIDC_ISSUER is set without SUNES_OIDC_AUDIENCE: give the client id the "
                "worker's tokens are issued for (--oidc-audience)"
            )
        if self.oidc_issuer is not None and not self.oidc_issuer.startswith(
            ("https://", "http://")
        ):
            raise ConfigError(
                f"SUNES_OIDC_ISSUER must be the issuer's URL (https://…/realms/<realm>), "
                f"got {self.oidc_issuer!r}"
            )
        if not 0 <= self.oidc_leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ConfigError(
                f"SUNES_OIDC_LEEWAY_SECONDS must be from 0 to {MAX_LEEWAY_SECONDS}, "
                f"got {self.oidc_leeway_seconds}"
            )
        if not self.oidc_scope_claim:
            raise ConfigError("SUNES_OIDC_SCOPE_CLAIM is empty: give the claim's name")
        if self.figures_access not in FIGURES_ACCESS:
            raise ConfigError(
                f"SUNES_FIGURES_ACCESS must be open or token, got {self.figures_access!r}"
            )
        if self.tokens_file is not None:  # a bad file stops the worker before it starts
            from streams.access.static import StaticTokens, TokensFileError

            try:
                StaticTokens(self.tokens_file)
            except TokensFileError as exc:
                raise ConfigError(str(exc)) from None
        if self.legacy_token is not None and len(self.legacy_token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"the worklists' access token has {len(self.legacy_token)} characters: give one "
                f"of at least {MIN_TOKEN_LENGTH} (e.g. `openssl rand -hex 32`)"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.oidc_issuer or self.tokens_file or self.legacy_token)
