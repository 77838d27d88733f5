"""The Grafana dashboards: committed JSON = generator output, every query is PromQL that
Prometheus parses and reads only metrics that exist, provisioning matches the compose
mounts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitoring.grafana import generate
from monitoring.grafana.dashboards_src import pipeline
from processors.catalogue import RATE_INDICATORS
from processors.units import STATUSES
from tests.monitoring.tools import (
    CONTRACT_METRICS,
    GRAFANA_DIR,
    REPO_ROOT,
    iter_rules,
    load_yaml,
    metric_names,
)

DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
# Prometheus writes ALERTS for every pending or firing alert: dashboards may list them.
PROMETHEUS_SYNTHETIC = frozenset({"ALERTS"})
GRAFANA_GLOBALS = frozenset(
    {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__all"}
)


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # inside a collapsed row


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title/refId, expr) of every Prometheus query of every panel."""
    return [
        (name, f"{panel.get('title')} [{target.get('refId')}]", target["expr"])
        for name, dashboard in dashboards().items()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, variable, PromQL inside label_values()/query_result()) of query variables."""
    found = []
    for name, dashboard in dashboards().items():
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
            # label_values(<selector>, label) and query_result(<expr>): check the PromQL.
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", query, re.S) or re.fullmatch(
                r"query_result\((.+)\)", query, re.S
            )
            if m:
                found.append((name, var["name"], m.group(1)))
            else:
                pytest.fail(f"{name}: variable {var['name']}: unsupported query {query!r}")
    return found


def all_queries() -> list[tuple[str, str, str]]:
    return panel_queries() + variable_queries()


def substitute_variables(expr: str) -> str:
    """What Grafana would send: variables replaced by plausible values."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    return re.sub(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)", "x", expr)


def test_dashboards_exist() -> None:
    assert set(dashboards()) == set(generate.render_all()), "a dashboard is missing"
    assert len(dashboards()) == 3


def test_committed_json_is_the_generator_output() -> None:
    stale = generate.stale_files(DASHBOARDS_DIR)
    assert not stale, (
        f"dashboards out of date: {stale}. Run `python -m monitoring.grafana.generate` "
        "and commit monitoring/grafana/dashboards/."
    )


def test_generator_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    generate.write_all(tmp_path)
    assert generate.main(["--check", "--output-dir", str(tmp_path)]) == 0
    first = sorted(tmp_path.glob("*.json"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("SUN-ES", "SUNES"), "utf-8")
    (tmp_path / "orphan.json").write_text("{}", encoding="utf-8")
    assert sorted(generate.stale_files(tmp_path)) == sorted([first.name, "orphan.json"])
    assert generate.main(["--check", "--output-dir", str(tmp_path)]) == 1


def test_generator_is_deterministic() -> None:
    assert generate.render_all() == generate.render_all()


@pytest.mark.promtool
def test_every_query_parses_with_promtool(promtool_check_exprs: Any, tmp_path: Path) -> None:
    queries = all_queries()
    assert len(queries) > 40
    exprs = {f"{d} / {where}": substitute_variables(expr) for d, where, expr in queries}
    result = promtool_check_exprs(exprs, tmp_path)
    if result.returncode != 0:
        # Say which panel: check them one by one.
        bad = [
            key
            for key, expr in exprs.items()
            if promtool_check_exprs({key: expr}, tmp_path).returncode != 0
        ]
        pytest.fail(f"queries Prometheus rejects: {bad}\n{result.stdout}{result.stderr}")


@pytest.mark.parametrize(("dashboard", "where", "expr"), all_queries())
def test_query_reads_only_existing_metrics(
    dashboard: str, where: str, expr: str, recorded_metrics: frozenset[str]
) -> None:
    known = CONTRACT_METRICS | recorded_metrics | PROMETHEUS_SYNTHETIC
    names = metric_names(substitute_variables(expr))
    assert names, f"{dashboard} / {where}: reads no metric"
    assert names <= known, f"{dashboard} / {where}: unknown metrics {sorted(names - known)}"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_queries_use_only_defined_variables(name: str) -> None:
    dashboard = dashboards()[name]
    defined = {var["name"] for var in dashboard["templating"]["list"]} | GRAFANA_GLOBALS
    text = json.dumps(dashboard["panels"]) + json.dumps(dashboard["templating"])
    used = {a or b for a, b in re.findall(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)", text)}
    # `${__value.raw}` and friends in data links are field values, not variables.
    used = {u for u in used if not u.startswith("__value") and u != "__url_time_range"}
    assert used <= defined, f"undefined variables: {sorted(used - defined)}"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_structure(name: str) -> None:
    dashboard = dashboards()[name]
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["title"].startswith("SUN-ES — ")
    assert "sunes" in dashboard["tags"]
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        assert panel.get("title"), f"panel {panel['id']} has no title"
        if panel["type"] == "row":
            continue
        # Every panel follows the dashboard's datasource variable.
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)) and all(ref_ids), panel["title"]


def test_dashboard_uids_are_unique() -> None:
    uids = [d["uid"] for d in dashboards().values()]
    assert len(uids) == len(set(uids))


def test_establishment_dashboard_covers_every_rate_indicator() -> None:
    dashboard = dashboards()["sunes-establishment.json"]
    titles = " | ".join(p["title"] for p in panels(dashboard))
    exprs = " | ".join(t["expr"] for p in panels(dashboard) for t in p.get("targets", []))
    for indicator in RATE_INDICATORS:
        label = indicator.replace("DS", "DS ", 1)
        assert f'indicator="{indicator}"' in exprs, indicator
        # French libellé SEGUR in the title, e.g. "DS 1.1 — Lettre de liaison à la sortie".
        assert re.search(rf"{re.escape(label)} — \w", titles), f"no French title for {indicator}"
    assert "DS 4.3 — " in titles


def test_overview_variables() -> None:
    variables = {v["name"]: v for v in dashboards()["sunes-overview.json"]["templating"]["list"]}
    assert {"region", "window", "indicator"} <= set(variables)
    # The indicator picker shows French titles and sends the metric label value.
    for indicator in RATE_INDICATORS:
        assert f" : {indicator}" in variables["indicator"]["query"]


def test_provisioning_points_at_the_mounted_dashboards() -> None:
    compose = load_yaml(REPO_ROOT / "docker-compose.yml")
    mounts = dict(
        (volume.split(":")[1], volume.split(":")[0])
        for volume in compose["services"]["grafana"]["volumes"]
    )
    provisioning = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "sunes.yml")
    path = provisioning["providers"][0]["options"]["path"]
    assert (REPO_ROOT / mounts[path]).resolve() == DASHBOARDS_DIR.resolve()
    assert (REPO_ROOT / mounts["/etc/grafana/provisioning"]).resolve() == (
        GRAFANA_DIR / "provisioning"
    ).resolve()
    datasources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    # The compose service name and Prometheus' port.
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]


@pytest.mark.promtool
def test_query_checks_can_fail(promtool_check_exprs: Any, tmp_path: Path) -> None:
    # The harness itself: a broken query is rejected, an unknown metric is seen.
    assert promtool_check_exprs({"bad": "sum(rate(x[5m])"}, tmp_path).returncode != 0
    assert promtool_check_exprs({"good": "sum(rate(x[5m]))"}, tmp_path).returncode == 0
    with pytest.raises(ValueError):
        metric_names("sum(rate(x[5m])")
    assert metric_names(
        'sum by (le) (rate(a_bucket{job="j"}[5m])) / on () group_left b or {__name__="c"}'
    ) == {"a_bucket", "b", "c"}
    assert substitute_variables('x{a=~"$region", b="${finess:raw}"}[$__rate_interval]') == (
        'x{a=~"x", b="x"}[5m]'
    )


def test_pipeline_threshold_lines_match_the_alerts() -> None:
    exprs = {rule["alert"]: rule["expr"] for _, rule in iter_rules() if "alert" in rule}
    assert f"> {pipeline.DEAD_LETTER_SHARE}" in exprs["SunesDeadLetterRate"]
    assert f"drain_seconds > {pipeline.DRAIN_SECONDS}" in exprs["SunesConsumerLag"]


def data_links(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, url) of every data link: panel defaults and field overrides."""
    found = []
    for panel in panels(dashboard):
        config = panel.get("fieldConfig", {})
        for link in config.get("defaults", {}).get("links", []):
            found.append((panel["title"], link["url"]))
        for item in config.get("overrides", []):
            for prop in item["properties"]:
                if prop["id"] == "links":
                    found.extend((panel["title"], link["url"]) for link in prop["value"])
    return found


WORKLIST_URL = re.compile(
    r"\$\{worklist\}/ui/\$\{finess\}/(?P<indicator>[^/?]+)/(?P<period>[^/?]+)"
    r"\?(?P<query>.*)"
)


def test_worklist_links_open_the_worklist_page() -> None:
    # the page (streams/worker/pages): the browser's session carries the identity
    dashboard = dashboards()["sunes-establishment.json"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["worklist"]["type"] == "textbox"
    assert variables["worklist"]["query"].startswith("http")
    links = data_links(dashboard)
    # Each indicator's rate panel links its window and its current month; the unit tables.
    assert len(links) == 2 * len(RATE_INDICATORS) + 2
    for title, url in links:
        match = WORKLIST_URL.fullmatch(url)
        assert match, f"{title}: {url}"
        indicator, period = match["indicator"], match["period"]
        assert indicator in RATE_INDICATORS or indicator == "${__data.fields.indicator}", url
        assert period in {"$window", "$current_month", "${__data.fields.period_key}"}, url
        for param in match["query"].split("&"):
            name, _, value = param.partition("=")
            assert name in {"status", "reason"}, url
            if not value.startswith("$"):
                assert set(value.split(",")) <= set(STATUSES), url


def test_columns_read_by_links_show_raw_values() -> None:
    # A data link reads a cell's displayed text: a value mapping on it would break the URL.
    dashboard = dashboards()["sunes-establishment.json"]
    for panel in panels(dashboard):
        read = set(re.findall(r"__data\.fields\.(\w+)", json.dumps(panel.get("fieldConfig", {}))))
        if not read:
            continue
        renames = {}
        for transformation in panel.get("transformations", []):
            renames |= transformation["options"].get("renameByName", {})
        for item in panel["fieldConfig"]["overrides"]:
            shown = item["matcher"]["options"]
            if shown in {renames.get(field) for field in read}:
                ids = {prop["id"] for prop in item["properties"]}
                assert not ids & {"mappings", "unit", "decimals"}, (panel["title"], shown)


def test_establishment_dashboard_explains_its_figures() -> None:
    dashboard = dashboards()["sunes-establishment.json"]
    reads: dict[str, set[str]] = {}
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            reads.setdefault(panel["title"], set()).update(
                metric_names(substitute_variables(target["expr"]))
            )
    wanted = {
        "Unités non comptées par motif — fenêtre de financement": {
            "finess:sunes_indicator_units:sum"
        },
        "Unités par statut et motif": {
            "finess:sunes_indicator_units:sum",
            "finess:sunes_indicator_period_info:max",
        },
        "Unités en attente et leur échéance": {
            "finess:sunes_indicator_pending:sum",
            "finess:sunes_indicator_pending_deadline_timestamp_seconds:min",
        },
        "Projection de fin de fenêtre face à la cible": {
            "finess:sunes_indicator_window_projected:ratio",
            "finess:sunes_indicator_window_best_case:ratio",
            "finess:sunes_indicator_target_ratio:max",
        },
        "Dernier jour de la fenêtre": {"finess:sunes_funding_window_end_timestamp_seconds:max"},
        "Maintenant de l'établissement": {"finess:sunes_establishment_now_timestamp_seconds:max"},
    }
    for title, names in wanted.items():
        assert title in reads, title
        assert names <= reads[title], (title, reads[title])
