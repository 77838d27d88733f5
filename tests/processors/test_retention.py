"""Bounded state: closed periods keep their figures while their facts leave the state."""

from __future__ import annotations

import random
from typing import Any

import orjson

from processors.establishment import Establishment
from processors.facts import PERIOD, STAY
from processors.settings import Settings
from simulator.config import SimulationConfig
from simulator.generator import generate
from tests.builders import F1, deposited, discharged, establishment, parse
from topics.records import EstablishmentRecord, Event
from topics.validation import parse_record

CLOSE_AFTER = 60


def feed(days: int, seed: int) -> tuple[EstablishmentRecord, list[Event]]:
    """One establishment's simulated year, in roughly chronological order."""
    config = SimulationConfig(
        establishments=1, stays_per_day=4, days=days, seed=seed, windows=("F2",)
    )
    records = [parse_record(m.value) for m in generate(config) if m.valid]
    registry = next(r for r in records if isinstance(r, EstablishmentRecord))
    return registry, [r for r in records if isinstance(r, Event)]


def run(
    registry: EstablishmentRecord, events: list[Event], close: bool
) -> tuple[Establishment, int]:
    est = Establishment(registry.finess, Settings(), registry)
    largest = 0
    for event in events:
        est.apply(event)
        if close:
            est.close(CLOSE_AFTER)
        largest = max(largest, len(est.stays))
    return est, largest


def test_closing_periods_keeps_every_figure_and_bounds_the_stays() -> None:
    registry, events = feed(days=540, seed=3)
    kept, _ = run(registry, events, close=False)
    closed, largest = run(registry, events, close=True)
    assert closed.rows() == kept.rows()
    assert closed.frozen, "periods should have closed over 18 months"
    # lookback (365) + grace (30) days of stays at most, not all 540 days
    assert largest < 0.85 * len(kept.stays)
    assert len(closed.stays) < 0.85 * len(kept.stays)


def test_restart_after_closing_gives_the_same_figures() -> None:
    registry, events = feed(days=480, seed=4)
    closed, _ = run(registry, events, close=True)
    stored = [
        (ref, orjson.loads(orjson.dumps(closed.entity_json(ref)))) for ref in closed.entities()
    ]
    assert any(ref[0] == PERIOD for ref, _ in stored)
    restored = Establishment(registry.finess, Settings(), registry)
    for ref, data in stored:
        restored.load_entity(ref, data)
    restored.rebuild()
    assert restored.rows() == closed.rows()


def test_a_closed_period_ignores_events_that_come_too_late() -> None:
    est = Establishment(F1, Settings(), parse(establishment()))  # type: ignore[arg-type]
    first: dict[str, Any] = discharged("S1")  # January 2023
    est.apply(parse(first))  # type: ignore[arg-type]
    later = discharged("S2", patient="P2", admitted="2023-05-01T10:00:00+02:00",
                       discharged="2023-05-02T10:00:00+02:00")  # fmt: skip
    est.apply(parse(later))  # type: ignore[arg-type]
    changed = est.close(CLOSE_AFTER)
    assert (PERIOD, "2023-01") in changed
    january = [r for r in est.rows() if r.period == "2023-01"]
    # A deposit for January's stay, four months late: January is final.
    est.apply(
        parse(deposited("D1", "11490-0", stay_id="S1", deposited_at="2023-05-03T10:00:00+02:00"))
    )  # type: ignore[arg-type]
    assert [r for r in est.rows() if r.period == "2023-01"] == january


def test_stays_needed_for_a_later_returning_patient_are_kept() -> None:
    est = Establishment(F1, Settings(), parse(establishment()))  # type: ignore[arg-type]
    stays = [
        discharged("OLD", patient="P1", admitted="2022-03-01T10:00:00+01:00",
                   discharged="2022-03-02T10:00:00+01:00"),
        # P1 comes back within 365 days, for a long stay that ends in June 2023
        discharged("RETURN", patient="P1", admitted="2023-02-20T10:00:00+01:00",
                   discharged="2023-06-01T10:00:00+02:00"),
        discharged("GONE", patient="P2", admitted="2022-03-01T10:00:00+01:00",
                   discharged="2022-03-02T10:00:00+01:00"),
    ]  # fmt: skip
    for stay in stays:
        est.apply(parse(stay))  # type: ignore[arg-type]
    est.close(CLOSE_AFTER)
    kept = {ref[1] for ref in est.entities() if ref[0] == STAY}
    assert kept == {"OLD", "RETURN"}  # GONE is past lookback + grace; OLD makes P1 return
    june = {(r.indicator, r.period): r.denominator for r in est.rows()}
    assert june[("DS1.4", "2023-06")] == 1


def test_state_stays_bounded_over_a_long_feed() -> None:
    registry, events = feed(days=800, seed=5)
    random.Random(1).shuffle(events[-50:])  # a little disorder at the end does not matter
    _, largest = run(registry, events, close=True)
    stays_per_day = 4
    assert largest < (365 + 30 + CLOSE_AFTER + 120) * stays_per_day * 1.3
