"""End to end: a real `sunes worker` fed through Kafka, scraped by a real Prometheus running
the shipped recording rules and alerts (alert `for:` shortened in a copy). The figures
Prometheus records must be those of the batch reference (`compute_report`) on the same
events, and the under-target alerts must fire for the establishment under target only.

The session's broker and the contract's topic names are shared with other tests: this
module uses its own FINESS numbers, EJ, region and app id, and reads only its own series.
"""

from __future__ import annotations

import random
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.collector import IndicatorCollector
from processors.catalogue import DISCHARGE_LETTER, DISCHARGE_PRESCRIPTION
from processors.collection import Establishments
from processors.figures import IndicatorRow
from processors.report import compute_report
from processors.settings import Settings
from streams.testing import WorkerProcess, publish, rows_of
from tests.builders import deposited, discharged, establishment, mss_sent
from tests.monitoring.prometheus_server import PrometheusServer, copy_rules_with_short_for
from tests.monitoring.tools import PROMETHEUS_DIR, find_binary, load_yaml, rule_files
from topics.names import DMP, ESTABLISHMENTS, MSS, STAYS
from topics.validation import parse_record

pytestmark = pytest.mark.promtool

Message = tuple[str, bytes | None, bytes]
Key = tuple[str, str, str]  # (finess, indicator, period label)

JOB = "sunes-worker"  # the shipped rules and alerts read this job name
STAYS_PER_MONTH = 30
# The collector's period labels for this data set: its latest discharge is in March 2023,
# which makes March the current month; both months are inside the amended F2 window.
PERIOD_LABELS = {"2023-03": "current_month", "2023-02": "previous_month", "F2": "funding_window"}
DEADLINE = 120.0  # seconds, for each wait on the worker or on Prometheus


def random_finess(rng: random.Random) -> str:
    return f"{rng.randrange(21, 96):02d}{rng.randrange(10**7):07d}"


@dataclass(frozen=True)
class DataSet:
    """Two F2 establishments: `under` has a discharge letter for 1 stay in 5 (target 55 %),
    `above` for 9 stays in 10; both have a prescription and a patient message for every stay
    (DS 1.2 and DS 4.2 at 100 %), so DS 1.1 of `under` is the only rate under target."""

    under: str
    above: str
    finess_ej: str
    region: str
    registry: list[Message]
    events: list[Message]

    @property
    def finess(self) -> set[str]:
        return {self.under, self.above}

    @property
    def finess_regex(self) -> str:
        return f"{self.under}|{self.above}"


def establishment_events(finess: str, letters_per_month: int) -> list[dict[str, Any]]:
    """STAYS_PER_MONTH stays in February and in March 2023, each with its own patient (no
    returning patient: no DS 1.4); the first `letters_per_month` of each month have a
    qualifying discharge letter."""
    events: list[dict[str, Any]] = []
    for month in ("02", "03"):
        for i in range(STAYS_PER_MONTH):
            # Days 1-25 and +01:00: Paris winter time in both months (DST starts 26 March).
            day = f"2023-{month}-{i % 25 + 1:02d}"
            stay_id = f"S{month}{i:03d}"
            patient = f"IPP-{finess}-{month}{i:03d}"
            common: dict[str, Any] = {"stay_id": stay_id, "patient": patient, "finess": finess}
            doc = {**common, "produced": f"{day}T09:00:00+01:00"}
            doc["deposited_at"] = f"{day}T11:00:00+01:00"
            events.append(
                discharged(
                    stay_id,
                    admitted=f"{day}T08:00:00+01:00",
                    discharged=f"{day}T10:00:00+01:00",
                    patient=patient,
                    finess=finess,
                )
            )
            events.append(deposited(f"{stay_id}-ORD", DISCHARGE_PRESCRIPTION, **doc))
            events.append(
                mss_sent(
                    "citoyenne",
                    f"{patient.lower()}@patient.mssante.fr",
                    sent=f"{day}T12:00:00+01:00",
                    **common,
                )
            )
            if i < letters_per_month:
                events.append(deposited(f"{stay_id}-LL", DISCHARGE_LETTER, **doc))
    return events


def build_dataset() -> DataSet:
    rng = random.Random(uuid.uuid4().int)
    under, above, ej = random_finess(rng), random_finess(rng), random_finess(rng)
    assert len({under, above, ej}) == 3
    region = f"E2E-{uuid.uuid4().hex[:8]}"  # a region of its own: the roll-up is ours alone
    topic_of = {"stay": STAYS, "document": DMP, "mss": MSS}
    registry = [
        establishment(under, "F2", name="CH sous la cible", finess_ej=ej, region=region),
        establishment(above, "F2", name="CH au-dessus de la cible", finess_ej=ej, region=region),
    ]
    events = establishment_events(under, STAYS_PER_MONTH // 5)
    events += establishment_events(above, STAYS_PER_MONTH * 9 // 10)
    return DataSet(
        under=under,
        above=above,
        finess_ej=ej,
        region=region,
        registry=[(ESTABLISHMENTS, o["finess"].encode(), orjson.dumps(o)) for o in registry],
        events=[
            (topic_of[o["type"].split(".")[0]], o["finess"].encode(), orjson.dumps(o))
            for o in events
        ],
    )


def reference(messages: list[Message]) -> list[IndicatorRow]:
    return compute_report(parse_record(value) for _, _, value in messages)


# What the batch run exports beside the figures: the units, the window's projection and dates.
EXPLAINING_FAMILIES = (
    "sunes_indicator_units",
    "sunes_indicator_window_projected_ratio",
    "sunes_indicator_window_best_case_ratio",
    "sunes_indicator_window_units_to_come",
    "sunes_funding_window_end_timestamp_seconds",
    "sunes_establishment_now_timestamp_seconds",
    "sunes_indicator_period_info",
    "sunes_indicator_pending_deadline_timestamp_seconds",
)


def batch_families(messages: list[Message]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The collector's explaining families over a batch run of the same events (family →
    sorted labels → value): the live worker, through Prometheus, must show the same."""
    collection = Establishments(Settings())
    for _, _, value in messages:
        collection.apply(parse_record(value))
    families: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in IndicatorCollector(collection.all).collect():
        if family.name in EXPLAINING_FAMILIES:
            families[family.name] = {
                tuple(sorted(sample.labels.items())): sample.value for sample in family.samples
            }
    return families


def labelled(rows: list[IndicatorRow], finess: set[str]) -> dict[Key, IndicatorRow]:
    """The reference rows the collector exports, keyed by their period label."""
    return {
        (row.finess, row.indicator, PERIOD_LABELS[row.period]): row
        for row in rows
        if row.finess in finess and row.period in PERIOD_LABELS
    }


# --- fixtures: one worker and one Prometheus for the module ---------------------------------


@pytest.fixture(scope="module")
def dataset() -> DataSet:
    return build_dataset()


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory, dataset: DataSet
) -> Iterator[WorkerProcess]:
    """A worker holding the data set, registry entries included.

    The registry entries go last, once the worker's figures equal the reference on the
    events alone: without them there is no target and no registry labels to join, so no
    alert can see the half-ingested state (stays read before their documents — the input
    topics are consumed concurrently — would look under target, and a fired alert keeps
    firing for `keep_firing_for: 6h`).
    """
    log_dir = tmp_path_factory.mktemp("e2e-worker")
    process = WorkerProcess(kafka_bootstrap_servers, f"e2e-{uuid.uuid4().hex[:8]}", log_dir)

    def publish_and_wait(messages: list[Message], everything: list[Message], what: str) -> None:
        publish(kafka_bootstrap_servers, messages)
        expected = rows_of((r.as_json() for r in reference(everything)), dataset.finess)
        process.wait_until(
            lambda: rows_of(process.indicators(), dataset.finess) == expected,
            DEADLINE,
            f"/indicators to equal the reference after {what}",
        )

    try:
        process.start()
        publish_and_wait(dataset.events, dataset.events, "the events")
        publish_and_wait(dataset.registry, dataset.events + dataset.registry, "the registry")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    return find_binary("PROMETHEUS", "prometheus")


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    work_dir = tmp_path_factory.mktemp("e2e-prometheus")
    rules = copy_rules_with_short_for(rule_files(), work_dir / "rules")
    server = PrometheusServer(
        prometheus_binary, work_dir, JOB, [f"127.0.0.1:{worker.port}"], rules, interval="1s"
    )
    try:
        yield server.start()
    finally:
        server.stop()


# --- tests ------------------------------------------------------------------------------------


def test_the_test_copy_of_the_rules_changes_only_the_alert_durations(tmp_path: Path) -> None:
    shipped = rule_files()
    copies = copy_rules_with_short_for(shipped, tmp_path)

    def without_for(path: Path) -> Any:
        document = load_yaml(path)
        durations = []
        for group in document["groups"]:
            for rule in group["rules"]:
                durations.append(rule.pop("for", None))
        return document, durations

    for original, copy in zip(shipped, copies, strict=True):
        assert original.parent.parent == PROMETHEUS_DIR  # the shipped files stay untouched
        (shipped_doc, shipped_for), (copy_doc, copy_for) = without_for(original), without_for(copy)
        assert copy_doc == shipped_doc
        assert copy_for == [None if d is None else "2s" for d in shipped_for]


@pytest.mark.kafka
def test_prometheus_records_the_reference_figures_and_alerts_under_target_only(
    dataset: DataSet, worker: WorkerProcess, prometheus: PrometheusServer
) -> None:
    rows = labelled(reference(dataset.registry + dataset.events), dataset.finess)
    under, above = dataset.under, dataset.above
    # The data set is what it claims to be (reference calculator, not the stream).
    window = {f: rows[f, "DS1.1", "funding_window"] for f in (under, above)}
    assert (window[under].numerator, window[under].denominator) == (12, 60)
    assert (window[above].numerator, window[above].denominator) == (54, 60)
    assert {i for _, i, _ in rows} == {"DS1.1", "DS1.2", "DS4.2"}

    expected_fractions = {k: (float(r.numerator), float(r.denominator)) for k, r in rows.items()}
    expected_ratios = {k: r.ratio for k, r in rows.items()}
    expected_targets = {(r.finess, r.indicator): r.target for r in rows.values()}
    # Region roll-up: numerators and denominators summed over both establishments first.
    region_sums: dict[tuple[str, str], list[int]] = {}
    for (_, indicator, period), r in rows.items():
        sums = region_sums.setdefault((indicator, period), [0, 0])
        sums[0] += r.numerator
        sums[1] += r.denominator
    expected_region = {k: n / d for k, (n, d) in region_sums.items()}
    expected_below: dict[tuple[str, str], float] = {}
    for (_, indicator, period), r in rows.items():
        if r.target is not None and r.ratio < r.target:
            expected_below[indicator, period] = expected_below.get((indicator, period), 0) + 1
    # `under`'s DS 1.1 projection (1 stay in 5 counted lately) ends under target; its best
    # case (27 stays still pending, 6 days to come) does not: reachable, not projected to be.
    expected_alerts = {
        ("SunesIndicatorBelowTarget", under, "DS1.1"),
        ("SunesIndicatorMonthBelowTarget", under, "DS1.1"),
        ("SunesTargetProjectedMiss", under, "DS1.1"),
    }

    ours = f'finess=~"{dataset.finess_regex}"'
    observed: dict[str, Any] = {}

    def by_key(expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(m[n] for n in labels): v for m, v in prometheus.query(expr)}

    def firing() -> dict[tuple[str, str, str], dict[str, Any]]:
        return {
            (a["labels"]["alertname"], a["labels"]["finess"], a["labels"].get("indicator", "")): a
            for a in prometheus.alerts()
            if a["state"] == "firing" and a["labels"].get("finess") in dataset.finess
        }

    def settled() -> bool:
        key = ("finess", "indicator", "period")
        numerators = by_key(f"finess:sunes_indicator_numerator:sum{{{ours}}}", *key)
        denominators = by_key(f"finess:sunes_indicator_denominator:sum{{{ours}}}", *key)
        fractions = {
            k: (numerators.get(k), denominators.get(k)) for k in numerators.keys() | denominators
        }
        alerts = set(firing())
        observed.update(fractions=fractions, alerts=alerts)
        return fractions == expected_fractions and alerts == expected_alerts

    def details() -> str:
        try:  # scrape health says whether Prometheus reached the worker at all
            targets = prometheus.api("targets")["activeTargets"]
        except Exception as exc:
            targets = repr(exc)
        return (
            f"observed: {observed}\nexpected fractions: {expected_fractions}\n"
            f"expected alerts: {expected_alerts}\ntargets: {targets}\n"
            f"--- worker log ---\n{worker.log_tail()}"
        )

    prometheus.wait_until(settled, DEADLINE, "the recorded figures and alerts", details)

    ratios = by_key(f"finess:sunes_indicator:ratio{{{ours}}}", "finess", "indicator", "period")
    assert ratios == pytest.approx(expected_ratios)
    targets = by_key(f"finess:sunes_indicator_target_ratio:max{{{ours}}}", "finess", "indicator")
    assert {k: targets.get(k) for k in expected_targets} == pytest.approx(expected_targets)

    region = f'region="{dataset.region}"'
    region_ratios = by_key(f"region:sunes_indicator:ratio{{{region}}}", "indicator", "period")
    assert region_ratios == pytest.approx(expected_region)
    below = by_key(
        f"region:sunes_establishments_below_target:count{{{region}}}", "indicator", "period"
    )
    assert below == expected_below

    # The firing alert carries the registry labels (routing) and the funding-window rate.
    alert = firing()["SunesIndicatorBelowTarget", under, "DS1.1"]
    assert alert["labels"] == {
        "alertname": "SunesIndicatorBelowTarget",
        "severity": "critical",
        "finess": under,
        "indicator": "DS1.1",
        "period": "funding_window",
        "finess_ej": dataset.finess_ej,
        "region": dataset.region,
        "window": "F2",
        "name": "CH sous la cible",
    }
    assert float(alert["value"]) == pytest.approx(expected_ratios[under, "DS1.1", "funding_window"])
    assert "CH sous la cible" in alert["annotations"]["summary"]
    # The description's template queries (target, denominator) ran against real series.
    assert "55%" in alert["annotations"]["description"]
    assert "60 au dénominateur" in alert["annotations"]["description"]
    # ALERTS, the series dashboards read, agrees with the API.
    series = by_key(f'ALERTS{{alertstate="firing",{ours}}}', "alertname", "finess", "indicator")
    assert set(series) == expected_alerts

    # Units, projection, window dates and now: the batch run's, through Prometheus.
    expected = batch_families(dataset.registry + dataset.events)
    for name in EXPLAINING_FAMILIES:
        live = {
            tuple(
                sorted(
                    (k, v) for k, v in labels.items() if k not in {"__name__", "job", "instance"}
                )
            ): value
            for labels, value in prometheus.query(f"{name}{{{ours}}}")
        }
        assert live == pytest.approx(expected[name]), name
    assert expected["sunes_indicator_units"], "the batch run exported no units"


@pytest.mark.kafka
def test_promtool_check_metrics_accepts_the_worker_output(
    dataset: DataSet, worker: WorkerProcess, promtool: str
) -> None:
    metrics: bytes = worker.get("/metrics")
    assert metrics, f"no /metrics answer:\n{worker.log_tail()}"
    # The indicator families are in the checked text, not only the pipeline counters.
    assert f'sunes_establishment_info{{finess="{dataset.under}"'.encode() in metrics
    collected = {
        m.name
        for m in IndicatorCollector(lambda: [], lambda: {("t", 0): 0}).collect()  # names only
    }
    for name in collected:
        assert f"# TYPE {name} gauge".encode() in metrics, name
    # The establishment stage counted what it applied (a replay may count some twice).
    applied = [
        s.value
        for family in text_string_to_metric_families(metrics.decode())
        for s in family.samples
        if s.name == "sunes_events_applied_total"
    ]
    assert applied and applied[0] >= len(dataset.events), applied
    result = subprocess.run(
        [promtool, "check", "metrics"], input=metrics, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")


# The establishment dashboard's panels that explain a figure: each must show data.
EXPLAINING_PANELS = (
    "Unités par statut et motif",
    "Unités en attente et leur échéance",
    "Unités non comptées par motif — fenêtre de financement",
    "Projection de fin de fenêtre face à la cible",
    "Dernier jour de la fenêtre",
    "Jours restants (temps des événements)",
    "Maintenant de l'établissement",
)


@pytest.mark.kafka
def test_the_establishment_dashboard_queries_run_on_the_recorded_series(
    dataset: DataSet, worker: WorkerProcess, prometheus: PrometheusServer
) -> None:
    """Every query of the establishment dashboard, with its variables set as Grafana would,
    is accepted by the real Prometheus (joins included: a many-to-many match is an error
    there, not in a parser); the panels that explain the figures show data."""
    values = {
        "finess": dataset.under,
        "region": dataset.region,
        "indicator": ".*",
        "window": "F2",
        "current_month": "2023-03",
        "previous_month": "2023-02",
        "__rate_interval": "1m",
        "__interval": "1m",
    }
    board = orjson.loads(
        (PROMETHEUS_DIR.parent / "grafana" / "dashboards" / "sunes-establishment.json").read_bytes()
    )
    queries = [
        (panel["title"], target["expr"])
        for row in board["panels"]
        for panel in [row, *row.get("panels", [])]
        for target in panel.get("targets", [])
    ]
    ours = f'finess="{dataset.under}"'
    prometheus.wait_until(
        lambda: bool(prometheus.query(f"finess:sunes_indicator_window_projected:ratio{{{ours}}}")),
        DEADLINE,
        "the projection recorded",
    )
    shown: dict[str, int] = {}
    for title, expr in queries:
        for name, value in values.items():
            expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
        assert "$" not in expr, (title, expr)
        shown[title] = shown.get(title, 0) + len(prometheus.query(expr))
    for title in EXPLAINING_PANELS:
        assert shown.get(title), f"{title}: no data ({shown})"
