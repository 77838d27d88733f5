"""A real browser for tests: headless Chromium from Debian's packages (`chromium`,
`chromium-driver`, installed by scripts/ensure-test-tools.sh) driven by Selenium through
/usr/bin/chromedriver, so that Selenium Manager never downloads a browser or a driver. A
pytest plugin (tests/conftest.py); tests that use it are marked `browser`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium, 1400 px wide, saving downloads to tmp_path/downloads; quit at the
    end of the test."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            raise AssertionError(
                f"{path} is missing: run scripts/ensure-test-tools.sh "
                "(apt-get install chromium chromium-driver)"
            )
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1400,1000", "--lang=fr-FR", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
    ):  # fmt: skip
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(
        service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
        options=options,
    )
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()
