"""The Alertmanager configuration: amtool checks it, routes go where intended, and the
inhibit rules hold back what they should on a real Alertmanager."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.tools import ALERTMANAGER_CONFIG, iter_rules, load_yaml, run_tool

pytestmark = pytest.mark.promtool


def test_amtool_check_config(amtool: str) -> None:
    result = run_tool([amtool, "check-config", ALERTMANAGER_CONFIG])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # Pipeline: ops; critical ones to on-call.
        ({"alertname": "SunesPipelineStalled", "severity": "critical", "cause": "worker_down"},
         ["sunes-ops-oncall"]),
        ({"alertname": "SunesConsumerLag", "severity": "warning", "topic": "sunes.dmp.v1"},
         ["sunes-ops"]),
        ({"alertname": "SunesDeadLetterRate", "severity": "warning", "topic": "sunes.stays.v1"},
         ["sunes-ops"]),
        # Funding window missed: the region's ARS and the establishment's dispatcher.
        ({"alertname": "SunesIndicatorBelowTarget", "severity": "critical",
          "region": "IDF", "finess": "750000001", "indicator": "DS1.1"},
         ["ars-ile-de-france", "sunes-indicators-dispatch"]),
        ({"alertname": "SunesIndicatorBelowTarget", "severity": "critical",
          "region": "ARA", "finess": "690000001", "indicator": "DS1.1"},
         ["ars-auvergne-rhone-alpes", "sunes-indicators-dispatch"]),
        # A region without its own ARS route still reaches the establishment.
        ({"alertname": "SunesIndicatorBelowTarget", "severity": "critical",
          "region": "NAQ", "finess": "350000001", "indicator": "DS1.1"},
         ["sunes-indicators-dispatch"]),
        # Warnings: the establishment only, whatever the region.
        ({"alertname": "SunesIndicatorMonthBelowTarget", "severity": "warning",
          "region": "IDF", "finess": "750000001", "indicator": "DS1.1"},
         ["sunes-indicators-dispatch"]),
        ({"alertname": "SunesCmePresentationMissing", "severity": "warning",
          "region": "IDF", "finess": "750000001", "indicator": "DS4.3"},
         ["sunes-indicators-dispatch"]),
    ],
    ids=lambda v: v.get("alertname", "") + "-" + v.get("region", "") if isinstance(v, dict) else "",
)  # fmt: skip
def test_routes(amtool: str, labels: dict[str, str], receivers: list[str]) -> None:
    result = run_tool(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--verify.receivers={','.join(receivers)}",
            *(f"{k}={v}" for k, v in labels.items()),
        ]
    )
    assert result.returncode == 0, (
        f"{labels} should go to {receivers}; amtool says: {result.stdout}{result.stderr}"
    )


def test_every_shipped_alert_has_a_route_of_its_own(amtool: str) -> None:
    # `sunes-default` (the root receiver) only catches what no route was made for.
    for _, rule in iter_rules():
        if "alert" not in rule:
            continue
        labels = {"alertname": rule["alert"], **rule["labels"]}
        if rule["alert"].startswith(("SunesIndicator", "SunesCme", "SunesTarget")):
            labels["region"] = "NAQ"  # indicator alerts always carry a region
        result = run_tool(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
             *(f"{k}={v}" for k, v in labels.items())]
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        receivers = result.stdout.strip().split(",")
        assert receivers and "sunes-default" not in receivers, f"{labels} → {receivers}"


# --- inhibition, on a running Alertmanager -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def alertmanager_url(alertmanager_binary: str, tmp_path: Path) -> Iterator[str]:
    """An Alertmanager on 127.0.0.1 running the shipped inhibit rules.

    Receivers are emptied (no notification leaves the machine) and group_wait cut to 1 s:
    inhibition is applied when a group is flushed, and the shipped waits are minutes.
    """
    config: dict[str, Any] = load_yaml(ALERTMANAGER_CONFIG)
    config["global"] = {"resolve_timeout": "5m"}
    config["receivers"] = [{"name": r["name"]} for r in config["receivers"]]

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    config["route"].update(group_wait="1s", group_interval="1s")
    shorten(config["route"])
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            alertmanager_binary,
            f"--config.file={config_path}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: a single local instance
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"alertmanager did not start:\n{err[-3000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _post_alerts(url: str, alerts: list[dict[str, str]], *, resolved: bool = False) -> None:
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolved else now + timedelta(hours=1)
    body = [
        {
            "labels": labels,
            "startsAt": (now - timedelta(minutes=10)).isoformat(),
            "endsAt": ends.isoformat(),
        }
        for labels in alerts
    ]
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _states(url: str) -> dict[tuple[str, ...], str]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        alerts = json.load(response)
    return {
        (a["labels"]["alertname"], a["labels"].get("finess", ""), a["labels"].get("indicator", ""),
         a["labels"].get("topic", "")): a["status"]["state"]
        for a in alerts
    }  # fmt: skip


def _wait_for(url: str, expected: dict[tuple[str, ...], str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = _states(url)
        if all(states.get(key) == state for key, state in expected.items()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"expected states {expected}, Alertmanager has {states}")
        time.sleep(0.3)


STALLED = {"alertname": "SunesPipelineStalled", "severity": "critical",
           "cause": "topic_stalled", "topic": "sunes.dmp.v1"}  # fmt: skip


def _indicator(alertname: str, severity: str, finess: str, indicator: str) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, "finess": finess,
            "indicator": indicator, "region": "IDF", "finess_ej": "750000000"}  # fmt: skip


def test_inhibit_rules(alertmanager_url: str) -> None:
    below_a = _indicator("SunesIndicatorBelowTarget", "critical", "750000001", "DS1.1")
    month_a11 = _indicator("SunesIndicatorMonthBelowTarget", "warning", "750000001", "DS1.1")
    month_a12 = _indicator("SunesIndicatorMonthBelowTarget", "warning", "750000001", "DS1.2")
    lag_dmp = {"alertname": "SunesConsumerLag", "severity": "warning", "topic": "sunes.dmp.v1"}
    lag_mss = {"alertname": "SunesConsumerLag", "severity": "warning", "topic": "sunes.mss.v1"}
    out_of_reach_a = _indicator("SunesTargetUnreachable", "critical", "750000001", "DS1.2")
    projected_a12 = _indicator("SunesTargetProjectedMiss", "warning", "750000001", "DS1.2")
    projected_a11 = _indicator("SunesTargetProjectedMiss", "warning", "750000001", "DS1.1")
    targets = [out_of_reach_a, projected_a12, projected_a11]

    def key(labels: dict[str, str]) -> tuple[str, ...]:
        return (labels["alertname"], labels.get("finess", ""), labels.get("indicator", ""),
                labels.get("topic", ""))  # fmt: skip

    # Pipeline stalled on dmp: every indicator alert held back, lag on dmp too, not on mss.
    _post_alerts(
        alertmanager_url, [STALLED, below_a, month_a11, month_a12, lag_dmp, lag_mss, *targets]
    )
    _wait_for(
        alertmanager_url,
        {
            key(STALLED): "active",
            key(below_a): "suppressed",
            key(month_a11): "suppressed",
            key(month_a12): "suppressed",
            key(lag_dmp): "suppressed",
            key(lag_mss): "active",
            **{key(alert): "suppressed" for alert in targets},
        },
    )

    # Pipeline back: the window alert shows, and holds back the month alert of the same
    # indicator only.
    _post_alerts(alertmanager_url, [STALLED], resolved=True)
    _post_alerts(alertmanager_url, [below_a, month_a11, month_a12, lag_dmp, lag_mss, *targets])
    _wait_for(
        alertmanager_url,
        {
            key(below_a): "active",
            key(month_a11): "suppressed",
            key(month_a12): "active",
            key(lag_dmp): "active",
            # Out of reach holds back the projection of the same indicator only.
            key(out_of_reach_a): "active",
            key(projected_a12): "suppressed",
            key(projected_a11): "active",
        },
    )
