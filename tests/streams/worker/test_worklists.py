"""The worklists on the worker's web server (aiohttp's test client, in process): off without
an identity source, 401 without a known token, filters, pages, JSON and CSV, an access log line that
carries no patient data."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from processors.formatting import UNIT_COLUMNS
from streams.access.config import AccessConfig
from streams.worker.config import WorkerConfig
from streams.worker.worklists import parse_query
from tests import builders
from tests.builders import F1
from tests.streams.worker.serving import serving

TOKEN = "s3cret-token-for-the-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
URL = f"/indicators/{F1}/DS1.1/2023-01/units"


def events() -> list[dict[str, Any]]:
    """Three January stays: one letter deposited in time, one failed (DMPClosed), one none."""
    return [
        builders.establishment(),
        builders.discharged("S-OK", patient="P-OK"),
        builders.produced("D-OK", "11490-0", stay_id="S-OK", patient="P-OK"),
        builders.deposited("D-OK", "11490-0", stay_id="S-OK", patient="P-OK"),
        builders.discharged("S-FAIL", patient="P-FAIL"),
        builders.produced("D-FAIL", "11490-0", stay_id="S-FAIL", patient="P-FAIL"),
        builders.deposit_failed("D-FAIL"),
        builders.discharged("S-NONE", patient="P-NONE"),
    ]


async def client_for(token: str | None) -> TestClient:
    access = AccessConfig(legacy_token=token)
    return await serving(WorkerConfig(store="memory://", access=access), events())


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    c = await client_for(TOKEN)
    yield c
    await c.close()


async def test_off_without_a_configured_token() -> None:
    c = await client_for(None)
    try:
        response = await c.get(URL, headers=BEARER)
        assert response.status == 403
        assert "SUNES_API_TOKEN" in (await response.json())["error"]
    finally:
        await c.close()


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}]
)
async def test_401_without_the_token(client: TestClient, headers: dict[str, str]) -> None:
    response = await client.get(URL, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "S-OK" not in await response.text()


async def test_the_units_of_a_figure_are_its_denominator(client: TestClient) -> None:
    response = await client.get(URL, headers=BEARER)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["total"] == 3 and response.headers["X-Total-Count"] == "3"
    by_stay = {u["unit_id"]: u for u in body["units"]}
    assert set(by_stay) == {"S-OK", "S-FAIL", "S-NONE"}
    assert by_stay["S-OK"]["status"] == "counted" and by_stay["S-OK"]["reason"] is None
    assert by_stay["S-FAIL"]["reason"] == "deposit_failed"
    assert by_stay["S-NONE"]["reason"] == "no_document"
    assert by_stay["S-OK"]["patient_id"] == "P-OK"
    rows = await (await client.get(f"/indicators?finess={F1}")).json()
    (row,) = [r for r in rows if r["indicator"] == "DS1.1" and r["period"] == "2023-01"]
    counted = [u for u in body["units"] if u["status"] == "counted"]
    assert (len(counted), body["total"]) == (row["numerator"], row["denominator"])


async def test_filters_and_pages(client: TestClient) -> None:
    both = await (await client.get(URL + "?status=pending,missed", headers=BEARER)).json()
    assert {u["unit_id"] for u in both["units"]} == {"S-FAIL", "S-NONE"}
    failed = await (await client.get(URL + "?reason=deposit_failed", headers=BEARER)).json()
    assert [u["unit_id"] for u in failed["units"]] == ["S-FAIL"]
    pages = [
        await (await client.get(URL + f"?page_size=2&page={p}", headers=BEARER)).json()
        for p in (1, 2, 3)
    ]
    assert [len(p["units"]) for p in pages] == [2, 1, 0]
    assert len({u["unit_id"] for p in pages for u in p["units"]}) == 3


async def test_csv_by_accept_header_or_format(client: TestClient) -> None:
    for url, headers in ((URL, {**BEARER, "Accept": "text/csv"}), (URL + "?format=csv", BEARER)):
        response = await client.get(url, headers=headers)
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert tuple(rows[0]) == UNIT_COLUMNS
        assert {r["unit_id"] for r in rows} == {"S-OK", "S-FAIL", "S-NONE"}


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("?status=late", 400, "?status=late is not known"),
        ("?reason=bad_luck", 400, "?reason=bad_luck is not known"),
        ("?page=0", 400, "?page must be a whole number"),
        ("?page_size=x", 400, "?page_size must be a whole number"),
        ("?format=xml", 400, "?format must be json or csv"),
    ],
)
async def test_a_bad_request_says_what_to_fix(
    client: TestClient, query: str, status: int, says: str
) -> None:
    response = await client.get(URL + query, headers=BEARER)
    assert response.status == status
    assert says in (await response.json())["error"]


async def test_unknown_indicator_or_finess_is_404(client: TestClient) -> None:
    response = await client.get(f"/indicators/{F1}/DS9.9/2023-01/units", headers=BEARER)
    assert response.status == 404 and "DS1.1" in (await response.json())["error"]
    response = await client.get("/indicators/990000001/DS1.1/2023-01/units", headers=BEARER)
    assert response.status == 404 and "owns it" in (await response.json())["error"]


async def test_every_access_is_logged_without_the_rows(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    every = await (await client.get(URL, headers=BEARER)).json()
    missed = sum(u["status"] == "missed" for u in every["units"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sunes.access"):
        await client.get(URL + "?status=missed", headers=BEARER)
        await client.get(URL)
    served, refused = (r.getMessage() for r in caplog.records if r.name == "sunes.access")
    assert f"worklist {F1} DS1.1 2023-01 status=missed reason=any page=1" in served
    assert (
        f"of {missed} served to api-token (static) from 127.0.0.1, scope national: {missed} row(s)"
        in served
    )
    assert "refused (401)" in refused
    for secret in ("S-OK", "S-FAIL", "S-NONE", "P-OK", "P-FAIL", "P-NONE", TOKEN):
        assert secret not in served + refused


def test_the_token_is_never_in_the_configuration_repr() -> None:
    assert TOKEN not in repr(WorkerConfig(access=AccessConfig(legacy_token=TOKEN)))


def test_a_short_token_is_refused() -> None:
    from streams.cli.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 16"):
        AccessConfig(legacy_token="short")


def test_parse_query_prefers_the_format_parameter() -> None:
    assert parse_query(F1, "DS1.1", "F3", {}, "text/csv").csv
    assert not parse_query(F1, "DS1.1", "F3", {"format": "json"}, "text/csv").csv
