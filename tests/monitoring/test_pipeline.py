"""PipelineMetrics: what ingest and the establishment stage count, read back as Prometheus would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.pipeline import PipelineMetrics


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_applied_events_are_counted_with_or_without_a_record_timestamp() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    # Exported at 0 from the start: the stall alert sees a stage that never applied.
    assert samples(registry)[("sunes_events_applied_total", ())] == 0
    metrics.applied([None, 1_700_000_000.0])
    metrics.applied([0.0])
    metrics.applied([])  # a bundle whose events were all dead-lettered
    got = samples(registry)
    assert got[("sunes_events_applied_total", ())] == 3
    # Latency only for the events that had a record timestamp.
    assert got[("sunes_processing_latency_seconds_count", ())] == 1


def test_ingest_counts_by_topic_and_outcome() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    metrics.consumed_valid("sunes.stays.v1", 5)
    metrics.consumed_invalid("sunes.stays.v1", "missing_field")
    got = samples(registry)
    assert (
        got[("sunes_events_consumed_total", (("outcome", "valid"), ("topic", "sunes.stays.v1")))]
        == 5
    )
    assert (
        got[("sunes_events_consumed_total", (("outcome", "invalid"), ("topic", "sunes.stays.v1")))]
        == 1
    )
    assert (
        got[
            (
                "sunes_deadletter_events_total",
                (("reason", "missing_field"), ("topic", "sunes.stays.v1")),
            )
        ]
        == 1
    )
    # The stage applied nothing: ingest and the stage are counted apart.
    assert got[("sunes_events_applied_total", ())] == 0
