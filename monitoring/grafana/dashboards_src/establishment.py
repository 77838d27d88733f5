"""Establishment drill-down: each DS rate against its target over time, with numerator and
denominator, and the monthly history. Audience: the establishment's DSI, its GHT, the ARS
checking a declaration."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from monitoring.grafana.dashboards_src import common

UID = "sunes-establishment"

F = 'finess="$finess"'


def _summary_table() -> table.Panel:
    # One row per indicator: every query is reduced to the `indicator` label so that the
    # table merges them.
    def by_indicator(expr: str) -> str:
        return f"sum by (indicator) ({expr})"

    exprs = [
        by_indicator(f'finess:sunes_indicator:ratio{{{F}, period="funding_window"}}'),
        by_indicator(f"finess:sunes_indicator_target_ratio:max{{{F}}}"),
        by_indicator(f'finess:sunes_indicator_numerator:sum{{{F}, period="funding_window"}}'),
        by_indicator(f'finess:sunes_indicator_denominator:sum{{{F}, period="funding_window"}}'),
        by_indicator(f'finess:sunes_indicator:ratio{{{F}, period="current_month"}}'),
        by_indicator(f'finess:sunes_indicator:ratio{{{F}, period="previous_month"}}'),
    ]
    panel = common.merged_table_panel(
        "Synthèse par indicateur",
        common.table_queries(exprs),
        rename={
            "indicator": "Indicateur",
            "Value #A": "Taux — fenêtre de financement",
            "Value #B": "Cible",
            "Value #C": "Numérateur — fenêtre",
            "Value #D": "Dénominateur — fenêtre",
            "Value #E": "Taux — mois en cours",
            "Value #F": "Taux — mois précédent",
        },
        description="Valeurs à l'instant choisi (fin de la période affichée). Un indicateur "
        "absent n'a pas de dénominateur (par exemple DS 2.1 sans laboratoire).",
        height=9,
    )
    for name, props in (
        common.override("Indicateur", mappings=common.indicator_value_mappings()),
        common.override("Taux — fenêtre de financement", unit="percentunit", decimals=1),
        common.override("Cible", unit="percentunit", decimals=0),
        common.override("Taux — mois en cours", unit="percentunit", decimals=1),
        common.override("Taux — mois précédent", unit="percentunit", decimals=1),
    ):
        panel = panel.override_by_name(name, props)
    return panel


def _rate_panel(indicator: str) -> timeseries.Panel:
    sel = f'{F}, indicator="{indicator}"'
    panel = common.timeseries_panel(
        f"{common.indicator_title(indicator)} — taux et cible",
        [
            common.query(
                f'finess:sunes_indicator:ratio{{{sel}, period="funding_window"}}',
                common.PERIOD_LABELS["funding_window"],
                "A",
            ),
            common.query(
                f'finess:sunes_indicator:ratio{{{sel}, period="current_month"}}',
                common.PERIOD_LABELS["current_month"],
                "B",
            ),
            common.query(f"finess:sunes_indicator_target_ratio:max{{{sel}}}", "Cible", "C"),
        ],
        unit="percentunit",
        width=8,
    )
    name, props = common.override(
        "Cible", custom_lineStyle=common.dashed_line(), color={"mode": "fixed", "fixedColor": "red"}
    )
    return panel.override_by_name(name, props)


def _counts_panel(indicator: str) -> timeseries.Panel:
    sel = f'{F}, indicator="{indicator}"'
    targets = []
    ref = iter("ABCD")
    for period in ("funding_window", "current_month"):
        label = common.PERIOD_LABELS[period]
        targets.append(
            common.query(
                f'finess:sunes_indicator_numerator:sum{{{sel}, period="{period}"}}',
                f"Numérateur — {label}",
                next(ref),
            )
        )
        targets.append(
            common.query(
                f'finess:sunes_indicator_denominator:sum{{{sel}, period="{period}"}}',
                f"Dénominateur — {label}",
                next(ref),
            )
        )
    return common.timeseries_panel(
        f"{common.indicator_title(indicator)} — numérateur et dénominateur",
        targets,
        unit="short",
        width=8,
    )


def _history_panel(indicator: str) -> timeseries.Panel:
    sel = f'{F}, indicator="{indicator}"'
    panel = (
        common.timeseries_panel(
            f"{common.indicator_title(indicator)} — historique mensuel",
            [
                common.query(
                    f'finess:sunes_indicator:ratio{{{sel}, period="previous_month"}}',
                    "Mois clos (mois précédent)",
                    "A",
                ),
                common.query(f"finess:sunes_indicator_target_ratio:max{{{sel}}}", "Cible", "B"),
            ],
            unit="percentunit",
            width=8,
            description="Taux du mois précédent au fil du temps : chaque marche est un mois "
            "clos (il bouge encore pendant le délai de grâce qui suit sa fin).",
        )
        # A year of closed months, one point a day, drawn as steps.
        .time_from("1y")
        .interval("1d")
        .line_interpolation(common_models.LineInterpolation.STEP_AFTER)
    )
    name, props = common.override(
        "Cible", custom_lineStyle=common.dashed_line(), color={"mode": "fixed", "fixedColor": "red"}
    )
    return panel.override_by_name(name, props)


def _cme_panel() -> stat.Panel:
    return common.stat_panel(
        common.indicator_title("DS4.3"),
        [common.query(f"finess:sunes_cme_presentation:max{{{F}}}", instant=True)],
        width=6,
        thresholds=common.step_thresholds((None, "red"), (1, "green")),
    ).mappings(
        [
            models.ValueMap(
                options={
                    "0": models.ValueMappingResult(text="Non", color="red", index=0),
                    "1": models.ValueMappingResult(text="Oui", color="green", index=1),
                }
            )
        ]
    )


def build() -> dash.Dashboard:
    d = (
        common.sunes_dashboard(
            UID,
            "SUN-ES — Établissement",
            "Détail d'un établissement (FINESS géographique) : chaque indicateur SUN-ES "
            "face à la cible de sa fenêtre de financement, numérateurs et dénominateurs.",
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
            # Shows the establishment's name, keeps its FINESS as the value.
            common.query_variable(
                "finess",
                "Établissement",
                'query_result(finess:sunes_establishment_info:max{region=~"$region"})',
                multi=False,
                regex='/finess="(?<value>[^"]+)".*name="(?<text>[^"]+)"/',
            )
        )
    )

    d = d.with_row(dash.Row("Établissement"))
    d = d.with_panel(
        common.merged_table_panel(
            "Fiche",
            common.table_queries([f"finess:sunes_establishment_info:max{{{F}}}"]),
            rename={
                "name": "Établissement",
                "finess": "FINESS",
                "finess_ej": "FINESS EJ",
                "region": "Région",
                "window": "Fenêtre de financement",
            },
            hide=("Time", "Value", "__name__"),
            width=12,
            height=4,
        )
    )
    d = d.with_panel(
        common.stat_panel(
            "Dernière sortie vue (filigrane)",
            [
                common.query(
                    f"finess:sunes_establishment_watermark_timestamp_seconds:max{{{F}}} * 1000",
                    instant=True,
                )
            ],
            unit="dateTimeAsLocal",
            description="Le « maintenant » de l'établissement : mois en cours et fenêtre en "
            "cours se comptent à partir de cette date (temps des événements).",
            width=6,
        )
    )
    d = d.with_panel(_cme_panel())
    d = d.with_panel(_summary_table())

    for indicator in common.rate_indicators():
        d = d.with_row(dash.Row(common.indicator_title(indicator)))
        d = d.with_panel(_rate_panel(indicator))
        d = d.with_panel(_counts_panel(indicator))
        d = d.with_panel(_history_panel(indicator))
    return d
