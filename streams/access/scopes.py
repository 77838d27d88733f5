"""Scopes and principals: pure, read against the registry (FINESS → EstablishmentRecord).

    finess:<FINESS géographique>   that establishment
    ej:<FINESS juridique>          every establishment of that legal entity in the registry
    region:<code>                  every establishment of that region in the registry
    national                       every establishment, registered or not

An establishment the registry does not know is covered only by its own finess: scope and by
national (its legal entity and region are unknown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from topics.records import EstablishmentRecord

KINDS = ("finess", "ej", "region", "national")
_FINESS = re.compile(r"^[0-9][0-9AB][0-9]{7}$")  # 9 characters, 2A/2B for Corsica
_REGION = re.compile(r"^[A-Za-z0-9-]{1,16}$")


def is_finess(text: str) -> bool:
    """Whether TEXT has a FINESS's shape (a URL's FINESS is checked before it is logged)."""
    return bool(_FINESS.match(text))


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    kind: str  # "finess" | "ej" | "region" | "national"
    value: str | None  # None for national

    @classmethod
    def parse(cls, text: str) -> Scope:
        """ "finess:750000001", "ej:750000000", "region:IDF", "national"; ValueError naming the text."""
        raw = text.strip()
        if raw == "national":
            return cls("national", None)
        kind, sep, value = raw.partition(":")
        value = value.strip()
        if sep and kind in ("finess", "ej") and _FINESS.match(value):
            return cls(kind, value)
        if sep and kind == "region" and _REGION.match(value):
            return cls(kind, value)
        raise ValueError(
            f"not a scope: {text!r}: use finess:<FINESS>, ej:<FINESS juridique>, "
            "region:<code> or national"
        )

    def covers(self, finess: str, registry: Mapping[str, EstablishmentRecord]) -> bool:
        if self.kind == "national":
            return True
        if self.kind == "finess":
            return finess == self.value
        record = registry.get(finess)
        if record is None:
            return False
        if self.kind == "ej":
            return record.finess_ej == self.value
        return record.region == self.value

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value}"


def needed_for(finess: str, registry: Mapping[str, EstablishmentRecord]) -> list[Scope]:
    """The scopes that would cover FINESS, narrowest first (for a 403's message)."""
    needed = [Scope("finess", finess)]
    record = registry.get(finess)
    if record is not None:
        needed += [Scope("ej", record.finess_ej), Scope("region", record.region)]
    return [*needed, Scope("national", None)]


@dataclass(frozen=True, slots=True)
class Principal:
    subject: (
        str  # the token's preferred_username or sub, or a static token's name: for the access log
    )
    scopes: frozenset[Scope]
    via: str  # "oidc" | "static"

    def scope_for(self, finess: str, registry: Mapping[str, EstablishmentRecord]) -> Scope | None:
        """The narrowest of the principal's scopes that covers FINESS (the one logged), or None."""
        covering = [s for s in self.scopes if s.covers(finess, registry)]
        if not covering:
            return None
        return min(covering, key=lambda s: (KINDS.index(s.kind), s.value or ""))

    def visible(
        self, finesses: Iterable[str], registry: Mapping[str, EstablishmentRecord]
    ) -> list[str]:
        """Those of FINESSES the principal may see, sorted."""
        return sorted({f for f in finesses if self.scope_for(f, registry) is not None})

    def describe_scopes(self) -> str:
        return ", ".join(str(s) for s in sorted(self.scopes)) or "no scope"
