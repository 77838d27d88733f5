"""Scoped access on the worker's views (aiohttp's test client, in process, static tokens): the
worklists of an establishment only to a scope that covers it, /indicators and /metrics open or
by scope (SUNES_FIGURES_ACCESS), one access-log line per access. The same against Keycloak and
Kafka: tests/streams/access/test_access_keycloak.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from streams.access.config import AccessConfig
from streams.access.static import hash_token
from streams.worker.config import WorkerConfig
from tests import builders
from tests.streams.worker.serving import serving

PARIS, LYON = "750000001", "690000001"
TOKENS = {  # name → (token, scopes)
    "paris": ("paris-token-0123456789abcdef", ["finess:750000001"]),
    "lyon-ej": ("lyon-token-0123456789abcdef", ["ej:690000099"]),
    "idf": ("idf-token-0123456789abcdef", ["region:IDF"]),
    "scraper": ("scraper-token-0123456789abcdef", ["national"]),
}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


def tokens_file(path: Path) -> Path:
    path.write_text(
        "".join(
            f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(token)}"\nscopes = {scopes!r}\n'.replace("'", '"')
            for name, (token, scopes) in TOKENS.items()
        )
    )  # fmt: skip
    return path


async def client_for(access: AccessConfig) -> TestClient:
    events = [
        builders.establishment(PARIS),
        builders.establishment(LYON, finess_ej="690000099", region="ARA"),
        builders.discharged("S-P", finess=PARIS, patient="P-P"),
        builders.discharged("S-L", finess=LYON, patient="P-L"),
    ]
    return await serving(WorkerConfig(store="memory://", access=access), events)


@pytest.fixture
async def scoped(tmp_path: Path) -> AsyncIterator[TestClient]:
    c = await client_for(
        AccessConfig(tokens_file=tokens_file(tmp_path / "tokens.toml"), figures_access="token")
    )
    yield c
    await c.close()


def units(finess: str) -> str:
    return f"/indicators/{finess}/DS1.1/2023-01/units"


async def finesses(response: object) -> set[str]:
    return {row["finess"] for row in await response.json()}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "sees"),
    [("paris", {PARIS}), ("lyon-ej", {LYON}), ("idf", {PARIS}), ("scraper", {PARIS, LYON})],
)
async def test_each_scope_sees_its_establishments(
    scoped: TestClient, name: str, sees: set[str]
) -> None:
    for finess in (PARIS, LYON):
        response = await scoped.get(units(finess), headers=bearer(name))
        if finess in sees:
            assert response.status == 200
            assert (await response.json())["units"][0]["finess"] == finess
        else:
            assert response.status == 403
            error = (await response.json())["error"]
            assert f"FINESS {finess} needs one of finess:{finess}" in error
            assert f"{name} has" in error
        one = await scoped.get(f"/indicators?finess={finess}", headers=bearer(name))
        assert one.status == (200 if finess in sees else 403)
    response = await scoped.get("/indicators", headers=bearer(name))
    assert response.status == 200 and await finesses(response) == sees
    metrics = await (await scoped.get("/metrics", headers=bearer(name))).text()
    for finess in (PARIS, LYON):
        assert (f'finess="{finess}"' in metrics) == (finess in sees)
    assert ("sunes_events_consumed" in metrics) == (name == "scraper")  # the pipeline's: national


async def test_403_before_404_so_a_scope_cannot_probe_other_finesses(scoped: TestClient) -> None:
    response = await scoped.get(units("130000001"), headers=bearer("paris"))
    assert response.status == 403
    response = await scoped.get(units("130000001"), headers=bearer("scraper"))
    assert response.status == 404


@pytest.mark.parametrize("path", [units(PARIS), "/indicators", "/metrics"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-known-token-000"}])
async def test_401_without_a_known_token(
    scoped: TestClient, path: str, headers: dict[str, str]
) -> None:
    response = await scoped.get(path, headers=headers)
    assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"


async def test_figures_open_by_default_worklists_still_scoped(tmp_path: Path) -> None:
    c = await client_for(AccessConfig(tokens_file=tokens_file(tmp_path / "tokens.toml")))
    try:
        assert await finesses(await c.get("/indicators")) == {PARIS, LYON}
        metrics = await (await c.get("/metrics")).text()
        assert f'finess="{PARIS}"' in metrics and f'finess="{LYON}"' in metrics
        assert (await c.get(units(PARIS))).status == 401
        assert (await c.get(units(LYON), headers=bearer("paris"))).status == 403
    finally:
        await c.close()


async def test_without_identity_source_everything_scoped_is_off() -> None:
    c = await client_for(AccessConfig(figures_access="token"))
    try:
        for path in (units(PARIS), "/indicators", "/metrics"):
            response = await c.get(path, headers={"Authorization": "Bearer anything-at-all-0000"})
            assert response.status == 403
            assert "SUNES_OIDC_ISSUER" in (await response.json())["error"]
    finally:
        await c.close()


async def test_every_access_is_logged_with_subject_scope_and_count(
    scoped: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sunes.access"):
        await scoped.get(units(PARIS), headers=bearer("idf"))
        await scoped.get("/indicators", headers=bearer("idf"))
        await scoped.get("/metrics", headers=bearer("idf"))
        await scoped.get(units(LYON), headers=bearer("idf"))
    lines = [r.getMessage() for r in caplog.records if r.name == "sunes.access"]
    worklist, indicators, metrics, refused = lines
    assert worklist.startswith(f"worklist {PARIS} DS1.1 2023-01 status=any reason=any page=1")
    assert "served to idf (static) from 127.0.0.1, scope region:IDF: 1 row(s)" in worklist
    assert "indicators finess=all served to idf (static)" in indicators
    assert "scope region:IDF:" in indicators
    assert (
        "metrics served to idf (static) from 127.0.0.1, scope region:IDF: 1 establishment(s)"
        in metrics
    )
    assert f"worklist {LYON} DS1.1 2023-01 refused (403)" in refused
    for secret in ("S-P", "S-L", "P-P", "P-L", *(t for t, _ in TOKENS.values())):
        assert not any(secret in line for line in lines)


@pytest.mark.parametrize(
    "path", [units("75%0A000001"), "/indicators?finess=75%0A000001", units("7500000011")]
)
async def test_a_malformed_finess_is_400_and_never_logged(
    scoped: TestClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sunes.access"):
        response = await scoped.get(path, headers=bearer("idf"))
    assert response.status == 400 and "not a FINESS" in (await response.json())["error"]
    assert not any("\n" in r.getMessage() for r in caplog.records)


async def test_a_control_character_in_a_period_is_escaped_in_the_log(
    scoped: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sunes.access"):
        response = await scoped.get(
            f"/indicators/{PARIS}/DS1.1/2023-01%0Aforged/units", headers=bearer("idf")
        )
    assert response.status == 200
    (line,) = [r.getMessage() for r in caplog.records if r.name == "sunes.access"]
    assert "2023-01\\nforged" in line and "\n" not in line
