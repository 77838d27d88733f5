"""/metrics?name[]=... on a real worker: only the samples named, as prometheus_client's own
handler gives them, equal to the same samples of a whole scrape; promtool reads it."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.testing import WorkerProcess
from tests.kafka_tools import publish_on
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows
from topics.names import TopicNames

pytestmark = [pytest.mark.kafka, pytest.mark.promtool]

# What bench.throughput polls each second, and one indicator family
NAMES = [
    "sunes_events_consumed_total",
    "sunes_processing_latency_seconds_count",
    "sunes_indicator_numerator",
]

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def samples(text: bytes) -> set[Sample]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def scrape(worker: WorkerProcess, names: list[str] | None = None) -> bytes:
    query = "" if names is None else "?" + urlencode([("name[]", n) for n in names])
    status, body = worker.fetch("/metrics" + query)
    assert status == 200, body
    return body


def test_metrics_of_the_named_families_only(
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    promtool: str,
) -> None:
    messages, finess = dataset(seed=15, establishments=2, days=5)
    expected = reference(messages, finess)
    worker = workers(f"it-{uuid.uuid4().hex[:8]}")
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)
    wait_for_rows([worker], finess, expected)

    named = scrape(worker, NAMES)
    whole = scrape(worker)  # after: the counters named cannot move any more (all applied)
    kept = samples(named)
    assert {name for name, _, _ in kept} == set(NAMES)
    assert kept == {s for s in samples(whole) if s[0] in NAMES}
    numerators = {s for s in kept if s[0] == "sunes_indicator_numerator"}
    assert {dict(labels)["finess"] for _, labels, _ in numerators} == finess
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=named, capture_output=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # the pipeline's counters alone: no indicator series, not even a header
    progress = scrape(worker, NAMES[:2])
    assert b"sunes_indicator" not in progress and b"sunes_consumer_lag" not in progress
    assert {name for name, _, _ in samples(progress)} == set(NAMES[:2])
    assert scrape(worker, ["no_such_family"]) == b""
