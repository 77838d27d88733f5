"""Scopes read against the registry: what each kind covers, and the narrowest one used."""

from __future__ import annotations

import orjson
import pytest

from streams.access.scopes import Principal, Scope, needed_for
from tests import builders
from topics.records import EstablishmentRecord
from topics.validation import parse_record

# Two legal entities in IDF, one in ARA; 690000009 is not in the registry.
PARIS_1, PARIS_2, PARIS_OTHER, LYON, UNKNOWN = (
    "750000001", "750000002", "750000003", "690000001", "690000009",
)  # fmt: skip


def record(finess: str, ej: str, region: str) -> EstablishmentRecord:
    parsed = parse_record(orjson.dumps(builders.establishment(finess, finess_ej=ej, region=region)))
    assert isinstance(parsed, EstablishmentRecord)
    return parsed


REGISTRY = {
    PARIS_1: record(PARIS_1, "750000099", "IDF"),
    PARIS_2: record(PARIS_2, "750000099", "IDF"),
    PARIS_OTHER: record(PARIS_OTHER, "750000098", "IDF"),
    LYON: record(LYON, "690000099", "ARA"),
}
ALL = [PARIS_1, PARIS_2, PARIS_OTHER, LYON, UNKNOWN]


@pytest.mark.parametrize(
    ("text", "covered"),
    [
        (f"finess:{PARIS_1}", [PARIS_1]),
        (f"finess:{UNKNOWN}", [UNKNOWN]),  # its own FINESS, registered or not
        ("ej:750000099", [PARIS_1, PARIS_2]),
        ("region:IDF", [PARIS_1, PARIS_2, PARIS_OTHER]),
        ("region:ARA", [LYON]),  # not the unregistered 69…: its region is unknown
        ("national", ALL),
    ],
)
def test_what_each_kind_covers(text: str, covered: list[str]) -> None:
    scope = Scope.parse(text)
    assert str(scope) == text
    assert [f for f in ALL if scope.covers(f, REGISTRY)] == covered


@pytest.mark.parametrize(
    "text",
    ["", "finess:", "finess:12345", "ej:ABCDEFGHI", "region:", "nation", "world:1", "national:x"],
)
def test_a_malformed_scope_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=f"not a scope: {text!r}"):
        Scope.parse(text)


def test_corsican_finess_and_spaces() -> None:
    assert Scope.parse(" finess:2A0000001 ") == Scope("finess", "2A0000001")


def test_the_narrowest_covering_scope_is_the_one_used() -> None:
    user = Principal(
        "dim", frozenset({Scope.parse("region:IDF"), Scope.parse(f"finess:{PARIS_1}")}), "oidc"
    )
    assert user.scope_for(PARIS_1, REGISTRY) == Scope("finess", PARIS_1)
    assert user.scope_for(PARIS_OTHER, REGISTRY) == Scope("region", "IDF")
    assert user.scope_for(LYON, REGISTRY) is None
    assert user.visible(reversed(ALL), REGISTRY) == [PARIS_1, PARIS_2, PARIS_OTHER]


def test_a_registry_change_moves_the_scope() -> None:
    ej = Principal("ght", frozenset({Scope.parse("ej:750000099")}), "static")
    moved = {**REGISTRY, PARIS_OTHER: record(PARIS_OTHER, "750000099", "IDF")}
    assert ej.visible(ALL, REGISTRY) == [PARIS_1, PARIS_2]
    assert ej.visible(ALL, moved) == [PARIS_1, PARIS_2, PARIS_OTHER]


def test_needed_names_every_scope_that_would_do() -> None:
    assert [str(s) for s in needed_for(PARIS_1, REGISTRY)] == [
        f"finess:{PARIS_1}", "ej:750000099", "region:IDF", "national",
    ]  # fmt: skip
    assert [str(s) for s in needed_for(UNKNOWN, REGISTRY)] == [f"finess:{UNKNOWN}", "national"]
