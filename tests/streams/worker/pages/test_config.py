"""The pages' settings: each error names the variable and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli.errors import ConfigError
from streams.worker.app import SunesWorker, advertised_host
from streams.worker.config import WorkerConfig, web_url_from
from streams.worker.pages.config import page_config_from

SECRET = "0123456789abcdef0123456789abcdef"


def test_off_without_a_secret_on_with_one() -> None:
    assert not page_config_from({}).enabled
    config = page_config_from({
        "SUNES_SESSION_SECRET": SECRET, "SUNES_OIDC_CLIENT_ID": "sunes-pages",
        "SUNES_PUBLIC_URL": "https://sunes.example/",
    })  # fmt: skip
    assert config.enabled and config.client_id == "sunes-pages"
    assert config.public_url == "https://sunes.example"
    assert SECRET not in repr(config)


def test_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "s").write_text(SECRET + "\n")
    (tmp_path / "c").write_text("client-secret\n")
    config = page_config_from({
        "SUNES_SESSION_SECRET_FILE": str(tmp_path / "s"),
        "SUNES_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "c"),
    })  # fmt: skip
    assert config.session_secret == SECRET and config.client_secret == "client-secret"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SUNES_SESSION_SECRET": "short"}, "SUNES_SESSION_SECRET has 5 characters"),
        ({"SUNES_SESSION_SECRET": SECRET, "SUNES_SESSION_SECRET_FILE": "/x"}, "once"),
        ({"SUNES_SESSION_SECRET_FILE": "/nonexistent/secret"}, "SUNES_SESSION_SECRET_FILE"),
        ({"SUNES_PUBLIC_URL": "sunes.example"}, "SUNES_PUBLIC_URL"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        page_config_from(env)


def test_web_url() -> None:
    assert web_url_from({}) is None
    assert web_url_from({"SUNES_WEB_URL": "http://worker-2:6066/"}) == "http://worker-2:6066"
    with pytest.raises(ConfigError, match="SUNES_WEB_URL"):
        web_url_from({"SUNES_WEB_URL": "worker-2:6066"})


def test_the_address_the_other_workers_forward_to() -> None:
    assert advertised_host("10.0.0.5") == "10.0.0.5"
    assert advertised_host("0.0.0.0") not in ("0.0.0.0", "")  # the host name: reachable
    worker = SunesWorker(WorkerConfig(store="memory://", web_host="0.0.0.0", web_port=7001))
    assert str(worker.app.conf.canonical_url) == f"http://{advertised_host('0.0.0.0')}:7001"
    given = SunesWorker(WorkerConfig(store="memory://", web_url="http://worker-2:6066"))
    assert str(given.app.conf.canonical_url) == "http://worker-2:6066"
