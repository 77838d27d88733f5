"""Where a funding-window rate is heading: its projection and its best case at the window's end.

Pure arithmetic on an establishment's unit counts and its event-time "now" (never the wall
clock, so that a replay and the live worker give the same numbers). docs/monitoring.md
explains it; in short, for one indicator of one window:

    recent weeks   the previous calendar month and the current one up to `now` (4 to 9 weeks)
    recent rate r  counted units ÷ all units of the recent weeks (pending ones not counted)
    daily volume   all units of the recent weeks ÷ their days (first of the previous month → now)
    still to come  F = daily volume × days of the window after `now`
    projection     (counted + r × (pending + F)) ÷ (units + F)
    best case      (counted + pending + F) ÷ (units + F): every pending unit and every unit
                   still to come counts

DS 4.1 is not projected: its window figure counts distinct correspondents, who mostly come
back month after month, so the months' volumes do not add up to the window's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from processors.calendar import Window
from processors.periods import month_bounds, month_key, previous_month
from processors.units import COUNTED, MISSED, PENDING

NOT_PROJECTED = frozenset({"DS4.1"})


class CountLike(Protocol):
    """What a tally reads of a unit count (processors.units.UnitCount)."""

    @property
    def indicator(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Tally:
    """The units of one (indicator, period) by status."""

    counted: int = 0
    pending: int = 0
    missed: int = 0

    @property
    def units(self) -> int:
        return self.counted + self.pending + self.missed

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.counted + other.counted, self.pending + other.pending, self.missed + other.missed
        )


@dataclass(frozen=True, slots=True)
class Projection:
    recent_ratio: float
    daily_units: float  # units a day over the recent weeks
    to_come: float  # units expected after `now` until the window's last day
    projected_ratio: float
    best_case_ratio: float


def tallies(counts: Iterable[CountLike]) -> dict[tuple[str, str], Tally]:
    """(indicator, period) → its units by status."""
    result: dict[tuple[str, str], Tally] = {}
    for c in counts:
        add = Tally(
            counted=c.count if c.status == COUNTED else 0,
            pending=c.count if c.status == PENDING else 0,
            missed=c.count if c.status == MISSED else 0,
        )
        key = (c.indicator, c.period)
        result[key] = result.get(key, Tally()) + add
    return result


def recent_months(now: date) -> tuple[str, str]:
    """The months of the recent weeks: the previous one and the current one."""
    current = month_key(now)
    return previous_month(current), current


def recent_days(now: date) -> int:
    """Days of the recent weeks: from the first of the previous month to `now`, inclusive."""
    first, _ = month_bounds(recent_months(now)[0])
    return (now - first).days + 1


def days_to_come(window: Window, now: date) -> int:
    """Days of the window after `now` (all of them before it opens, none once it ended)."""
    first = max(window.start, now + timedelta(days=1))
    return max(0, (window.end - first).days + 1)


def project(
    window: Window, now: date, so_far: Tally, months: Mapping[str, Tally]
) -> Projection | None:
    """The window's rate at its end, projected and at best; None with nothing to go on
    (no unit in the window and none in the recent weeks)."""
    recent = sum((months.get(m, Tally()) for m in recent_months(now)), Tally())
    if recent.units:
        recent_ratio = recent.counted / recent.units
    elif so_far.units:
        recent_ratio = so_far.counted / so_far.units
    else:
        return None
    daily = recent.units / recent_days(now)
    to_come = daily * days_to_come(window, now)
    units = so_far.units + to_come
    if units <= 0:
        return None
    projected = (so_far.counted + recent_ratio * (so_far.pending + to_come)) / units
    best = (so_far.counted + so_far.pending + to_come) / units
    return Projection(recent_ratio, daily, to_come, projected, best)
