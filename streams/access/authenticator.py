"""The worker's gate: who is asking (an OpenID Connect token or a static token), and may they
see this establishment. Views ask `authenticate` then `require`; streams.access.scopes does
the reading against the registry."""

from __future__ import annotations

from collections.abc import Mapping

from streams.access.config import AccessConfig
from streams.access.errors import AccessDenied
from streams.access.oidc import OidcVerifier
from streams.access.scopes import Principal, Scope, needed_for
from streams.access.static import StaticTokens, TokensFileError
from streams.cli.errors import ConfigError
from topics.records import EstablishmentRecord


class Authenticator:
    def __init__(self, config: AccessConfig) -> None:
        self.config = config
        try:
            self.static = StaticTokens(config.tokens_file, config.legacy_token)
        except TokensFileError as exc:
            raise ConfigError(str(exc)) from None
        self.oidc = (
            OidcVerifier(
                config.oidc_issuer,
                config.oidc_audience or "",
                config.oidc_scope_claim,
                config.oidc_leeway_seconds,
            )
            if config.oidc_issuer
            else None
        )

    @property
    def enabled(self) -> bool:
        """Some identity source is configured (OIDC issuer, tokens file or legacy token)."""
        return self.config.enabled

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer …` header; AccessDenied(401) otherwise."""
        self._check_enabled()
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise AccessDenied(401, "sign in: give Authorization: Bearer <token>")
        return await self.principal_from_token(given.strip())

    def _check_enabled(self) -> None:
        if not self.enabled:
            raise AccessDenied(
                403,
                "access is off: this worker has no identity source (set SUNES_OIDC_ISSUER, "
                "SUNES_ACCESS_TOKENS_FILE or SUNES_API_TOKEN)",
            )

    async def principal_from_token(self, token: str) -> Principal:
        """The principal of a raw token (static first, then OIDC); AccessDenied(401) otherwise."""
        self._check_enabled()
        principal = self.static.lookup(token)
        if principal is not None:
            return principal
        if self.oidc is not None and token.count(".") == 2:
            return await self.oidc.verify(token)
        raise AccessDenied(401, "the bearer token is not known: sign in again or check the token")

    def require(
        self, principal: Principal, finess: str, registry: Mapping[str, EstablishmentRecord]
    ) -> Scope:
        """The principal's scope that covers FINESS; AccessDenied(403) naming those needed."""
        scope = principal.scope_for(finess, registry)
        if scope is None:
            needed = ", ".join(str(s) for s in needed_for(finess, registry))
            raise AccessDenied(
                403,
                f"FINESS {finess} needs one of {needed}; {principal.subject} has "
                f"{principal.describe_scopes()}",
            )
        return scope
