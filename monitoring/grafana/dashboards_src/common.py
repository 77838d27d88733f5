"""What the SUN-ES dashboards share: datasource, variables, French labels, panel helpers.

Labels of the indicators come from the indicator catalogue (processors.catalogue), so a
dashboard never disagrees with the reports on what "DS 1.2" is called.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from processors.catalogue import BY_ID, RATE_INDICATORS

# Every panel and variable reads the datasource chosen in the `datasource` variable, so the
# dashboards work on any Prometheus, not only the provisioned one.
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")

# Months and funding windows are Paris calendar periods (SPEC, counting rule 1).
INDICATOR_TIMEZONE = "Europe/Paris"

DASHBOARD_TAGS = ["sunes", "segur", "sun-es"]

PERIOD_LABELS: dict[str, str] = {
    "funding_window": "Fenêtre de financement",
    "current_month": "Mois en cours",
    "previous_month": "Mois précédent",
}


def indicator_title(indicator_id: str) -> str:
    """`DS1.1` → `DS 1.1 — Lettre de liaison à la sortie` (libellé SEGUR, short form)."""
    indicator = BY_ID[indicator_id]
    return f"{indicator_id.replace('DS', 'DS ', 1)} — {indicator.short_label}"


def rate_indicators() -> tuple[str, ...]:
    """The indicators computed as rates, in catalogue order (DS 4.3 is a declaration)."""
    return RATE_INDICATORS


def indicator_value_mappings() -> list[models.ValueMapping]:
    """Value mapping that shows a table's `DS1.1` cell as its French title."""
    options = {
        indicator_id: models.ValueMappingResult(text=indicator_title(indicator_id), index=i)
        for i, indicator_id in enumerate(RATE_INDICATORS)
    }
    return [models.ValueMap(options=options)]


def query(
    expr: str,
    legend: str = "",
    ref_id: str = "A",
    *,
    instant: bool = False,
    fmt: PromQueryFormat | None = None,
) -> Dataquery:
    q = Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if fmt is not None:
        q = q.format(fmt)
    return q


def table_queries(
    exprs: Sequence[str], *, fmt: PromQueryFormat = PromQueryFormat.TABLE
) -> list[Dataquery]:
    """Instant queries A, B, C… for a table that merges them on their common labels."""
    return [
        query(expr, ref_id=chr(ord("A") + i), instant=True, fmt=fmt) for i, expr in enumerate(exprs)
    ]


# --- variables -----------------------------------------------------------------------


def datasource_variable() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("datasource").label("Source de données").type("prometheus")


def query_variable(
    name: str, label: str, expr: str, *, multi: bool = True, regex: str | None = None
) -> dash.QueryVariable:
    var = (
        dash.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(expr)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )
    if multi:
        # `.*` rather than a list of every value: short queries, and "all" also matches
        # series that lack the label.
        var = (
            var.multi(True)
            .include_all(True)
            .all_value(".*")
            .current(models.VariableOption(selected=True, text="All", value="$__all"))
        )
    if regex is not None:
        var = var.regex(regex)
    return var


def indicator_variable() -> dash.CustomVariable:
    """Indicator picker showing French titles, with the metric label value behind each."""
    pairs = []
    for indicator_id in RATE_INDICATORS:
        text = indicator_title(indicator_id)
        # Grafana splits a custom variable's definition on commas and on " : ".
        if "," in text or " : " in text:
            raise ValueError(f"indicator title unusable in a custom variable: {text!r}")
        pairs.append(f"{text} : {indicator_id}")
    return (
        dash.CustomVariable("indicator")
        .label("Indicateur")
        .values(",".join(pairs))
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )


def hidden_label_variable(
    name: str, label: str, selector: str, label_name: str
) -> dash.QueryVariable:
    """A single value read from a label (e.g. the establishment's window), not shown."""
    return query_variable(name, label, f"label_values({selector}, {label_name})", multi=False).hide(
        models.VariableHide.HIDE_VARIABLE
    )


def worklist_variable(default: str) -> dash.TextBoxVariable:
    """Where people open the worklists (the pages /ui/…, docs/pages.md): data links use it."""
    return (
        dash.TextBoxVariable("worklist")
        .label("Pages (listes de travail)")
        .description(
            "Adresse des workers (celle du répartiteur de charge) servant les pages "
            "/ui/<FINESS>/<indicateur>/<période> : la session du navigateur porte l'identité."
        )
        .default_value(default)
    )


def worklist_url(indicator: str, period: str, query: str) -> str:
    """The page of one figure's units (any worker serves any FINESS; the browser's session
    carries the identity); indicator and period may be variables or field references
    (${__data.fields.indicator})."""
    return "${worklist}/ui/${finess}/" + f"{indicator}/{period}?{query}"


def worklist_link(title: str, url: str) -> dash.DashboardLink:
    """A panel's data link (the SDK types field links as dashboard links)."""
    return dash.DashboardLink(title).type(models.DashboardLinkType.LINK).url(url).target_blank(True)


def field_links(title: str, url: str) -> list[dict[str, object]]:
    """The `links` of a field override: one data link on that column or series."""
    return [{"title": title, "url": url, "targetBlank": True}]


# --- panels --------------------------------------------------------------------------


def percent_thresholds() -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=None, color="text")])
    )


def step_thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


def legend_table() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common_models.LegendDisplayMode.TABLE)
        .placement(common_models.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull"])
    )


def timeseries_panel(
    title: str,
    targets: Iterable[Dataquery],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .legend(legend_table())
        .line_width(2)
        .fill_opacity(10)
    )
    if description:
        panel = panel.description(description)
    for target in targets:
        panel = panel.with_target(target)
    if unit == "percentunit":
        panel = panel.min(0).max(1)
    return panel


def stat_panel(
    title: str,
    targets: Iterable[Dataquery],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 6,
    height: int = 4,
    thresholds: dash.ThresholdsConfig | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .color_mode(common_models.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds or step_thresholds((None, "text")))
    )
    if description:
        panel = panel.description(description)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def merged_table_panel(
    title: str,
    targets: Sequence[Dataquery],
    *,
    rename: dict[str, str],
    hide: Sequence[str] = ("Time",),
    description: str = "",
    width: int = 24,
    height: int = 10,
) -> table.Panel:
    """A table of instant queries merged on their labels, columns renamed in French.

    Columns not in `rename` (and not hidden) keep their label name; the order of `rename`
    is the order of the columns.
    """
    panel = (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": dict.fromkeys(hide, True),
                    "indexByName": {name: i for i, name in enumerate(rename)},
                    "renameByName": dict(rename),
                },
            )
        )
    )
    if description:
        panel = panel.description(description)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def override(name: str, **properties: object) -> tuple[str, list[models.DynamicConfigValue]]:
    """Field override by column/series name: override("Cible", unit="percentunit")."""
    return name, [
        models.DynamicConfigValue(id_val=key.replace("_", "."), value=value)
        for key, value in properties.items()
    ]


def dashed_line() -> dict[str, object]:
    return {"fill": "dash", "dash": [10, 10]}


def sunes_dashboard(uid: str, title: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(DASHBOARD_TAGS)
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .link(
            dash.DashboardLink("Tableaux SUN-ES")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags(["sunes"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(datasource_variable())
    )


def number_panels(model: models.Dashboard) -> models.Dashboard:
    """Give every panel (rows and the panels inside collapsed rows) a stable id, in order.

    Grafana assigns missing ids at load time, which would make every save a diff.
    """
    next_id = 1
    for panel in model.panels or []:
        panel.id_val = next_id
        next_id += 1
        for inner in getattr(panel, "panels", None) or []:
            inner.id_val = next_id
            next_id += 1
    return model
