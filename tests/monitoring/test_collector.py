"""IndicatorCollector without a broker: establishments built from builder events, exported
through a fresh CollectorRegistry and read back with prometheus_client's text parser, as
Prometheus would read them."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from monitoring import collector as collector_module
from monitoring.collector import IndicatorCollector
from processors.catalogue import BIOLOGY_REPORT, DISCHARGE_LETTER, DISCHARGE_PRESCRIPTION
from processors.collection import Establishments
from processors.establishment import Establishment
from processors.periods import paris_midnight
from processors.settings import Settings
from processors.units import REASONS
from tests import builders
from tests.builders import EJ, F1, F2, deposited, discharged, establishment, mss_sent, parse
from tests.monitoring.tools import INDICATOR_FAMILIES
from topics.records import EstablishmentRecord, Event

# Every label the collector may use (docs/monitoring.md): nothing that names a patient.
ALLOWED_LABELS = {"finess", "indicator", "period", "finess_ej", "region", "window", "name"}
ALLOWED_LABELS |= {"topic", "partition", "status", "reason", "period_key"}

# The 2023 calendar's F2 targets (processors/data/funding_calendar.json), as ratios.
F2_TARGETS = {
    "DS1.1": 0.55,
    "DS1.2": 0.48,
    "DS1.3": 0.55,
    "DS1.4": 0.50,
    "DS2.1": 0.50,
    "DS3.1": 0.45,
    "DS4.1": 0.42,
    "DS4.2": 0.42,
}
# F1 sets no target for DS 1.4 and DS 4.x (volet 2 did not exist yet): no series at all.
F1_TARGETS = {"DS1.1": 0.49, "DS1.2": 0.40, "DS1.3": 0.49, "DS2.1": 0.45, "DS3.1": 0.45}

LATEST_DISCHARGE = "2023-03-20T10:00:00+01:00"

Key = tuple[str, str, str]  # (finess, indicator, period label)


def stay(stay_id: str, day: str, *, finess: str = F1, **fields: Any) -> dict[str, Any]:
    """A stay admitted and discharged on `day` (winter time, +01:00), its own patient."""
    return discharged(
        stay_id,
        admitted=f"{day}T08:00:00+01:00",
        discharged=f"{day}T10:00:00+01:00",
        patient=f"IPP-{stay_id}",
        finess=finess,
        **fields,
    )


def document(
    document_id: str, type_code: str, stay_id: str, day: str, finess: str = F1
) -> dict[str, Any]:
    """A qualifying deposit for a stay, the day of its discharge."""
    return deposited(
        document_id,
        type_code,
        stay_id=stay_id,
        patient=f"IPP-{stay_id}",
        produced=f"{day}T09:00:00+01:00",
        deposited_at=f"{day}T11:00:00+01:00",
        finess=finess,
    )


# January (in the F2 window but neither the current nor the previous month), February
# (previous month) and March (current month: the watermark is 2023-03-20).
EVENTS: list[dict[str, Any]] = [
    stay("S-JAN-1", "2023-01-16"),
    stay("S-FEB-1", "2023-02-06"),
    document("D-FEB-1-LL", DISCHARGE_LETTER, "S-FEB-1", "2023-02-06"),
    stay("S-FEB-2", "2023-02-07"),
    stay("S-MAR-1", "2023-03-06"),
    document("D-MAR-1-LL", DISCHARGE_LETTER, "S-MAR-1", "2023-03-06"),
    document("D-MAR-1-ORD", DISCHARGE_PRESCRIPTION, "S-MAR-1", "2023-03-06"),
    stay("S-MAR-2", "2023-03-07"),
    document("D-MAR-2-LL", DISCHARGE_LETTER, "S-MAR-2", "2023-03-07"),
    stay("S-MAR-3", "2023-03-08"),
    document("D-MAR-3-LL", DISCHARGE_LETTER, "S-MAR-3", "2023-03-08"),
    stay("S-MAR-4", LATEST_DISCHARGE[:10]),
    mss_sent(
        "citoyenne",
        "ipp-s-mar-4@patient.mssante.fr",
        sent="2023-03-20T12:00:00+01:00",
        stay_id="S-MAR-4",
        patient="IPP-S-MAR-4",
    ),
]

# Counted by hand from EVENTS: (numerator, denominator).
EXPECTED: dict[Key, tuple[int, int]] = {
    (F1, "DS1.1", "current_month"): (3, 4),
    (F1, "DS1.1", "previous_month"): (1, 2),
    (F1, "DS1.1", "funding_window"): (4, 7),
    (F1, "DS1.2", "current_month"): (1, 4),
    (F1, "DS1.2", "previous_month"): (0, 2),
    (F1, "DS1.2", "funding_window"): (1, 7),
    (F1, "DS4.2", "current_month"): (1, 4),
    (F1, "DS4.2", "previous_month"): (0, 2),
    (F1, "DS4.2", "funding_window"): (1, 7),
}


def registry_entry(finess: str = F1, window: str = "F2", **fields: Any) -> EstablishmentRecord:
    record = parse(establishment(finess=finess, window=window, name="CH de Test", **fields))
    assert isinstance(record, EstablishmentRecord)
    return record


def build(
    events: Iterable[dict[str, Any]],
    registry: EstablishmentRecord | None,
    finess: str = F1,
) -> Establishment:
    collection = Establishments(Settings())
    if registry is not None:
        collection.set_registry(registry)
    est = collection.get(finess)
    for obj in events:
        event = parse(obj)
        assert isinstance(event, Event)
        est.apply(event)
    return est


def scrape(
    establishments: Callable[[], Iterable[Establishment]],
    lag: Callable[[], Mapping[tuple[str, int], int]] | None = None,
) -> dict[str, Metric]:
    """The text exposition of a fresh registry holding only the collector, parsed back."""
    registry = CollectorRegistry()
    registry.register(IndicatorCollector(establishments, lag))
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def by_labels(family: Metric, *names: str) -> dict[tuple[str, ...], float]:
    values: dict[tuple[str, ...], float] = {}
    for sample in family.samples:
        key = tuple(sample.labels[n] for n in names)
        assert key not in values, f"duplicate series {sample}"
        values[key] = sample.value
    return values


def fractions(metrics: dict[str, Metric]) -> dict[Key, tuple[float, float]]:
    """(finess, indicator, period) → (numerator, denominator), both families agreeing on keys."""

    def values(name: str) -> dict[Key, float]:
        family = by_labels(metrics[name], "finess", "indicator", "period")
        return {(k[0], k[1], k[2]): v for k, v in family.items()}

    numerators = values("sunes_indicator_numerator")
    denominators = values("sunes_indicator_denominator")
    assert numerators.keys() == denominators.keys()
    return {key: (numerators[key], denominators[key]) for key in numerators}


@pytest.fixture
def f2_establishment() -> Establishment:
    return build(EVENTS, registry_entry(cme_presentation=True))


def test_numerators_and_denominators_per_period(f2_establishment: Establishment) -> None:
    metrics = scrape(lambda: [f2_establishment])
    assert fractions(metrics) == EXPECTED
    for name in INDICATOR_FAMILIES:
        assert metrics[name].type == "gauge", name


def test_older_months_are_not_exported_but_count_in_the_window(
    f2_establishment: Establishment,
) -> None:
    # January has a row in the establishment's figures; only the window carries it here.
    assert any(row.period == "2023-01" for row in f2_establishment.rows())
    periods = {key[2] for key in fractions(scrape(lambda: [f2_establishment]))}
    assert periods == {"current_month", "previous_month", "funding_window"}


def test_target_ratios_of_the_window(f2_establishment: Establishment) -> None:
    metrics = scrape(lambda: [f2_establishment])
    targets = by_labels(metrics["sunes_indicator_target_ratio"], "finess", "indicator")
    assert targets == {(F1, indicator): value for indicator, value in F2_TARGETS.items()}


def test_no_target_series_where_the_window_sets_none() -> None:
    est = build(EVENTS[:2], registry_entry(window="F1"))
    targets = by_labels(scrape(lambda: [est])["sunes_indicator_target_ratio"], "indicator")
    assert targets == {(indicator,): value for indicator, value in F1_TARGETS.items()}


def test_establishment_info_and_cme_presentation(f2_establishment: Establishment) -> None:
    without_cme = build(
        [stay("S-1", "2023-03-01", finess=F2)],
        registry_entry(F2, "F3", cme_presentation=False),
        finess=F2,
    )
    metrics = scrape(lambda: [f2_establishment, without_cme])
    info = metrics["sunes_establishment_info"]
    assert [(s.labels, s.value) for s in info.samples] == [
        ({"finess": F1, "finess_ej": EJ, "region": "IDF", "window": "F2", "name": "CH de Test"}, 1),
        ({"finess": F2, "finess_ej": EJ, "region": "IDF", "window": "F3", "name": "CH de Test"}, 1),
    ]
    cme = by_labels(metrics["sunes_cme_presentation"], "finess")
    assert cme == {(F1,): 1, (F2,): 0}


def test_watermark_is_the_day_of_the_latest_discharge(f2_establishment: Establishment) -> None:
    watermark = by_labels(
        scrape(lambda: [f2_establishment])["sunes_establishment_watermark_timestamp_seconds"],
        "finess",
    )
    day = datetime.fromisoformat(LATEST_DISCHARGE).date()
    assert watermark == {(F1,): paris_midnight(day).timestamp()}


def test_current_month_is_the_watermark_month_in_paris_time() -> None:
    # 22:30 UTC on 31 March is 00:30 on 1 April in Paris (summer time, +02:00): April is the
    # current month, March the previous one, whatever the UTC date says.
    events = [
        stay("S-MAR", "2023-03-15"),
        discharged(
            "S-APR",
            admitted="2023-03-31T18:00:00+00:00",
            discharged="2023-03-31T22:30:00+00:00",
            patient="IPP-S-APR",
        ),
    ]
    est = build(events, registry_entry(window="F3"))
    got = {k: v for k, v in fractions(scrape(lambda: [est])).items() if k[1] == "DS1.1"}
    assert got == {
        (F1, "DS1.1", "current_month"): (0, 1),
        (F1, "DS1.1", "previous_month"): (0, 1),
        (F1, "DS1.1", "funding_window"): (0, 2),  # F3 runs from January to July 2023
    }


def test_an_establishment_without_registry_entry_is_only_counted() -> None:
    # Not enrolled yet, or a mistyped FINESS: no window, no target, and no series of its own
    # (2,000 made-up numbers must not grow /metrics); the count says it is there.
    est = build(EVENTS, registry=None)
    metrics = scrape(lambda: [est])
    assert fractions(metrics) == {}
    for name in ("sunes_indicator_target_ratio", "sunes_establishment_info"):
        assert metrics[name].samples == [], name
    assert metrics["sunes_cme_presentation"].samples == []
    assert metrics["sunes_establishment_watermark_timestamp_seconds"].samples == []
    assert [s.value for s in metrics["sunes_establishments_unregistered"].samples] == [1]


def test_an_empty_worker_exports_empty_families() -> None:
    metrics = scrape(list)
    assert set(INDICATOR_FAMILIES) <= metrics.keys()
    assert all(metrics[name].samples == [] for name in INDICATOR_FAMILIES)
    assert "sunes_consumer_lag" not in metrics  # no lag source given


def test_consumer_lag_family() -> None:
    lag = {("sunes.stays.v1", 3): 12, ("sunes.dmp.v1", 0): 0, ("sunes.stays.v1", 0): 5}
    metrics = scrape(list, lambda: lag)
    family = metrics["sunes_consumer_lag"]
    assert family.type == "gauge"
    assert by_labels(family, "topic", "partition") == {
        ("sunes.stays.v1", "3"): 12,
        ("sunes.stays.v1", "0"): 5,
        ("sunes.dmp.v1", "0"): 0,
    }


def test_the_store_of_a_worker_exports_each_establishment_it_holds() -> None:
    store = Establishments(Settings())
    store.set_registry(registry_entry(F1, "F2", cme_presentation=True))
    for obj in [*EVENTS, stay("S-OTHER", "2023-02-01", finess=F2)]:
        event = parse(obj)
        assert isinstance(event, Event)
        store.apply(event)
    metrics = scrape(store.all)
    assert {k: v for k, v in fractions(metrics).items() if k[0] == F1} == EXPECTED
    # F2 has no registry entry: counted (in /indicators), not exported per FINESS here.
    assert {k: v for k, v in fractions(metrics).items() if k[0] == F2} == {}
    assert [s.value for s in metrics["sunes_establishments_unregistered"].samples] == [1]
    assert by_labels(metrics["sunes_establishment_info"], "finess").keys() == {(F1,)}


def test_no_label_carries_a_patient_stay_document_or_event_identifier(
    f2_establishment: Establishment,
) -> None:
    metrics = scrape(lambda: [f2_establishment], lambda: {("sunes.stays.v1", 0): 1})
    identifiers = {
        obj[field]
        for obj in EVENTS
        for field in ("stay_id", "patient_id", "document_id", "event_id", "message_id")
        if obj.get(field)
    }
    identifiers |= {obj["recipient"] for obj in EVENTS if "recipient" in obj}
    samples = [s for family in metrics.values() for s in family.samples]
    label_names = {n for s in samples for n in s.labels}
    label_values = {v for s in samples for v in s.labels.values()}
    assert label_names <= ALLOWED_LABELS
    assert not label_values & identifiers
    assert not any(i in v for v in label_values for i in identifiers if len(i) > 3)


def units_by_row(metrics: dict[str, Metric]) -> dict[Key, dict[str, float]]:
    """(finess, indicator, period) → status → units (reasons added up)."""
    rows: dict[Key, dict[str, float]] = {}
    for sample in metrics["sunes_indicator_units"].samples:
        labels = sample.labels
        key = (labels["finess"], labels["indicator"], labels["period"])
        statuses = rows.setdefault(key, {})
        statuses[labels["status"]] = statuses.get(labels["status"], 0) + sample.value
    return rows


def test_units_add_up_to_the_figures(f2_establishment: Establishment) -> None:
    metrics = scrape(lambda: [f2_establishment])
    units = units_by_row(metrics)
    figures = fractions(metrics)
    assert units.keys() == figures.keys()
    for key, (numerator, denominator) in figures.items():
        assert units[key].get("counted", 0) == numerator, key
        assert sum(units[key].values()) == denominator, key
    for sample in metrics["sunes_indicator_units"].samples:
        status, reason = sample.labels["status"], sample.labels["reason"]
        assert status in {"counted", "pending", "missed"}
        assert (reason == "none") == (status == "counted"), sample
        assert reason == "none" or reason in REASONS, sample


def test_units_by_status_and_reason(f2_establishment: Establishment) -> None:
    # now = 20 March (the latest fact). DS 1.1 of the window: S-JAN-1 and S-FEB-2 without a
    # letter, past their grace end (15 Feb, 9 March): missed; S-MAR-4 discharged on 20
    # March: pending until 19 April; the four others counted.
    samples = scrape(lambda: [f2_establishment])["sunes_indicator_units"].samples
    window = {
        (s.labels["status"], s.labels["reason"]): s.value
        for s in samples
        if s.labels["indicator"] == "DS1.1" and s.labels["period"] == "funding_window"
    }
    assert window == {
        ("counted", "none"): 4,
        ("missed", "no_document"): 2,
        ("pending", "no_document"): 1,
    }


def test_funding_window_dates(f2_establishment: Establishment) -> None:
    metrics = scrape(lambda: [f2_establishment])
    # F2 as amended in 2023: 1 July 2022 → 31 March 2023; the end is the next Paris midnight.
    start = by_labels(metrics["sunes_funding_window_start_timestamp_seconds"], "finess", "window")
    end = by_labels(metrics["sunes_funding_window_end_timestamp_seconds"], "finess", "window")
    assert start == {(F1, "F2"): paris_midnight(date(2022, 7, 1)).timestamp()}
    assert end == {(F1, "F2"): paris_midnight(date(2023, 4, 1)).timestamp()}


def test_now_and_the_current_month_from_every_event_type() -> None:
    # The latest fact is a biology report produced on 3 April, not a discharge: April is the
    # current month (its report), March the previous one (its stay).
    events = [
        stay("S-MAR", "2023-03-15"),
        builders.produced("D-BIO", BIOLOGY_REPORT, produced_at="2023-04-03T09:00:00+02:00"),
    ]
    est = build(events, registry_entry(window="F3"))
    metrics = scrape(lambda: [est])
    now = by_labels(metrics["sunes_establishment_now_timestamp_seconds"], "finess")
    assert now == {(F1,): paris_midnight(date(2023, 4, 3)).timestamp()}
    watermark = by_labels(metrics["sunes_establishment_watermark_timestamp_seconds"], "finess")
    assert watermark == {(F1,): paris_midnight(date(2023, 3, 15)).timestamp()}
    got = fractions(metrics)
    assert got[(F1, "DS1.1", "previous_month")] == (0, 1)
    assert got[(F1, "DS2.1", "current_month")] == (0, 1)
    assert (F1, "DS1.1", "current_month") not in got


def test_projection_of_the_window(f2_establishment: Establishment) -> None:
    metrics = scrape(lambda: [f2_establishment])
    projected = by_labels(metrics["sunes_indicator_window_projected_ratio"], "finess", "indicator")
    best = by_labels(metrics["sunes_indicator_window_best_case_ratio"], "finess", "indicator")
    to_come = by_labels(metrics["sunes_indicator_window_units_to_come"], "finess", "indicator")
    # DS 1.1, counted by hand (see test_units_by_status_and_reason): window 4 counted,
    # 1 pending, 2 missed. Recent weeks (1 Feb → 20 March, 48 days): 6 units, 4 counted.
    # 11 days to come at 6/48 a day: 1.375 units.
    assert to_come[(F1, "DS1.1")] == pytest.approx(1.375)
    assert projected[(F1, "DS1.1")] == pytest.approx((4 + 4 / 6 * (1 + 1.375)) / (7 + 1.375))
    assert best[(F1, "DS1.1")] == pytest.approx((4 + 1 + 1.375) / (7 + 1.375))
    # DS 4.1 counts distinct correspondents: not projected; nor are rates without a row.
    assert (F1, "DS4.1") not in projected
    assert {indicator for _, indicator in projected} == {"DS1.1", "DS1.2", "DS4.2"}
    assert projected.keys() == best.keys() == to_come.keys()


def test_period_keys_name_the_worklists_periods(f2_establishment: Establishment) -> None:
    info = by_labels(
        scrape(lambda: [f2_establishment])["sunes_indicator_period_info"], "period", "period_key"
    )
    assert info == {
        ("current_month", "2023-03"): 1,
        ("previous_month", "2023-02"): 1,
        ("funding_window", "F2"): 1,
    }


def test_earliest_deadline_of_the_pending_units() -> None:
    # now = 25 March. Pending DS 1.1 stays: 10 March (deadline 9 April) and 20 March
    # (19 April); 1 February (3 March) is past its deadline: missed, not pending.
    events = [
        stay("S-FEB", "2023-02-01"),
        stay("S-MAR-10", "2023-03-10"),
        stay("S-MAR-20", "2023-03-20"),
        document("D-LL", DISCHARGE_LETTER, "S-MAR-20", "2023-03-25"),
    ]
    est = build(events, registry_entry(window="F2"))
    deadlines = by_labels(
        scrape(lambda: [est])["sunes_indicator_pending_deadline_timestamp_seconds"],
        "indicator",
        "period",
    )
    april_9 = paris_midnight(date(2023, 4, 9)).timestamp()
    assert deadlines[("DS1.1", "current_month")] == april_9
    assert deadlines[("DS1.1", "funding_window")] == april_9
    assert ("DS1.1", "previous_month") not in deadlines
    # DS 1.2 has no prescription at all: its pending stays start with 10 March too.
    assert deadlines[("DS1.2", "current_month")] == april_9


def _two_establishments() -> Establishments:
    store = Establishments(Settings())
    for finess in (F1, F2):
        store.set_registry(registry_entry(finess, "F2"))
        for obj in EVENTS:
            event = parse({**obj, "finess": finess})
            assert isinstance(event, Event)
            store.apply(event)
    return store


def computed_establishments(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The FINESS of each establishment the collector computes from now on, in order."""
    computed: list[str] = []
    real = collector_module._collect_establishment

    def counting(est: Establishment, families: Any) -> None:
        computed.append(est.finess)
        real(est, families)

    monkeypatch.setattr(collector_module, "_collect_establishment", counting)
    return computed


def test_a_scrape_renders_only_the_establishments_that_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _two_establishments()
    collector = IndicatorCollector(store.all, lambda: {("t", 0): 3})
    computed = computed_establishments(monkeypatch)
    first = collector.exposition()
    assert sorted(computed) == [F1, F2]
    assert collector.exposition() == first  # nothing changed: the kept text
    assert sorted(computed) == [F1, F2]

    late = parse(stay("S-MAR-9", "2023-03-08"))  # F1's current month gains a stay
    assert isinstance(late, Event)
    store.apply(late)
    changed = collector.exposition()
    assert sorted(computed) == [F1, F1, F2]  # F1 only, again
    assert changed != first

    store.set_registry(registry_entry(F2, "F1"))  # a registry change is a change too
    computed.clear()
    collector.exposition()
    assert computed == [F2]


@pytest.mark.promtool
def test_the_kept_text_is_what_prometheus_client_writes(promtool: str) -> None:
    """exposition() is generate_latest of the collector byte for byte (first scrape, kept
    text, after a change, one establishment gone, a scoped caller's few, an unregistered
    one), and promtool reads it."""
    store = _two_establishments()
    lag = {("sunes.stay.discharged.v1", 0): 3, ("sunes.document.deposited.v1", 1): 0}
    kept = IndicatorCollector(store.all, lambda: lag)
    fresh = _fresh(store.all, lambda: lag)
    assert kept.exposition() == generate_latest(fresh)
    assert kept.exposition() == generate_latest(fresh)
    late = parse(stay("S-MAR-9", "2023-03-08"))
    assert isinstance(late, Event)
    store.apply(late)
    assert kept.exposition() == generate_latest(fresh)

    unregistered = build([{**e, "finess": "750000003"} for e in EVENTS], None, "750000003")
    one = store.get(F1)
    shown: list[Establishment] = [one, unregistered]
    narrowed = IndicatorCollector(lambda: shown, lambda: lag)
    assert narrowed.exposition() == generate_latest(_fresh(lambda: shown, lambda: lag))
    # a scoped caller's establishments, from the worker's collector: no lag series
    assert kept.exposition([one]) == generate_latest(_fresh(lambda: [one]))
    text = kept.exposition()  # the scoped scrape did not drop F2's kept text
    assert text == generate_latest(fresh) and f'finess="{F2}"'.encode() in text

    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _fresh(
    establishments: Callable[[], Iterable[Establishment]],
    lag: Callable[[], Mapping[tuple[str, int], int]] | None = None,
) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(IndicatorCollector(establishments, lag))
    return registry


# name[] lists of a scrape: indicator families only, the collector's own pipeline ones, both,
# a family with no sample (no pending deadline in _two_establishments), nothing known.
NAME_LISTS = [
    {"sunes_indicator_numerator"},
    {"sunes_indicator_units", "sunes_indicator_target_ratio"},
    {"sunes_establishments_unregistered", "sunes_consumer_lag"},
    {"sunes_consumer_lag", "sunes_indicator_period_info", "sunes_indicator_denominator"},
    {"sunes_indicator_pending_deadline_timestamp_seconds", "sunes_indicator_numerator"},
    {"no_such_family"},
]


def _restricted(
    establishments: Callable[[], Iterable[Establishment]],
    names: set[str],
    lag: Callable[[], Mapping[tuple[str, int], int]] | None = None,
) -> bytes:
    """prometheus_client's own name[] filter (its RestrictedRegistry) of a fresh registry."""
    registry = CollectorRegistry(support_collectors_without_names=True)
    registry.register(IndicatorCollector(establishments, lag))
    return generate_latest(registry.restricted_registry(names))


@pytest.mark.promtool
def test_named_families_only_as_prometheus_client_restricts_them(promtool: str) -> None:
    """exposition(names=...) is prometheus_client's restricted registry byte for byte, before
    and after a change, for everyone and for a scoped caller; promtool reads it."""
    store = _two_establishments()
    lag = {("sunes.stay.discharged.v1", 0): 3}
    kept = IndicatorCollector(store.all, lambda: lag)
    one = store.get(F1)
    for names in NAME_LISTS:
        assert kept.exposition(names=names) == _restricted(store.all, names, lambda: lag)
        assert kept.exposition([one], names) == _restricted(lambda: [one], names)
    late = parse(stay("S-MAR-9", "2023-03-08"))
    assert isinstance(late, Event)
    store.apply(late)
    for names in NAME_LISTS:
        assert kept.exposition(names=names) == _restricted(store.all, names, lambda: lag)
    assert kept.exposition() == generate_latest(_fresh(store.all, lambda: lag))

    text = kept.exposition(names=NAME_LISTS[3])
    assert b"sunes_indicator_denominator{" in text and b"sunes_consumer_lag{" in text
    assert b"sunes_indicator_numerator" not in text
    assert kept.exposition(names={"no_such_family"}) == b""
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_scrape_naming_no_indicator_family_computes_no_establishment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _two_establishments()
    lag_read: list[int] = []
    collector = IndicatorCollector(store.all, lambda: lag_read.append(1) or {("t", 0): 3})
    computed = computed_establishments(monkeypatch)
    text = collector.exposition(names={"sunes_establishments_unregistered"})
    assert text.splitlines()[-1] == b"sunes_establishments_unregistered 0.0"
    assert computed == [] and lag_read == []  # neither the figures nor the lag were read
    collector.exposition(names={"sunes_indicator_numerator"})
    assert sorted(computed) == [F1, F2]
    collector.exposition()  # the text rendered for the named family is kept whole
    assert sorted(computed) == [F1, F2] and lag_read == [1]


def test_serve_is_exposition_given_back_to_the_loop_between_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _two_establishments()
    lag = {("sunes.stay.discharged.v1", 0): 3}
    monkeypatch.setattr(collector_module, "SLICE_SECONDS", 0.0)  # a slice per establishment
    served = IndicatorCollector(store.all, lambda: lag)
    kept = IndicatorCollector(store.all, lambda: lag)

    async def both() -> tuple[bytes, bytes, list[int]]:
        ticks: list[int] = []

        async def ticking() -> None:  # what the apply loop would do meanwhile
            for i in range(10):
                ticks.append(i)
                await asyncio.sleep(0)

        ticker = asyncio.create_task(ticking())
        text = await served.serve()
        named = await served.serve([store.get(F1)], {"sunes_indicator_numerator"})
        await ticker
        return text, named, ticks

    text, named, ticks = asyncio.run(both())
    assert text == kept.exposition() == generate_latest(_fresh(store.all, lambda: lag))
    assert named == kept.exposition([store.get(F1)], {"sunes_indicator_numerator"})
    assert ticks  # the loop ran while the scrape rendered


def _lines_of(text: bytes, finess: str) -> list[bytes]:
    return [line for line in text.splitlines() if f'finess="{finess}"'.encode() in line]


def test_an_establishment_changed_mid_scrape_shows_one_state_of_its_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between two slices the loop applies events: each establishment's lines come from one
    state of its figures (before or after), the next scrape shows the change."""
    store = _two_establishments()
    monkeypatch.setattr(collector_module, "SLICE_SECONDS", 0.0)
    before = IndicatorCollector(store.all).exposition()
    collector = IndicatorCollector(store.all)
    steps = collector._exposition(None, None)
    next(steps)  # F1 rendered, the loop given back
    for finess in (F1, F2):  # both gain a stay in their current month
        late = parse(stay("S-MAR-9", "2023-03-08", finess=finess))
        assert isinstance(late, Event)
        store.apply(late)
    next(steps)  # F2 rendered, the loop given back again
    with pytest.raises(StopIteration) as done:
        next(steps)
    text: bytes = done.value.value
    after = IndicatorCollector(store.all).exposition()
    assert _lines_of(before, F1) != _lines_of(after, F1)
    assert _lines_of(text, F1) == _lines_of(before, F1)  # rendered before the change
    assert _lines_of(text, F2) == _lines_of(after, F2)  # after it
    assert collector.exposition() == after  # F1 again, at the next scrape


def test_an_establishment_dropped_mid_scrape_is_not_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebalance between two slices drops an establishment (its new owner exports it): the
    scrape leaves it out, or a sum over the workers would count it twice for one scrape."""
    store = _two_establishments()
    monkeypatch.setattr(collector_module, "SLICE_SECONDS", 0.0)
    collector = IndicatorCollector(store.all)
    steps = collector._exposition(None, None)
    next(steps)  # F1 rendered, the loop given back
    store.retain(lambda finess: finess != F1)  # what a rebalance does meanwhile
    with pytest.raises(StopIteration) as done:
        while True:
            next(steps)
    text: bytes = done.value.value
    assert _lines_of(text, F1) == []
    assert text == IndicatorCollector(store.all).exposition()
    assert _lines_of(text, F2)


@pytest.mark.promtool
def test_label_values_are_escaped_as_prometheus_client_escapes_them(promtool: str) -> None:
    """The kept lines are written by the collector itself (_sample_lines): byte for byte
    generate_latest's, a registry name with a quote, a backslash and a newline included."""
    record = parse(establishment(finess=F1, window="F2", name='CH "Saint-Jean" \\ Nord\nannexe'))
    assert isinstance(record, EstablishmentRecord)
    est = build(EVENTS, record)
    text = IndicatorCollector(lambda: [est]).exposition()
    assert text == generate_latest(_fresh(lambda: [est]))
    assert b'name="CH \\"Saint-Jean\\" \\\\ Nord\\nannexe"' in text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
