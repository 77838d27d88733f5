"""The pages in process, with bearer tokens (the browser's sign-in and two workers:
test_pages_browser.py): figures within the scope, a figure's units with filters, paging and
CSV, a French 403 outside the scope, a redirect to the sign-in without an identity."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streams.access.config import AccessConfig
from streams.access.static import hash_token
from streams.worker.app import SunesWorker
from streams.worker.config import WorkerConfig
from streams.worker.pages.base import site_of
from streams.worker.pages.config import PageConfig
from streams.worker.pages.forwarding import FORWARDED, Reply
from streams.worker.pages.session import Sealer
from tests import builders
from tests.builders import F1, F2
from tests.streams.worker.serving import serving, worker_of

NATIONAL = "national-token-0123456789abcdef"
ONLY_F2 = "only-f2-token-0123456789abcdef"
SECRET = "a-session-secret-of-the-tests-0123456789"
PAGE = f"/ui/{F1}/DS1.1/2023-01"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events() -> list[dict[str, object]]:
    """F1: 30 January stays, 10 with a letter deposited in time; F2: one stay."""
    out: list[dict[str, object]] = [builders.establishment(), builders.establishment(F2)]
    for i in range(30):
        out.append(builders.discharged(f"S-{i:02}", patient=f"P-{i:02}"))
        if i < 10:
            out.append(
                builders.produced(f"D-{i}", "11490-0", stay_id=f"S-{i:02}", patient=f"P-{i:02}")
            )
            out.append(
                builders.deposited(f"D-{i}", "11490-0", stay_id=f"S-{i:02}", patient=f"P-{i:02}")
            )
    out.append(builders.discharged("S-F2", finess=F2, patient="P-F2"))
    return out


async def client_for(tmp_path: Path, secret: str | None = SECRET) -> TestClient:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "ars"\nsha256 = "{hash_token(NATIONAL)}"\nscopes = ["national"]\n'
        f'[[token]]\nname = "clinique"\nsha256 = "{hash_token(ONLY_F2)}"\nscopes = ["finess:{F2}"]\n'
    )
    config = WorkerConfig(
        store="memory://", access=AccessConfig(tokens_file=tokens),
        pages=PageConfig(session_secret=secret),
    )  # fmt: skip
    return await serving(config, events())


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    c = await client_for(tmp_path)
    yield c
    await c.close()


async def test_figures_within_the_scope(client: TestClient) -> None:
    response = await client.get("/ui/", headers=bearer(NATIONAL))
    html = await response.text()
    assert response.status == 200, html
    assert "text/html" in response.headers["Content-Type"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert f"FINESS {F1}" in html and f"FINESS {F2}" in html
    assert "Centre hospitalier 1" in html
    assert f'href="/ui/{F1}/DS1.1/2023-01' in html
    assert "<link" not in html and "<script" not in html and "http" not in html.split("<main>")[1]

    narrow = await (await client.get("/ui/", headers=bearer(ONLY_F2))).text()
    assert f"FINESS {F2}" in narrow and f"FINESS {F1}" not in narrow


async def test_an_establishment_being_recomputed_shows_no_figure_but_why(
    client: TestClient,
) -> None:
    worker_of(client).establishments.outdated.add(F1)  # as a recovery finds it
    html = await (await client.get("/ui/", headers=bearer(NATIONAL))).text()
    section = html.split(f'id="e{F1}"')[1].split("</section>")[0]
    assert "en cours de recalcul" in section
    assert "<table" not in section and "unités" not in section  # no mixed figure
    other = html.split(f'id="e{F2}"')[1].split("</section>")[0]
    assert "en cours de recalcul" not in other and "<table" in other


async def test_a_figures_units_filtered_paged_and_as_csv(client: TestClient) -> None:
    response = await client.get(PAGE, headers=bearer(NATIONAL))
    html = await response.text()
    assert response.status == 200, html
    assert "30 unité(s) correspondent au filtre" in html
    assert html.count('<tr class="unite ') == 30

    # pending first (their deadline is not passed: "now" is the latest discharge), then counted
    assert html.index('class="unite pending"') < html.index('class="unite counted"')
    assert html.count('class="unite counted"') == 10
    pending = await (await client.get(PAGE + "?status=pending", headers=bearer(NATIONAL))).text()
    assert 'class="unite counted"' not in pending and "20 unité(s)" in pending
    assert "aucun document" in pending  # the reason's French label (processors.formatting)

    paged = await (await client.get(PAGE + "?page_size=25&page=2", headers=bearer(NATIONAL))).text()
    assert paged.count('<tr class="unite ') == 5 and "page 2 sur 2" in paged
    assert 'id="precedente"' in paged and 'id="suivante"' not in paged

    csv_response = await client.get(PAGE + "?format=csv&status=counted", headers=bearer(NATIONAL))
    assert csv_response.status == 200
    assert "attachment" in csv_response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await csv_response.text())))
    assert len(rows) == 10 and {r["status"] for r in rows} == {"counted"}


async def test_outside_the_scope_a_french_403_naming_the_scope(client: TestClient) -> None:
    response = await client.get(PAGE, headers=bearer(ONLY_F2))
    html = await response.text()
    assert response.status == 403
    assert "hors de votre périmètre" in html and f"finess:{F1}" in html and "national" in html
    assert "S-01" not in html


async def test_bad_filters_say_what_is_accepted(client: TestClient) -> None:
    response = await client.get(PAGE + "?status=lost", headers=bearer(NATIONAL))
    assert response.status == 400
    assert "pending" in await response.text()
    # a FINESS that is not one: 400 before anything is logged (a newline cannot forge a line)
    response = await client.get("/ui/75%0Afake/DS1.1/2023-01", headers=bearer(NATIONAL))
    assert response.status == 400 and "9 caractères" in await response.text()


async def test_no_identity_goes_to_the_sign_in_or_says_the_pages_are_off(
    client: TestClient, tmp_path: Path
) -> None:
    # No provider configured here: the page says what is missing rather than redirecting.
    response = await client.get(PAGE, allow_redirects=False)
    assert response.status == 404
    assert "SUNES_OIDC_ISSUER" in await response.text()
    assert (await client.get(PAGE, headers=bearer("wrong-token-0123456789"))).status == 401

    off = await client_for(tmp_path, secret=None)
    try:
        response = await off.get(PAGE, headers=bearer(NATIONAL))
        assert response.status == 404
        assert "SUNES_SESSION_SECRET" in await response.text()
    finally:
        await off.close()


@pytest.fixture
async def provider() -> AsyncIterator[str]:
    """A provider's discovery document on a real local HTTP server (the whole sign-in
    against Keycloak: test_pages_browser.py); its issuer URL."""
    app = web.Application()
    server = TestServer(app)

    async def discovery(request: web.Request) -> web.Response:
        base = f"http://127.0.0.1:{server.port}/realms/r/protocol/openid-connect"
        return web.json_response({
            "issuer": f"http://127.0.0.1:{server.port}/realms/r",
            "authorization_endpoint": f"{base}/auth", "token_endpoint": f"{base}/token",
            "end_session_endpoint": f"{base}/logout",
        })  # fmt: skip

    app.router.add_get("/realms/r/.well-known/openid-configuration", discovery)
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}/realms/r"
    await server.close()


@pytest.mark.parametrize("public_url", [None, "https://sunes.example"])
async def test_a_page_without_a_session_starts_the_sign_in(
    provider: str, public_url: str | None
) -> None:
    worker = SunesWorker(WorkerConfig(
        store="memory://", access=AccessConfig(oidc_issuer=provider, oidc_audience="sunes-worker"),
        pages=PageConfig(session_secret=SECRET, client_id="sunes-pages", public_url=public_url),
    ))  # fmt: skip
    worker.app.web.init_server()
    client = TestClient(TestServer(worker.app.web.web_app))
    await client.start_server()
    try:
        response = await client.get(PAGE + "?status=pending", allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == "/ui/login?" + urlencode(
            {"next": PAGE + "?status=pending"}
        )
        response = await client.get(response.headers["Location"], allow_redirects=False)
        assert response.status == 302
        target = urlsplit(response.headers["Location"])
        assert (
            f"{target.scheme}://{target.netloc}{target.path}"
            == provider + "/protocol/openid-connect/auth"
        )
        query = parse_qs(target.query)
        base = public_url or f"http://{client.host}:{client.port}"
        assert query["redirect_uri"] == [base + "/ui/callback"]
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
        assert query["client_id"] == ["sunes-pages"] and query["scope"] == ["openid"]
        assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("sunes_login=") and "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie and "Path=/ui" in cookie
        assert ("Secure" in cookie) == (public_url is not None)  # TLS in front: Secure
        # an open redirect is refused: back to the figures after signing in
        response = await client.get("/ui/login?next=https://evil.example/", allow_redirects=False)
        login = Sealer(SECRET).open_login(response.cookies["sunes_login"].value)
        assert login is not None and login.next_path == "/ui/"
    finally:
        await client.close()


async def test_another_workers_finess_is_forwarded_once_never_again(client: TestClient) -> None:
    # The assignment's owner of F3 stands in for a second worker (two real workers:
    # test_pages_browser.py); what the page asks it is recorded.
    peers = site_of(worker_of(client)).peers
    asked: list[tuple[str, str, str]] = []

    async def get(url: str, path_qs: str, token: str) -> Reply:
        asked.append((url, path_qs, token))
        return Reply(200, "text/html", b"<p>the owner's page</p>", {})

    peers.owner = lambda finess: "http://owner:6066"  # type: ignore[method-assign]
    peers.get = get  # type: ignore[method-assign]
    response = await client.get(
        "/ui/750000003/DS1.1/2023-01?status=pending", headers=bearer(NATIONAL)
    )
    assert response.status == 200 and await response.text() == "<p>the owner's page</p>"
    assert asked == [("http://owner:6066", "/ui/750000003/DS1.1/2023-01?status=pending", NATIONAL)]

    forwarded = {**bearer(NATIONAL), FORWARDED: "http://another:6066"}
    response = await client.get("/ui/750000003/DS1.1/2023-01", headers=forwarded)
    assert response.status == 404 and len(asked) == 1  # answered here, not sent on
