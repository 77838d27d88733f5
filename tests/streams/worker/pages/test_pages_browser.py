"""A real browser signs in through Keycloak's form (authorization code + PKCE) and reads the
figures and worklists of two workers on a real broker: every FINESS's figures on either
worker's figures page, every FINESS's list through either worker (the other forwards it),
filters, paging, the CSV download equal to `sunes explain`'s; a narrower person sees only
their scope and a French 403 outside it; signing out ends the provider's session too.

One address in front of both (tests/streams/worker/pages/balancer.py: each request to the
next worker in turn) serves every page too: the sign-in starts on one worker and ends on the
other. The workers and the balancer share 127.0.0.1, whose cookies a browser sends to every
port of it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from processors.collection import Establishments
from processors.formatting import units_to_csv
from processors.units import Unit
from streams.testing import WorkerProcess
from streams.worker.pages.session import SESSION_COOKIE
from streams.worker.table_store import partition_of
from tests.kafka_tools import publish_on
from tests.keycloak_tools import PASSWORD, WORKER_CLIENT, KeycloakServer
from tests.streams.worker.pages.balancer import RoundRobin
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows
from tests.streams.worker.test_worklists_kafka import batch_of
from topics.names import TopicNames

pytestmark = [pytest.mark.kafka, pytest.mark.keycloak, pytest.mark.browser]

SECRET = "the-workers-shared-session-secret-0123456789"
PAGES_CLIENT = "sunes-pages"
# The docs' screenshots are retaken on request only (SUNES_SCREENSHOTS=docs/screenshots):
# a test run leaves the work tree as it found it; otherwise they go to a temporary folder.
SCREENSHOTS_ENV = "SUNES_SCREENSHOTS"
WAIT = 60  # seconds for a page (a sign-in goes through Keycloak)
TOKEN_SECONDS = 15  # the access tokens' lifetime


@pytest.fixture
def balancers() -> Iterator[list[RoundRobin]]:
    started: list[RoundRobin] = []
    yield started
    for balancer in started:
        balancer.stop()


def sign_in(driver: Chrome, url: str, username: str) -> None:
    """Open a page; Keycloak's form comes first: fill it, and land back on the page."""
    driver.get(url)
    WebDriverWait(driver, WAIT).until(
        expected_conditions.presence_of_element_located((By.ID, "username"))
    )
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "kc-login").click()
    WebDriverWait(driver, WAIT).until(
        expected_conditions.presence_of_element_located((By.ID, "deconnexion"))
    )


def figures_on_page(driver: Chrome) -> set[tuple[str, str, str, int]]:
    """(FINESS, indicator, period, total) of every row of the figures page (read in one
    script: a WebDriver call per cell would dominate the test's time)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('section.etablissement tbody tr')].map(r =>"
        " [r.querySelector('a.liste').getAttribute('href'), r.cells[7].textContent])"
    )
    found = set()
    for link, total in rows:
        finess, indicator, period = link.split("/ui/")[1].split("?")[0].split("/")
        found.add((finess, indicator, period, int(total)))
    return found


def units_shown(driver: Chrome) -> list[tuple[str, str]]:
    """(unit id, status) of the worklist's rows."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#unites tr.unite')].map(r =>"
        " [r.cells[0].textContent, r.classList[1]])"
    )
    return [(unit_id, status) for unit_id, status in rows]


def as_shown(units: list[Unit]) -> list[tuple[str, str]]:
    return [(u.unit_id, u.status) for u in units]


def screenshot(driver: Chrome, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height), 700), 1800))
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tempfile.mkdtemp(prefix="sunes-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(folder / name))
    driver.set_window_size(1400, 1000)


def test_a_browser_signs_in_and_reads_every_worklist_through_any_worker(
    keycloak: KeycloakServer,
    chromium: Chrome,
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    unique_kafka_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    balancers: list[RoundRobin],
) -> None:
    messages, finess = dataset(seed=17, establishments=5, days=40)
    expected = reference(messages, finess)
    batch: Establishments = batch_of(messages)

    realm = keycloak.realm()
    national = realm.user("ars-national", ["national"])
    one = sorted(finess)[0]
    clinic = realm.user("dim-clinique", [f"finess:{one}"])

    monkeypatch.setenv("SUNES_SESSION_SECRET", SECRET)
    monkeypatch.setenv("SUNES_OIDC_CLIENT_ID", PAGES_CLIENT)
    flags = ("--oidc-issuer", realm.issuer, "--oidc-audience", WORKER_CLIENT)
    app_id = unique_kafka_name("pages")
    a = workers(app_id, None, *flags)
    b = workers(app_id, None, *flags)
    lb = RoundRobin([a.url(""), b.url("")]).start()
    balancers.append(lb)
    addresses = [a.url(""), b.url(""), lb.url]  # each worker's, and the one in front of both
    callbacks = [address + "/ui/callback" for address in addresses]
    # Access tokens of 15 s: the session renews them (from 10 s before they expire) on its own.
    realm.browser_client(PAGES_CLIENT, callbacks, TOKEN_SECONDS)
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([a, b], finess, expected, seconds=180)

    # Both workers own establishments: the lists of one are read through the other.
    owned = {w.port: set(w.get("/health")["partitions"]) for w in (a, b)}
    holders = {
        f: next(p for p, parts in owned.items() if partition_of(f, 4) in parts) for f in finess
    }
    assert set(holders.values()) == {a.port, b.port}, holders

    sign_in(chromium, lb.url + "/ui/", national)
    login = next(worker for path, worker in lb.served if path.startswith("/ui/login"))
    callback = next(worker for path, worker in lb.served if path.startswith("/ui/callback"))
    assert login != callback  # the sign-in began on one worker and ended on the other
    cookie = next(c for c in chromium.get_cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    want = {(r["finess"], r["indicator"], r["period"], r["denominator"]) for r in expected}
    for address in addresses:  # every figures page shows every establishment, wherever it is
        chromium.get(address + "/ui/")
        assert figures_on_page(chromium) == want
    # The access token expires: the next page renews it with the refresh token, in the cookie.
    time.sleep(TOKEN_SECONDS - 10 + 1)
    chromium.get(a.url("/ui/"))
    assert figures_on_page(chromium) == want
    renewed = next(c for c in chromium.get_cookies() if c["name"] == SESSION_COOKIE)
    assert renewed["value"] != cookie["value"]
    assert "page session renewed for ars-national" in a.log_path.read_text(errors="replace")
    screenshot(chromium, "figures-page.png")

    # Every FINESS's list through either worker: the units of `sunes explain`, in its order.
    for f in sorted(finess):
        row = max((r for r in expected if r["finess"] == f), key=lambda r: r["denominator"])
        units = batch.units(f, row["indicator"], row["period"])
        for address in addresses:
            chromium.get(address + f"/ui/{f}/{row['indicator']}/{row['period']}")
            count = chromium.find_element(By.ID, "compte").text
            assert count.startswith(f"{row['denominator']} unité(s)"), (f, address, count)
            assert units_shown(chromium) == as_shown(units[:500])

    # Filters, paging and the CSV on the largest list (the window of DS1.1 of one FINESS).
    row = max(expected, key=lambda r: (r["indicator"] == "DS1.1", r["denominator"]))
    f, indicator, period = row["finess"], row["indicator"], row["period"]
    other = b if holders[f] == a.port else a  # through the worker that does not own it
    units = batch.units(f, indicator, period)
    status = "missed" if any(u.status == "missed" for u in units) else "pending"
    chosen = [u for u in units if u.status == status]
    assert len(chosen) > 25, "the data set must give a list of more than one page"
    chromium.get(other.url(f"/ui/{f}/{indicator}/{period}"))
    Select(chromium.find_element(By.ID, "statut")).select_by_value(status)
    Select(chromium.find_element(By.ID, "par-page")).select_by_value("25")
    chromium.find_element(By.ID, "filtrer").click()
    WebDriverWait(chromium, WAIT).until(lambda d: "page_size=25" in d.current_url)
    assert units_shown(chromium) == as_shown(chosen[:25])
    screenshot(chromium, "worklist-page.png")
    chromium.find_element(By.ID, "suivante").click()
    WebDriverWait(chromium, WAIT).until(lambda d: "page=2" in d.current_url)
    assert units_shown(chromium) == as_shown(chosen[25:50])
    chromium.find_element(By.ID, "csv").click()
    downloads = tmp_path / "downloads"
    deadline = time.monotonic() + WAIT
    while not list(downloads.glob("*.csv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    (csv_file,) = downloads.glob("*.csv")
    assert csv_file.name == f"unites-{f}-{indicator}-{period}.csv"
    assert csv_file.read_text() == units_to_csv(chosen)  # `sunes explain --status … -f csv`

    # Signing out ends the provider's session: the next page asks for the password again.
    chromium.find_element(By.ID, "deconnexion").click()
    # The answer comes after the worker has ended the session at Keycloak (a round trip):
    # until then the browser still shows the worklist, which has no message.
    WebDriverWait(chromium, WAIT).until(
        expected_conditions.presence_of_element_located((By.ID, "message"))
    )
    assert "Vous êtes déconnecté" in chromium.find_element(By.ID, "message").text
    assert SESSION_COOKIE not in {c["name"] for c in chromium.get_cookies()}

    # A clinic's team sees its establishment only, through either worker; a 403 elsewhere.
    sign_in(chromium, lb.url + "/ui/", clinic)
    sections = chromium.find_elements(By.CSS_SELECTOR, "section.etablissement")
    assert [s.get_attribute("id") for s in sections] == [f"e{one}"]
    elsewhere = next(x for x in sorted(finess) if x != one)
    row = next(r for r in expected if r["finess"] == elsewhere)
    for address in addresses:
        chromium.get(address + f"/ui/{elsewhere}/{row['indicator']}/{row['period']}")
        text = chromium.find_element(By.TAG_NAME, "main").text
        assert "hors de votre périmètre" in text and f"finess:{elsewhere}" in text
        assert not chromium.find_elements(By.ID, "unites")
    for address in addresses:
        mine = next(r for r in expected if r["finess"] == one)
        chromium.get(address + f"/ui/{one}/{mine['indicator']}/{mine['period']}")
        assert chromium.find_element(By.ID, "compte").text.startswith(
            f"{mine['denominator']} unité(s)"
        )
