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
FI = f'{F}, indicator=~"$indicator"'
# The units a person can act on, in a worklist link's query.
UNCOUNTED = "status=pending,missed"
# The worker's web port (SUNES_WEB_PORT's default): where a local worker serves worklists.
DEFAULT_WORKLIST = "http://localhost:6066"
# The columns of a figure in the unit tables (raw values: links read them).
KEY_COLUMNS = {"indicator": "Indicateur", "period": "Période", "period_key": "Mois ou fenêtre"}
# A table row's indicator and period, in a data link.
ROW_INDICATOR = "${__data.fields.indicator}"
ROW_PERIOD = "${__data.fields.period_key}"
# `period_key` (2023-03, F2) beside each `period` label, for the links.
WITH_KEY = (
    f"* on (finess, period) group_left (period_key) finess:sunes_indicator_period_info:max{{{F}}}"
)


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
        by_indicator(f"finess:sunes_indicator_window_projected:ratio{{{F}}}"),
        by_indicator(f"finess:sunes_indicator_window_best_case:ratio{{{F}}}"),
        by_indicator(f'finess:sunes_indicator_pending:sum{{{F}, period="funding_window"}}'),
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
            "Value #G": "Projection fin de fenêtre",
            "Value #H": "Meilleur cas",
            "Value #I": "En attente — fenêtre",
        },
        description="Valeurs à l'instant choisi (fin de la période affichée). Un indicateur "
        "absent n'a pas de dénominateur (par exemple DS 2.1 sans laboratoire). Projection "
        "et meilleur cas : docs/monitoring.md ; les unités derrière chaque taux : plus bas.",
        height=9,
    )

    for name, props in (
        common.override("Indicateur", mappings=common.indicator_value_mappings()),
        common.override("Taux — fenêtre de financement", unit="percentunit", decimals=1),
        common.override("Cible", unit="percentunit", decimals=0),
        common.override("Taux — mois en cours", unit="percentunit", decimals=1),
        common.override("Taux — mois précédent", unit="percentunit", decimals=1),
        common.override("Projection fin de fenêtre", unit="percentunit", decimals=1),
        common.override("Meilleur cas", unit="percentunit", decimals=1),
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
        description="Chaque courbe de taux ouvre la liste de ses unités non comptées.",
    )
    name, props = common.override(
        "Cible", custom_lineStyle=common.dashed_line(), color={"mode": "fixed", "fixedColor": "red"}
    )
    panel = panel.override_by_name(name, props)
    for period, variable in (("funding_window", "$window"), ("current_month", "$current_month")):
        url = common.worklist_url(indicator, variable, UNCOUNTED)
        name, props = common.override(
            common.PERIOD_LABELS[period], links=common.field_links("Unités non comptées", url)
        )
        panel = panel.override_by_name(name, props)
    return panel


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


def _units_table() -> table.Panel:
    # Counted units have reason "none": no reason in the link (the worklist knows none).
    units = (
        "label_replace(sum by (finess, indicator, period, status, reason) "
        f'(finess:sunes_indicator_units:sum{{{FI}}}), "reason", "", "reason", "none")'
    )
    panel = common.merged_table_panel(
        "Unités par statut et motif",
        common.table_queries([f"{units} {WITH_KEY}"]),
        rename={
            **KEY_COLUMNS,
            "status": "Statut",
            "reason": "Motif",
            "Value": "Unités",
        },
        hide=("Time", "finess"),
        description="Les unités du dénominateur (séjours, comptes rendus, correspondants) : "
        "comptées, en attente (elles peuvent encore compter) ou manquées, et pourquoi "
        "(motifs : docs/indicators.md). Une ligne ouvre la liste de ses unités.",
        width=12,
        height=10,
    )
    link = common.worklist_link(
        "Liste des unités",
        common.worklist_url(
            ROW_INDICATOR,
            ROW_PERIOD,
            "status=${__data.fields.status}&reason=${__data.fields.reason}",
        ),
    )
    # No value mapping on the columns a link reads: links get the displayed text.
    return panel.data_links([link])


def _pending_table() -> table.Panel:
    def keyed(expr: str, op: str) -> str:
        return f"{op} by (indicator, period, period_key) ({expr} {WITH_KEY})"

    exprs = [
        keyed(f"finess:sunes_indicator_pending:sum{{{FI}}}", "sum"),
        keyed(f"finess:sunes_indicator_pending_deadline_timestamp_seconds:min{{{FI}}}", "min")
        + " * 1000",
    ]
    panel = common.merged_table_panel(
        "Unités en attente et leur échéance",
        common.table_queries(exprs),
        rename={
            **KEY_COLUMNS,
            "Value #A": "En attente",
            "Value #B": "Première échéance",
        },
        description="Unités qui peuvent encore compter, et le dernier jour où la plus "
        "pressée d'entre elles le peut encore (fin du délai de grâce ; DS 4.1 sans "
        "échéance ici). Une ligne ouvre la liste des unités en attente.",
        width=12,
        height=10,
    )
    link = common.worklist_link(
        "Unités en attente", common.worklist_url(ROW_INDICATOR, ROW_PERIOD, "status=pending")
    )
    name, props = common.override("Première échéance", unit="time:DD/MM/YYYY")
    return panel.data_links([link]).override_by_name(name, props)


def _reasons_panel() -> timeseries.Panel:
    return common.timeseries_panel(
        "Unités non comptées par motif — fenêtre de financement",
        [
            common.query(
                "sum by (status, reason) (finess:sunes_indicator_units:sum"
                f'{{{FI}, period="funding_window", status!="counted"}})',
                "{{status}} — {{reason}}",
            )
        ],
        description="L'évolution des unités en attente et manquées de la fenêtre, par motif "
        "(indicateurs choisis) : identitovigilance (ins_not_qualified), connecteur DMP "
        "(deposit_failed, not_deposited), courriers absents (no_document)…",
        width=12,
    )


def _projection_panel() -> timeseries.Panel:
    sel = f"{FI}"
    panel = common.timeseries_panel(
        "Projection de fin de fenêtre face à la cible",
        [
            common.query(
                f'finess:sunes_indicator:ratio{{{sel}, period="funding_window"}}',
                "{{indicator}} — taux de la fenêtre",
                "A",
            ),
            common.query(
                f"finess:sunes_indicator_window_projected:ratio{{{sel}}}",
                "{{indicator}} — projection",
                "B",
            ),
            common.query(
                f"finess:sunes_indicator_window_best_case:ratio{{{sel}}}",
                "{{indicator}} — meilleur cas",
                "C",
            ),
            common.query(
                f"finess:sunes_indicator_target_ratio:max{{{sel}}}", "{{indicator}} — cible", "D"
            ),
        ],
        unit="percentunit",
        description="Projection : le taux des dernières semaines appliqué aux unités en "
        "attente et à celles à venir d'ici la fin de la fenêtre ; meilleur cas : toutes "
        "comptent. Sous la cible, le meilleur cas déclenche SunesTargetUnreachable, la "
        "projection SunesTargetProjectedMiss (docs/monitoring.md).",
        width=12,
    )
    return panel.override_by_regexp(
        ".* — cible",
        [models.DynamicConfigValue(id_val="custom.lineStyle", value=common.dashed_line())],
    )


def _window_stats() -> list[stat.Panel]:
    def date_stat(title: str, expr: str, description: str) -> stat.Panel:
        # Noon of the day: its date whatever the browser's time zone and DST.
        return common.stat_panel(
            title,
            [common.query(expr, instant=True)],
            unit="time:DD/MM/YYYY",
            description=description,
            width=6,
        )

    return [
        date_stat(
            "Dernier jour de la fenêtre",
            f"(finess:sunes_funding_window_end_timestamp_seconds:max{{{F}}} - 43200) * 1000",
            "Fin de la fenêtre de financement de l'établissement (report compris).",
        ),
        common.stat_panel(
            "Jours restants (temps des événements)",
            [
                common.query(
                    f"clamp_min(finess:sunes_funding_window_remaining_seconds:sub{{{F}}}, 0)"
                    " / 86400",
                    instant=True,
                )
            ],
            unit="d",
            description="Du « maintenant » de l'établissement à la fin de sa fenêtre ; les "
            "alertes de fenêtre s'arrêtent à 0.",
            width=6,
        ),
    ]


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
        .with_variable(common.indicator_variable())
        .with_variable(common.worklist_variable(DEFAULT_WORKLIST))
        .with_variable(
            common.hidden_label_variable(
                "window", "Fenêtre", f"finess:sunes_establishment_info:max{{{F}}}", "window"
            )
        )
    )
    for period in ("current_month", "previous_month"):
        selector = f'finess:sunes_indicator_period_info:max{{{F}, period="{period}"}}'
        d = d.with_variable(
            common.hidden_label_variable(
                period, common.PERIOD_LABELS[period], selector, "period_key"
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
            "Maintenant de l'établissement",
            [
                common.query(
                    f"(finess:sunes_establishment_now_timestamp_seconds:max{{{F}}} + 43200) * 1000",
                    instant=True,
                )
            ],
            unit="time:DD/MM/YYYY",
            description="Le « maintenant » de l'établissement : le dernier jour de ses "
            "événements, tous types confondus (sorties, productions, dépôts, messages). Mois "
            "en cours, fenêtre en cours et unités en attente se comptent à partir de cette "
            "date (temps des événements).",
            width=6,
        )
    )
    d = d.with_panel(_cme_panel())
    d = d.with_panel(_summary_table())

    d = d.with_row(dash.Row("Unités : pourquoi ces taux, et jusqu'où ils peuvent aller"))
    for panel in _window_stats():
        d = d.with_panel(panel)
    d = d.with_panel(_projection_panel())
    d = d.with_panel(_reasons_panel())
    d = d.with_panel(_units_table())
    d = d.with_panel(_pending_table())

    for indicator in common.rate_indicators():
        d = d.with_row(dash.Row(common.indicator_title(indicator)))
        d = d.with_panel(_rate_panel(indicator))
        d = d.with_panel(_counts_panel(indicator))
        d = d.with_panel(_history_panel(indicator))
    return d
