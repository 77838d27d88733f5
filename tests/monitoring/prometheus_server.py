"""A real Prometheus server for end-to-end tests: the shipped rules and alerts (copied, with
short `for:`), fast scrape and evaluation, one static job, its HTTP API."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import orjson
import yaml

from streams.brokers._common import free_port, terminate
from tests.monitoring.tools import load_yaml

T = TypeVar("T")


def copy_rules_with_short_for(
    sources: Sequence[Path], destination: Path, duration: str = "2s"
) -> list[Path]:
    """Copy rule files into `destination`, every alert's `for:` set to `duration`.

    The shipped durations (hours) are what production needs; a test cannot wait them out.
    Everything else — expressions, labels, keep_firing_for, annotations — is kept as shipped.
    """
    destination.mkdir(parents=True, exist_ok=True)
    copies: list[Path] = []
    for source in sources:
        document = load_yaml(source)
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and "for" in rule:
                    rule["for"] = duration
        copy = destination / source.name
        copy.write_text(
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=1000),
            encoding="utf-8",
        )
        copies.append(copy)
    return copies


class PrometheusServer:
    """`prometheus` on 127.0.0.1:<free port>, its TSDB and log under `work_dir`."""

    def __init__(
        self,
        binary: str,
        work_dir: Path,
        job: str,
        targets: Sequence[str],
        rule_files: Sequence[Path],
        interval: str = "1s",
    ) -> None:
        self.binary = binary
        self.work_dir = work_dir
        self.port = free_port()
        self.config_path = work_dir / "prometheus.yml"
        self.log_path = work_dir / "prometheus.log"
        self.config: dict[str, Any] = {
            "global": {
                "scrape_interval": interval,
                # Never more than the interval (Prometheus refuses the config otherwise).
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Self:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False), "utf-8")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.wait_until(self._ready, timeout, "Prometheus to be ready")
        return self

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, 30, "Prometheus")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no Prometheus log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --- HTTP API ------------------------------------------------------------------------

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a successful /api/v1 answer (raises on an error answer)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as response:
            body = orjson.loads(response.read())
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus API {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant vector query: (labels, value) per series."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), as /api/v1/alerts gives them."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    # --- waiting -------------------------------------------------------------------------

    def wait_until(
        self,
        condition: Callable[[], bool],
        seconds: float,
        what: str,
        details: Callable[[], str] = lambda: "",
    ) -> None:
        """Poll `condition` until it holds; on timeout fail with `details` and the log tail."""
        deadline = time.monotonic() + seconds
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"prometheus exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            try:
                if condition():
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or a slow answer: ask again
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {seconds}s waiting for {what}\n{details()}\n"
                    f"--- Prometheus log ---\n{self.log_tail()}"
                )
            time.sleep(0.5)
