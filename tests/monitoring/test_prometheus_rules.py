"""The Prometheus rules and alerts: promtool checks, promtool unit tests, and the
conventions every alert follows (labels, bilingual annotations, runbook anchors)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring.runbook_links import RUNBOOK_BASE
from tests.monitoring.tools import (
    CONTRACT_METRICS,
    PROMETHEUS_DIR,
    REPO_ROOT,
    find_binary,
    iter_rules,
    load_yaml,
    metric_names,
    rule_files,
    run_tool,
)

pytestmark = pytest.mark.promtool

TESTS_DIR = PROMETHEUS_DIR / "tests"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
SEVERITIES = {"critical", "warning", "info"}


def unit_test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.yml"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for _, rule in iter_rules() if "alert" in rule]


def alert_names() -> list[str]:
    return sorted({rule["alert"] for rule in alert_rules()})


def github_anchor(heading: str) -> str:
    """The id GitHub (and most Markdown renderers) give a heading."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.+?)\s*#*$", text, re.M)}
    anchors |= set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    return anchors


def test_a_missing_tool_fails_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("PROMTOOL", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"ensure-test-tools\.sh"):
        find_binary("PROMTOOL", "promtool")


def test_rule_files_exist() -> None:
    names = {p.name for p in rule_files()}
    assert {"sunes-indicators.rules.yml", "sunes-pipeline.rules.yml"} <= names
    assert {"sunes-indicators.alerts.yml", "sunes-pipeline.alerts.yml"} <= names


def test_promtool_check_rules(promtool: str) -> None:
    result = run_tool([promtool, "check", "rules", *rule_files()])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config_loads_every_rule_file(promtool: str) -> None:
    result = run_tool([promtool, "check", "config", PROMETHEUS_DIR / "prometheus.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files globs are relative to prometheus.yml: every shipped file must be picked up.
    for path in rule_files():
        assert str(path.relative_to(REPO_ROOT)) in result.stdout or path.name in result.stdout, (
            f"prometheus.yml does not load {path}:\n{result.stdout}"
        )


def test_promtool_unit_tests_pass(promtool: str) -> None:
    files = unit_test_files()
    assert files, f"no promtool unit tests in {TESTS_DIR}"
    result = run_tool([promtool, "test", "rules", *files])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def _with_absolute_rule_files(source: Path) -> dict[str, Any]:
    """A unit test file's content, runnable from another directory."""
    doc: dict[str, Any] = load_yaml(source)
    doc["rule_files"] = [str((source.parent / f).resolve()) for f in doc["rule_files"]]
    return doc


@pytest.mark.parametrize(
    ("source", "mutate"),
    [
        # A wrong severity on an expected alert.
        (
            "sunes-indicators.alerts.test.yml",
            lambda doc: doc["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"].update(
                severity="warning"
            ),
        ),
        # A wrong recorded value (the mean of the rates instead of Σnum/Σden).
        (
            "sunes-indicators.rules.test.yml",
            lambda doc: next(
                t
                for t in doc["tests"][0]["promql_expr_test"]
                if t["expr"].startswith("finess_ej:sunes_indicator:ratio")
            )["exp_samples"][0].update(value=0.675),
        ),
        # An alert expected to stay quiet.
        (
            "sunes-pipeline.test.yml",
            lambda doc: doc["tests"][1]["alert_rule_test"][0].update(
                exp_alerts=[{"exp_labels": {"severity": "critical"}}]
            ),
        ),
    ],
    ids=["severity", "rollup-value", "quiet-alert"],
)
def test_unit_tests_catch_a_wrong_expectation(
    promtool: str, tmp_path: Path, source: str, mutate: Any
) -> None:
    """promtool must fail on a broken expectation: proof the unit tests can fail at all."""
    doc = _with_absolute_rule_files(TESTS_DIR / source)
    mutate(doc)
    path = tmp_path / source
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = run_tool([promtool, "test", "rules", path])
    assert result.returncode != 0, f"promtool accepted a wrong expectation:\n{result.stdout}"
    assert "FAILED" in result.stdout + result.stderr


def test_unit_tests_sample_inputs_at_most_every_5_minutes() -> None:
    # Sparser samples fall out of the 5 min lookback between points: `for:` restarts and
    # an alert silently never fires in the test.
    for path in unit_test_files():
        for i, group in enumerate(load_yaml(path)["tests"]):
            interval = group.get("interval", load_yaml(path).get("evaluation_interval", "1m"))
            assert _seconds(interval) <= 300, f"{path.name} test #{i}: interval {interval}"


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


@pytest.mark.parametrize("alertname", alert_names())
def test_every_alert_fires_and_stays_quiet_in_unit_tests(alertname: str) -> None:
    fires = quiet = 0
    for path in unit_test_files():
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                if case["alertname"] == alertname:
                    if case.get("exp_alerts"):
                        fires += 1
                    else:
                        quiet += 1
    assert fires, f"no promtool test makes {alertname} fire"
    assert quiet, f"no promtool test checks that {alertname} stays quiet"


def test_every_recording_rule_value_is_tested(recorded_metrics: frozenset[str]) -> None:
    tested: set[str] = set()
    for path in unit_test_files():
        for group in load_yaml(path)["tests"]:
            for case in group.get("promql_expr_test", []):
                if case.get("exp_samples"):
                    tested |= metric_names(case["expr"])
    missing = sorted(recorded_metrics - tested)
    assert not missing, f"recording rules whose values no promtool test checks: {missing}"


@pytest.mark.parametrize(
    "rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels'].get('cause', '')}"
)
def test_alert_conventions(rule: dict[str, Any]) -> None:
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in SEVERITIES, f"severity must be one of {SEVERITIES}"
    assert re.fullmatch(r"Sunes[A-Z][A-Za-z]+", rule["alert"])
    for key in ("summary", "description"):
        text = annotations.get(key, "")
        # French first, then the English version after "EN:".
        french, sep, english = text.partition("EN:")
        assert sep and french.strip() and english.strip(), f"{key} must be French + 'EN: …'"
    # Absolute, from the one base of monitoring/runbook_links.py.
    base, _, anchor = annotations.get("runbook_url", "").partition("#")
    assert base == RUNBOOK_BASE, "runbook_url must be RUNBOOK_BASE#<anchor>"
    assert re.fullmatch(r"https?://\S+", base)
    assert anchor in runbook_anchors(), f"docs/runbook.md has no #{anchor}"
    assert "for" in rule, "every alert needs a `for:` so that one bad scrape does not notify"


def test_rules_read_only_contract_metrics_and_recorded_series(
    recorded_metrics: frozenset[str],
) -> None:
    known = CONTRACT_METRICS | recorded_metrics
    for path, rule in iter_rules():
        unknown = metric_names(rule["expr"]) - known
        name = rule.get("record") or rule.get("alert")
        assert not unknown, f"{path.name} {name}: unknown metrics {sorted(unknown)}"


def test_recording_rules_follow_level_metric_operation_naming(
    recorded_metrics: frozenset[str],
) -> None:
    for name in recorded_metrics:
        level, metric, operation = name.split(":")
        assert level and metric.startswith("sunes_") and operation, name
