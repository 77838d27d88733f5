"""PipelineMetrics: what ingest and the establishment stage count, read back as Prometheus would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.pipeline import IngestTally, PipelineMetrics, observe_all


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


def test_observing_a_bundle_s_latencies_at_once_is_observing_each() -> None:
    values = [0.0, 0.004, 0.005, 0.0050001, 0.01, 0.3, 0.3, 1, 2.4999, 59.9, 60, 60.5, 1e9]
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    each = PipelineMetrics(one_by_one).latency
    for value in values:
        each.observe(value)
    observe_all(PipelineMetrics(at_once).latency, values)
    expected, got = (
        {k: v for k, v in samples(r).items() if "latency" in k[0] and not k[0].endswith("_created")}
        for r in (one_by_one, at_once)
    )
    total = ("sunes_processing_latency_seconds_sum", ())
    assert got.pop(total) == pytest.approx(expected.pop(total))
    assert got == expected
    assert expected[("sunes_processing_latency_seconds_bucket", (("le", "0.005"),))] == 3
    assert expected[("sunes_processing_latency_seconds_bucket", (("le", "+Inf"),))] == 13


def test_an_ingest_tally_added_in_another_registry_counts_as_if_counted_there() -> None:
    direct, relayed = CollectorRegistry(), CollectorRegistry()
    metrics, parent = PipelineMetrics(direct), PipelineMetrics(relayed)
    tally = IngestTally()
    for counter in (metrics, tally):
        counter.consumed_valid("sunes.stays.v1", 40)
        counter.consumed_invalid("sunes.stays.v1", "invalid_json")
        counter.consumed_invalid("sunes.dmp.v1", "too_late")
    parent.add_ingest(tally.take())
    assert not tally.take()  # taken: the next report starts from zero
    tally.consumed_valid("sunes.stays.v1", 2)
    metrics.consumed_valid("sunes.stays.v1", 2)
    parent.add_ingest(tally.take())
    timestamps = "sunes_last_event_timestamp_seconds"

    def counts(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        # the times differ (`_created` too, if enabled): the values of the counts may not
        return {
            k: v
            for k, v in samples(registry).items()
            if k[0] != timestamps and not k[0].endswith("_created")
        }

    got, expected = samples(relayed), samples(direct)
    assert counts(relayed) == counts(direct)
    valid = ("sunes_events_consumed_total", (("outcome", "valid"), ("topic", "sunes.stays.v1")))
    assert got[valid] == 42
    assert {k for k in got if k[0] == timestamps} == {k for k in expected if k[0] == timestamps}
