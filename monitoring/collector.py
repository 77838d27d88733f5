"""The indicator tables as Prometheus metrics, read at scrape time (a custom Collector).

Labels carry FINESS, indicator and period only: never patient data. Numerators, denominators
and targets are exported separately so that recording rules can sum them across workers and
establishments before dividing (EJ, region and national roll-ups stay right).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from processors.catalogue import RATE_INDICATORS
from processors.establishment import Establishment
from processors.periods import month_key, previous_month

# (topic, partition) → messages not yet consumed
LagSource = Callable[[], Mapping[tuple[str, int], int]]


class IndicatorCollector(Collector):
    def __init__(
        self,
        establishments: Callable[[], Iterable[Establishment]],
        lag: LagSource | None = None,
    ) -> None:
        self._establishments = establishments
        self._lag = lag

    def collect(self) -> Iterator[Metric]:
        period_labels = ["finess", "indicator", "period"]
        numerator = GaugeMetricFamily(
            "sunes_indicator_numerator",
            "Numerator of a SUN-ES indicator (current month, previous month, funding window).",
            labels=period_labels,
        )
        denominator = GaugeMetricFamily(
            "sunes_indicator_denominator",
            "Denominator of a SUN-ES indicator; a series exists only when it is above 0.",
            labels=period_labels,
        )
        target = GaugeMetricFamily(
            "sunes_indicator_target_ratio",
            "Target (0-1) of the indicator in the establishment's funding window.",
            labels=["finess", "indicator"],
        )
        info = GaugeMetricFamily(
            "sunes_establishment_info",
            "Registry entry of an establishment (FINESS géographique).",
            labels=["finess", "finess_ej", "region", "window", "name"],
        )
        cme = GaugeMetricFamily(
            "sunes_cme_presentation",
            "DS 4.3: MSS citoyenne presented to the CME (1 yes, 0 no).",
            labels=["finess"],
        )
        watermark = GaugeMetricFamily(
            "sunes_establishment_watermark_timestamp_seconds",
            "Event-time watermark of an establishment: the start of the Paris day of its "
            "latest discharge seen.",
            labels=["finess"],
        )
        unregistered = 0
        for est in self._establishments():
            if est.registry is None:
                # Counted (as `sunes report` does) but not exported per FINESS: made-up or
                # mistyped numbers must not grow /metrics; the alert names the problem.
                unregistered += 1
                continue
            self._collect_establishment(est, numerator, denominator, target, info, cme, watermark)
        yield from (numerator, denominator, target, info, cme, watermark)
        yield GaugeMetricFamily(
            "sunes_establishments_unregistered",
            "Establishments with events but no registry record (no window, no target): "
            "their figures are in /indicators, not in these metrics.",
            value=unregistered,
        )
        if self._lag is not None:
            lag = GaugeMetricFamily(
                "sunes_consumer_lag",
                "Messages of an input partition not yet consumed by this worker.",
                labels=["topic", "partition"],
            )
            for (topic, partition), value in sorted(self._lag().items()):
                lag.add_metric([topic, str(partition)], value)
            yield lag

    @staticmethod
    def _collect_establishment(
        est: Establishment,
        numerator: GaugeMetricFamily,
        denominator: GaugeMetricFamily,
        target: GaugeMetricFamily,
        info: GaugeMetricFamily,
        cme: GaugeMetricFamily,
        watermark: GaugeMetricFamily,
    ) -> None:
        finess = est.finess
        periods: dict[str, str] = {}
        if est.watermark is not None:
            watermark.add_metric([finess], est.watermark_moment or 0.0)
            current = month_key(est.watermark)
            periods = {current: "current_month", previous_month(current): "previous_month"}
        for row in est.rows():
            label = "funding_window" if row.is_window else periods.get(row.period)
            if label is None:
                continue
            numerator.add_metric([finess, row.indicator, label], row.numerator)
            denominator.add_metric([finess, row.indicator, label], row.denominator)
        record = est.registry
        if record is None:
            return
        info.add_metric([finess, record.finess_ej, record.region, record.window, record.name], 1)
        cme.add_metric([finess], 1 if record.cme_presentation else 0)
        for indicator in RATE_INDICATORS:
            value = est.calendar.target(indicator, record.window)
            if value is not None:
                target.add_metric([finess, indicator], value)
