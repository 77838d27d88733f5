"""Static machine tokens (a GHT's integration, a scraper): a TOML file of hashed tokens.

    [[token]]
    name = "ght-sud-integration"          # the subject in the access log
    sha256 = "<hex sha256 of the token>"  # `sunes access hash-token` makes it
    scopes = ["ej:750000000"]

The file holds no token, only their sha256 (a token is 32 random bytes or more: no salt or
slow hash is needed against guessing). It is re-read when its modification time or size
changes, without a restart; a file that no longer reads keeps the last good tokens, and says
so loudly in the log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from streams.access.scopes import Principal, Scope

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokensFileError(ValueError):
    """The tokens file cannot be read: says where and how to fix it."""


@dataclass(frozen=True, slots=True)
class StaticToken:
    name: str
    sha256: str
    scopes: frozenset[Scope]


def parse_tokens(text: str, path: Path) -> list[StaticToken]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TokensFileError(f"{path} is not TOML: {exc}") from None
    entries = data.get("token", [])
    if not isinstance(entries, list):
        raise TokensFileError(f"{path}: write each token as a [[token]] table")
    unknown = sorted(set(data) - {"token"})
    if unknown:
        raise TokensFileError(f"{path}: unknown key(s) {', '.join(unknown)}: use [[token]] tables")
    tokens: list[StaticToken] = []
    names: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        where = f"{path}, token #{i}"
        if not isinstance(entry, dict):
            raise TokensFileError(f"{where}: write it as a [[token]] table")
        extra = sorted(set(entry) - {"name", "sha256", "scopes"})
        if extra:
            raise TokensFileError(
                f"{where}: unknown key(s) {', '.join(extra)}: use name, sha256, scopes"
            )
        name, digest, scopes = entry.get("name"), entry.get("sha256"), entry.get("scopes")
        if not isinstance(name, str) or not name.strip():
            raise TokensFileError(f"{where}: give it a name (the subject in the access log)")
        if name in names:
            raise TokensFileError(f"{where}: the name {name!r} is given twice")
        names.add(name)
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest.lower())
        ):
            raise TokensFileError(
                f"{where} ({name}): sha256 must be the token's hex sha256 (64 characters): "
                "make it with `sunes access hash-token`"
            )
        if (
            not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) for s in scopes)
        ):
            raise TokensFileError(f'{where} ({name}): give scopes = ["finess:…", …] (one or more)')
        try:
            parsed = frozenset(Scope.parse(s) for s in scopes)
        except ValueError as exc:
            raise TokensFileError(f"{where} ({name}): {exc}") from None
        tokens.append(StaticToken(name, digest.lower(), parsed))
    return tokens


class StaticTokens:
    """The tokens of a file, re-read when it changes; plus the legacy single token (national)."""

    def __init__(self, path: Path | None, legacy_token: str | None = None) -> None:
        self.path = path
        self._legacy = hash_token(legacy_token) if legacy_token else None
        self._tokens: list[StaticToken] = []
        self._seen: tuple[int, int] | None = None  # (mtime, size) of the version last read
        if path is not None:
            self._load(first=True)

    def _load(self, first: bool = False) -> None:
        assert self.path is not None
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (-1, -1)  # gone: said once, like a bad version
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            tokens = parse_tokens(self.path.read_text(encoding="utf-8"), self.path)
        except (OSError, UnicodeDecodeError, TokensFileError) as exc:
            message = (
                exc
                if isinstance(exc, TokensFileError)
                else f"cannot read {self.path} ({type(exc).__name__})"
            )
            if first:
                raise TokensFileError(f"{message}: check SUNES_ACCESS_TOKENS_FILE") from None
            # once per version of the file (it is not read again until it changes)
            log.error(
                "access tokens file: %s; keeping the %d token(s) read before",
                message,
                len(self._tokens),
            )
            return
        self._tokens = tokens
        log.warning("access tokens file %s read: %d token(s)", self.path, len(tokens))

    def lookup(self, token: str) -> Principal | None:
        if self.path is not None:
            self._load()
        digest = hash_token(token)
        found: Principal | None = None
        for entry in self._tokens:  # compare each (no early exit on a match's position)
            if hmac.compare_digest(digest, entry.sha256):
                found = Principal(entry.name, entry.scopes, "static")
        if found is None and self._legacy is not None and hmac.compare_digest(digest, self._legacy):
            found = Principal("api-token", frozenset({Scope("national", None)}), "static")
        return found
