"""The monitoring tests' tools (a pytest plugin, see tests/conftest.py): the external binaries, and the metric contract.

promtool, amtool and alertmanager come from Debian's `prometheus` and
`prometheus-alertmanager` packages (`bash scripts/ensure-test-tools.sh` installs them; CI
runs it). A missing tool fails the test with that instruction: a skipped check would look
green while checking nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO_ROOT / "monitoring" / "prometheus"
ALERTMANAGER_CONFIG = REPO_ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"
GRAFANA_DIR = REPO_ROOT / "monitoring" / "grafana"

INSTALL_HINT = (
    "install it with `bash scripts/ensure-test-tools.sh` "
    "(Debian: apt-get install prometheus prometheus-alertmanager), "
    "or point {env} at the binary"
)

# The collector's per-establishment families (monitoring/collector.py).
INDICATOR_FAMILIES = (
    "sunes_indicator_numerator",
    "sunes_indicator_denominator",
    "sunes_indicator_target_ratio",
    "sunes_establishment_info",
    "sunes_cme_presentation",
    "sunes_establishment_watermark_timestamp_seconds",
    "sunes_establishment_now_timestamp_seconds",
    "sunes_indicator_units",
    "sunes_indicator_window_projected_ratio",
    "sunes_indicator_window_best_case_ratio",
    "sunes_indicator_window_units_to_come",
    "sunes_funding_window_start_timestamp_seconds",
    "sunes_funding_window_end_timestamp_seconds",
    "sunes_indicator_period_info",
    "sunes_indicator_pending_deadline_timestamp_seconds",
)
# The metric families the worker exports on /metrics (the contract the rules and
# dashboards are built against), with the series names a histogram expands to.
CONTRACT_METRICS: frozenset[str] = frozenset(
    {
        *INDICATOR_FAMILIES,
        "sunes_events_consumed_total",
        "sunes_deadletter_events_total",
        "sunes_last_event_timestamp_seconds",
        "sunes_consumer_lag",
        "sunes_establishments_unregistered",
        "sunes_offset_holes_total",
        "sunes_purged_entries_total",
        "sunes_records_expired_total",
        "sunes_events_applied_total",
        "sunes_processing_latency_seconds_bucket",
        "sunes_processing_latency_seconds_sum",
        "sunes_processing_latency_seconds_count",
        "sunes_state_recompute_pending",
        "sunes_rocksdb_memory_bytes",
        "sunes_rocksdb_memory_budget_bytes",
        # Written by Prometheus for every scrape target.
        "up",
    }
)


def find_binary(env_var: str, *names: str) -> str:
    """Path of the first of `names` on PATH (or `$env_var`); fails the test if none."""
    override = os.environ.get(env_var)
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            pytest.fail(f"{env_var}={override!r} is not an executable file", pytrace=False)
        return override
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{' / '.join(names)} not found on PATH: " + INSTALL_HINT.format(env=env_var),
        pytrace=False,
    )


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_binary("PROMTOOL", "promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return find_binary("AMTOOL", "amtool")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    # Debian names the server binary prometheus-alertmanager; upstream, alertmanager.
    return find_binary("ALERTMANAGER", "alertmanager", "prometheus-alertmanager")


def run_tool(
    args: Sequence[str | Path], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a tool, capture its output as text; never raises on a non-zero exit."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- Prometheus rule files --------------------------------------------------------------


def rule_files() -> list[Path]:
    return sorted((PROMETHEUS_DIR / "rules").glob("*.yml")) + sorted(
        (PROMETHEUS_DIR / "alerts").glob("*.yml")
    )


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def iter_rules(paths: Iterable[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(file, rule) for every recording and alerting rule of the shipped rule files."""
    return [
        (path, rule)
        for path in (rule_files() if paths is None else paths)
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture(scope="session")
def recorded_metrics() -> frozenset[str]:
    return frozenset(rule["record"] for _, rule in iter_rules() if "record" in rule)


# --- PromQL -----------------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads, from a real PromQL parser (raises ValueError on a
    syntax error). Selectors without a name contribute their `__name__="…"` matcher."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def check_with_promtool(
    promtool: str, exprs: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on a throwaway rules file holding each expression as a
    recording rule: the expressions are then parsed by Prometheus itself."""
    rules = [{"record": f"check:expr_{i}", "expr": expr} for i, expr in enumerate(exprs.values())]
    path = tmp_path / "exprs.rules.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}, allow_unicode=True),
        encoding="utf-8",
    )
    return run_tool([promtool, "check", "rules", path])


@pytest.fixture(scope="session")
def promtool_check_exprs(
    promtool: str,
) -> Callable[[dict[str, str], Path], subprocess.CompletedProcess[str]]:
    def check(exprs: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
        return check_with_promtool(promtool, exprs, tmp_path)

    return check
