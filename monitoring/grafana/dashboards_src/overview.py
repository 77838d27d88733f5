"""National and regional overview: which establishments are under target, by indicator and
funding window. Audience: ARS, GHT, the national programme team."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table

from monitoring.grafana.dashboards_src import common

UID = "sunes-overview"

# Filters shared by the queries; `region` and `window` only exist on series that carry the
# registry labels (info, target gap, regional roll-ups).
SEL = 'region=~"$region", window=~"$window"'
SEL_IND = f'{SEL}, indicator=~"$indicator"'


def _under_target_count(period: str) -> str:
    # Distinct establishments under target on at least one selected indicator.
    return (
        "count(count by (finess) ("
        f'finess:sunes_indicator_target_gap:ratio{{period="{period}", {SEL_IND}}} < 0'
        ")) or vector(0)"
    )


def _selection_rate(period: str) -> str:
    # The selected regions as one population: sum first, then divide.
    sel = f'period="{period}", {SEL_IND}'
    return (
        f"sum by (window, indicator) (region:sunes_indicator_numerator:sum{{{sel}}})\n"
        f"/ sum by (window, indicator) (region:sunes_indicator_denominator:sum{{{sel}}})"
    )


def _under_target_rows() -> list[str]:
    """Rate, target, denominator and gap of each (establishment, indicator) under target.

    `0 * base + on(…) group_left X` keeps the registry labels of `base` on X's value, so
    the four queries share their labels and the table merges them into one row each. The
    gap itself is `base * 1`: arithmetic drops the metric name, as in the other three.
    """
    base = f'(finess:sunes_indicator_target_gap:ratio{{period="funding_window", {SEL_IND}}} < 0)'
    return [
        f"0 * {base}\n+ on (finess, indicator, period) group_left\nfiness:sunes_indicator:ratio",
        f"0 * {base}\n+ on (finess, indicator) group_left\nfiness:sunes_indicator_target_ratio:max",
        f"0 * {base}\n+ on (finess, indicator, period) group_left\n"
        "finess:sunes_indicator_denominator:sum",
        f"{base} * 1",
    ]


def _under_target_table() -> table.Panel:
    rename = {
        "name": "Établissement",
        "finess": "FINESS",
        "finess_ej": "FINESS EJ",
        "region": "Région",
        "window": "Fenêtre",
        "indicator": "Indicateur",
        "Value #A": "Taux",
        "Value #B": "Cible",
        "Value #C": "Dénominateur",
        "Value #D": "Écart à la cible",
    }
    panel = common.merged_table_panel(
        "Établissements sous la cible — fenêtre de financement",
        common.table_queries(_under_target_rows()),
        rename=rename,
        hide=("Time", "period"),
        description=(
            "Chaque ligne : un établissement et un indicateur dont le taux sur la fenêtre de "
            "financement est sous la cible. Cliquer sur le FINESS ouvre le détail."
        ),
        height=12,
    )
    for name, props in (
        common.override("Indicateur", mappings=common.indicator_value_mappings()),
        common.override("Taux", unit="percentunit", decimals=1),
        common.override("Cible", unit="percentunit", decimals=0),
        common.override("Écart à la cible", unit="percentunit", decimals=1),
        common.override(
            "FINESS",
            links=[
                {
                    "title": "Détail de l'établissement",
                    "url": "/d/sunes-establishment?var-finess=${__value.raw}"
                    "&${datasource:queryparam}&${__url_time_range}",
                }
            ],
        ),
    ):
        panel = panel.override_by_name(name, props)
    # Furthest under target first.
    return panel.sort_by(
        [common_builders.TableSortByFieldState().display_name("Écart à la cible").desc(False)]
    )


def _counts_by_indicator_table() -> table.Panel:
    sel = f'period="funding_window", {SEL_IND}'
    below = f"sum by (indicator, window) (region:sunes_establishments_below_target:count{{{sel}}})"
    with_target = (
        f"sum by (indicator, window) (region:sunes_establishments_with_target:count{{{sel}}})"
    )
    panel = common.merged_table_panel(
        "Établissements sous la cible, par indicateur et fenêtre",
        # No establishment under target gives no series: `or … * 0` shows a 0 instead.
        common.table_queries([f"{below}\nor {with_target} * 0", with_target]),
        rename={
            "indicator": "Indicateur",
            "window": "Fenêtre",
            "Value #A": "Sous la cible",
            "Value #B": "Avec une cible",
        },
        width=12,
        height=10,
    )
    name, props = common.override("Indicateur", mappings=common.indicator_value_mappings())
    return panel.override_by_name(name, props)


def _active_alerts_table() -> table.Panel:
    return common.merged_table_panel(
        "Alertes indicateurs en cours",
        common.table_queries(
            [
                'ALERTS{alertstate="firing", '
                'alertname=~"SunesIndicator.*|SunesCmePresentationMissing", '
                f"{SEL}}}"
            ]
        ),
        rename={
            "alertname": "Alerte",
            "severity": "Sévérité",
            "name": "Établissement",
            "finess": "FINESS",
            "region": "Région",
            "window": "Fenêtre",
            "indicator": "Indicateur",
        },
        hide=("Time", "Value", "__name__", "alertstate", "finess_ej", "period"),
        width=12,
        height=10,
    )


def build() -> dash.Dashboard:
    d = (
        common.sunes_dashboard(
            UID,
            "SUN-ES — Vue nationale et régionale",
            "Indicateurs d'usage SUN-ES (Ségur numérique) : établissements sous la cible "
            "par indicateur, fenêtre de financement et région.",
        )
        .timezone(common.INDICATOR_TIMEZONE)
        .time("now-90d", "now")
        .refresh("5m")
        .with_variable(
            common.query_variable(
                "region", "Région", "label_values(finess:sunes_establishment_info:max, region)"
            )
        )
        .with_variable(
            common.query_variable(
                "window",
                "Fenêtre de financement",
                'label_values(finess:sunes_establishment_info:max{region=~"$region"}, window)',
            )
        )
        .with_variable(common.indicator_variable())
    )

    d = d.with_row(dash.Row("Synthèse"))
    d = d.with_panel(
        common.stat_panel(
            "Établissements suivis",
            [
                common.query(
                    f"count(finess:sunes_establishment_info:max{{{SEL}}}) or vector(0)",
                    instant=True,
                )
            ],
        )
    )
    warn = common.step_thresholds((None, "green"), (1, "orange"))
    d = d.with_panel(
        common.stat_panel(
            "Sous la cible — fenêtre de financement",
            [common.query(_under_target_count("funding_window"), instant=True)],
            description="Établissements dont au moins un indicateur sélectionné est sous "
            "la cible de leur fenêtre de financement.",
            thresholds=common.step_thresholds((None, "green"), (1, "red")),
        )
    )
    d = d.with_panel(
        common.stat_panel(
            "Sous la cible — mois en cours",
            [common.query(_under_target_count("current_month"), instant=True)],
            description="Mois en cours de chaque établissement (mois de sa dernière sortie "
            "vue). Les documents peuvent encore arriver pendant le délai de grâce.",
            thresholds=warn,
        )
    )
    d = d.with_panel(
        common.stat_panel(
            "DS 4.3 — Présentation MSS citoyenne en CME non déclarée (F2–F4)",
            [
                common.query(
                    "count((finess:sunes_cme_presentation:max == 0)\n"
                    "* on (finess) group_left\n"
                    f'finess:sunes_establishment_info:max{{{SEL}, window=~"F2|F3|F4"}})'
                    " or vector(0)",
                    instant=True,
                )
            ],
            thresholds=warn,
        )
    )

    d = d.with_row(dash.Row("Par indicateur"))
    d = d.with_panel(_counts_by_indicator_table())
    d = d.with_panel(_active_alerts_table())
    d = d.with_panel(
        common.timeseries_panel(
            "Taux des régions sélectionnées — fenêtre de financement",
            [common.query(_selection_rate("funding_window"), "{{indicator}} · {{window}}")],
            unit="percentunit",
            description="Somme des numérateurs sur somme des dénominateurs des régions "
            "sélectionnées (toutes : taux national), par fenêtre.",
        )
    )
    d = d.with_panel(
        common.timeseries_panel(
            "Taux des régions sélectionnées — mois en cours",
            [common.query(_selection_rate("current_month"), "{{indicator}} · {{window}}")],
            unit="percentunit",
        )
    )
    d = d.with_panel(
        common.timeseries_panel(
            "Taux par région — fenêtre de financement",
            [
                common.query(
                    f'region:sunes_indicator:ratio{{period="funding_window", {SEL_IND}}}',
                    "{{region}} · {{indicator}} · {{window}}",
                )
            ],
            unit="percentunit",
            width=24,
        )
    )

    d = d.with_row(dash.Row("Établissements"))
    d = d.with_panel(_under_target_table())
    return d
