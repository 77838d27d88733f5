"""Sources of the SUN-ES dashboards: one module per dashboard, each with `build()`."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from monitoring.grafana.dashboards_src import establishment, overview, pipeline

# File name under monitoring/grafana/dashboards/ → builder.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "sunes-overview.json": overview.build,
    "sunes-establishment.json": establishment.build,
    "sunes-pipeline.json": pipeline.build,
}
