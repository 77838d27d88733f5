"""Figures: indicator rows read from an establishment's monthly aggregates.

A month's row is its aggregates; a funding window's row adds up the months it spans (windows
start and end on month boundaries: processors.calendar checks it), except DS 4.1, which
counts distinct correspondents over the window's dates (rule 10).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from processors.aggregates import (
    DENOMINATOR,
    NAMED,
    SENT,
    SENT_IN_GRACE,
    Aggregates,
)
from processors.calendar import FundingCalendar, Window
from processors.catalogue import RATE_INDICATORS
from processors.rules import correspondents_reached
from topics.records import EstablishmentRecord


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    """One figure: an indicator of an establishment over a month ("2023-03") or its window."""

    finess: str
    indicator: str
    period: str
    numerator: int
    denominator: int
    target: float | None

    @property
    def ratio(self) -> float:
        return self.numerator / self.denominator

    @property
    def is_window(self) -> bool:
        return not self.period[:1].isdigit()

    def as_json(self) -> dict[str, Any]:
        return {
            "finess": self.finess,
            "indicator": self.indicator,
            "period": self.period,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "ratio": self.ratio,
            "target": self.target,
        }


def establishment_rows(
    finess: str,
    aggregates: Aggregates,
    registry: EstablishmentRecord | None,
    calendar: FundingCalendar,
) -> list[IndicatorRow]:
    counts: dict[tuple[str, str], list[int]] = {}  # (indicator, month) → [num, den]
    for key, value in aggregates.rates():
        counts.setdefault((key.indicator, key.month), [0, 0])[key.measure == DENOMINATOR] += value
    people = {role: aggregates.people_by_month(role) for role in (NAMED, SENT, SENT_IN_GRACE)}
    for month, named in people[NAMED].items():
        reached = correspondents_reached(
            named, people[SENT].get(month, set()), people[SENT_IN_GRACE].get(month, set())
        )
        counts[("DS4.1", month)] = list(reached)
    window = None
    if registry is not None:
        window = calendar.window_for(registry.window, registry.postponed)
        counts.update(_window_counts(window, counts, people))
    targets = {  # read once per indicator, not per row (a history of years has hundreds)
        i: None if registry is None else calendar.target(i, registry.window)
        for i in RATE_INDICATORS
    }
    rows = []
    for (indicator, period), (numerator, denominator) in counts.items():
        if denominator <= 0 or not _has_rate(indicator, registry):
            continue
        rows.append(
            IndicatorRow(finess, indicator, period, numerator, denominator, targets[indicator])
        )
    rows.sort(key=row_order)
    return rows


def _window_counts(
    window: Window,
    counts: dict[tuple[str, str], list[int]],
    people: dict[str, dict[str, set[str]]],
) -> dict[tuple[str, str], list[int]]:
    months = set(window.months())
    totals: dict[tuple[str, str], list[int]] = {}
    for (indicator, month), (numerator, denominator) in counts.items():
        if month in months and indicator != "DS4.1":
            total = totals.setdefault((indicator, window.name), [0, 0])
            total[0] += numerator
            total[1] += denominator

    def union(role: str, within: Iterable[str]) -> set[str]:
        return set().union(*(people[role].get(m, set()) for m in within))

    last = max(months)
    reached = correspondents_reached(
        union(NAMED, months), union(SENT, months), union(SENT_IN_GRACE, [last])
    )
    totals[("DS4.1", window.name)] = list(reached)
    return totals


def _has_rate(indicator: str, registry: EstablishmentRecord | None) -> bool:
    # DS 2.1 / 3.1 exist only where the establishment has its own lab / imaging unit.
    if indicator == "DS2.1":
        return registry is not None and registry.has_lab
    if indicator == "DS3.1":
        return registry is not None and registry.has_imaging
    return True


def row_order(row: IndicatorRow) -> tuple[str, int, str]:
    # Months ("2023-03") sort before the window ("F2"): digits come before letters.
    return (row.finess, RATE_INDICATORS.index(row.indicator), row.period)


def rows_of(rows: Iterable[IndicatorRow]) -> list[IndicatorRow]:
    ordered = list(rows)
    ordered.sort(key=row_order)
    return ordered
