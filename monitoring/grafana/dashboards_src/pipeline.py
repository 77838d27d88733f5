"""Pipeline health: consumption, dead letters, lag, latency, freshness. Audience: the team
that runs the workers."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, timeseries
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from monitoring.grafana.dashboards_src import common

UID = "sunes-pipeline"

T = 'topic=~"$topic"'
W = 'job="sunes-worker", instance=~"$instance"'

# Alert thresholds drawn on the panels (docs/monitoring.md gives the reasons).
DEAD_LETTER_SHARE = 0.05
DRAIN_SECONDS = 900


def _with_threshold_line(panel: timeseries.Panel, value: float) -> timeseries.Panel:
    return panel.thresholds(
        common.step_thresholds((None, "green"), (value, "red"))
    ).thresholds_style(
        common_builders.GraphThresholdsStyleConfig().mode(
            common_models.GraphThresholdsStyleMode.DASHED
        )
    )


def _latency_heatmap() -> heatmap.Panel:
    return (
        heatmap.Panel()
        .title("Distribution de la latence de traitement")
        .description("Enregistrement Kafka → état appliqué, tous workers sélectionnés.")
        .datasource(common.DATASOURCE)
        .span(12)
        .height(8)
        .calculate(False)
        .with_target(
            common.query(
                "sum by (le) (increase(sunes_processing_latency_seconds_bucket"
                f"{{{W}}}[$__rate_interval]))",
                "{{le}}",
                fmt=PromQueryFormat.HEATMAP,
            )
        )
    )


def build() -> dash.Dashboard:
    d = (
        common.sunes_dashboard(
            UID,
            "SUN-ES — Santé du pipeline",
            "Consommation des topics, lettres mortes, retard, latence et fraîcheur des "
            "workers SUN-ES.",
        )
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .with_variable(
            common.query_variable(
                "topic",
                "Topic",
                'label_values(sunes_events_consumed_total{job="sunes-worker"}, topic)',
            )
        )
        .with_variable(
            common.query_variable(
                "instance", "Worker", 'label_values(up{job="sunes-worker"}, instance)'
            )
        )
    )

    d = d.with_row(dash.Row("État"))
    d = d.with_panel(
        common.stat_panel(
            "Workers joignables",
            [
                common.query(f"sum(up{{{W}}})", "joignables", "A", instant=True),
                common.query(f"count(up{{{W}}})", "déclarés", "B", instant=True),
            ],
            width=5,
        ).text_mode(common_models.BigValueTextMode.VALUE_AND_NAME)
    )
    d = d.with_panel(
        common.stat_panel(
            "Événements consommés",
            [common.query(f"sum(topic:sunes_events_consumed:rate5m{{{T}}})", instant=True)],
            unit="short",
            description="Par seconde, moyenne sur 5 min.",
            width=5,
        )
    )
    d = d.with_panel(
        common.stat_panel(
            "Part d'événements invalides (max des topics, 15 min)",
            [common.query(f"max(topic:sunes_events_invalid:ratio_rate15m{{{T}}})", instant=True)],
            unit="percentunit",
            width=5,
            thresholds=common.step_thresholds((None, "green"), (DEAD_LETTER_SHARE, "red")),
        )
    )
    d = d.with_panel(
        common.stat_panel(
            "Retard total (messages)",
            [common.query(f"sum(topic:sunes_consumer_lag:sum{{{T}}})", instant=True)],
            width=5,
        )
    )
    d = d.with_panel(
        common.stat_panel(
            "Latence p95",
            [
                common.query(
                    'job:sunes_processing_latency_seconds:p95_rate5m{job="sunes-worker"}',
                    instant=True,
                )
            ],
            unit="s",
            width=4,
        )
    )

    d = d.with_row(dash.Row("Consommation et lettres mortes"))
    d = d.with_panel(
        common.timeseries_panel(
            "Événements consommés par topic et résultat (/s)",
            [
                common.query(
                    f"topic_outcome:sunes_events_consumed:rate5m{{{T}}}", "{{topic}} · {{outcome}}"
                )
            ],
        )
    )
    d = d.with_panel(
        common.timeseries_panel(
            "Événements consommés par worker (/s)",
            [
                common.query(
                    "sum by (instance, topic) (rate(sunes_events_consumed_total"
                    f"{{{W}, {T}}}[$__rate_interval]))",
                    "{{instance}} · {{topic}}",
                )
            ],
        )
    )
    d = d.with_panel(
        common.timeseries_panel(
            "Passés à l'étape établissements et appliqués (/s)",
            [
                common.query("job:sunes_events_bundled:rate5m", "transmis par l'ingestion", "A"),
                common.query("job:sunes_events_applied:rate5m", "appliqués", "B"),
            ],
            description="Événements valides que l'ingestion transmet (fiches du registre à "
            "part) et événements que l'étape établissements applique, sur tout le job : "
            "des événements transmis sans rien d'appliqué pendant 15 min déclenchent "
            "SunesPipelineStalled (cause establishments_stalled).",
        )
    )
    d = d.with_panel(
        common.timeseries_panel(
            "Lettres mortes par motif (/s)",
            [
                common.query(
                    f"topic_reason:sunes_deadletter_events:rate5m{{{T}}}", "{{topic}} · {{reason}}"
                )
            ],
            description="Motifs : invalid_json, unknown_type, missing_field, invalid_field, "
            "invalid_timestamp, invalid_finess, inconsistent_dates. Les originaux sont dans "
            "sunes.deadletter.v1.",
        ).stacking(common_builders.StackingConfig().mode(common_models.StackingMode.NORMAL))
    )
    d = d.with_panel(
        _with_threshold_line(
            common.timeseries_panel(
                "Part d'événements invalides (15 min)",
                [common.query(f"topic:sunes_events_invalid:ratio_rate15m{{{T}}}", "{{topic}}")],
                unit="percentunit",
                description="Ligne : seuil de l'alerte SunesDeadLetterRate (5 %).",
            ),
            DEAD_LETTER_SHARE,
        )
    )

    d = d.with_row(dash.Row("Retard et latence"))
    d = d.with_panel(
        common.timeseries_panel(
            "Retard par topic (messages)",
            [common.query(f"topic:sunes_consumer_lag:sum{{{T}}}", "{{topic}}")],
        )
    )
    d = d.with_panel(
        common.timeseries_panel(
            "Retard par partition (messages)",
            [
                common.query(
                    f"max by (topic, partition) (sunes_consumer_lag{{{W}, {T}}})",
                    "{{topic}} [{{partition}}]",
                )
            ],
        )
    )
    d = d.with_panel(
        _with_threshold_line(
            common.timeseries_panel(
                "Temps de rattrapage estimé",
                [common.query(f"topic:sunes_consumer_lag:drain_seconds{{{T}}}", "{{topic}}")],
                unit="s",
                description="Retard ÷ débit actuel. Ligne : seuil de l'alerte SunesConsumerLag "
                "(15 min).",
            ),
            DRAIN_SECONDS,
        )
    )
    d = d.with_panel(
        common.timeseries_panel(
            "Latence de traitement (enregistrement Kafka → état appliqué)",
            [
                common.query(
                    f'job:sunes_processing_latency_seconds:{q}_rate5m{{job="sunes-worker"}}',
                    q,
                    ref,
                )
                for q, ref in (("p50", "A"), ("p95", "B"), ("p99", "C"))
            ],
            unit="s",
        )
    )
    d = d.with_panel(_latency_heatmap())

    d = d.with_row(dash.Row("Fraîcheur"))
    d = d.with_panel(
        common.timeseries_panel(
            "Âge du dernier événement consommé",
            [
                common.query(
                    f"time() - topic:sunes_last_event_timestamp_seconds:max{{{T}}}", "{{topic}}"
                )
            ],
            unit="s",
            description="Horloge murale : temps écoulé depuis le dernier événement lu sur "
            "chaque topic.",
        )
    )
    d = d.with_panel(
        common.merged_table_panel(
            "Filigrane par établissement (dernière sortie vue)",
            common.table_queries(
                [
                    "finess:sunes_establishment_watermark_timestamp_seconds:max * 1000\n"
                    "* on (finess) group_left (name, region, window)\n"
                    "finess:sunes_establishment_info:max"
                ]
            ),
            rename={
                "name": "Établissement",
                "finess": "FINESS",
                "region": "Région",
                "window": "Fenêtre",
                "Value": "Dernière sortie vue",
            },
            description="Temps des événements. Un établissement resté loin derrière les "
            "autres n'envoie plus ses sorties.",
            width=12,
        )
        .override_by_name(*common.override("Dernière sortie vue", unit="dateTimeAsLocal"))
        .sort_by(
            [
                common_builders.TableSortByFieldState()
                .display_name("Dernière sortie vue")
                .desc(False)
            ]
        )
    )
    d = d.with_panel(
        common.merged_table_panel(
            "Alertes pipeline en cours",
            common.table_queries(
                [
                    'ALERTS{alertstate="firing", '
                    'alertname=~"SunesPipelineStalled|SunesDeadLetterRate|SunesConsumerLag"}'
                ]
            ),
            rename={
                "alertname": "Alerte",
                "severity": "Sévérité",
                "cause": "Cause",
                "topic": "Topic",
                "instance": "Worker",
            },
            hide=("Time", "Value", "__name__", "alertstate", "job"),
            width=12,
        )
    )
    return d
