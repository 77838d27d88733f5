"""Unit counts by status and reason, read from an establishment's aggregates like its figures.

Counted units are each row's numerator; the uncounted ones are the rules' `UnitKey`s (months
added up to the window, as the rates) and, for DS 4.1, the correspondents of the period's
people keys. Pending or missed is decided here, against the establishment's `now`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date

from processors.aggregates import (
    NAMED,
    OTHER_IN_GRACE,
    OTHER_SENT,
    SENT,
    SENT_IN_GRACE,
    Aggregates,
)
from processors.calendar import Window
from processors.figures import IndicatorRow
from processors.periods import month_bounds
from processors.rules import Correspondents, grace_end
from processors.settings import Settings
from processors.units import COUNTED, RANK, STATUSES, UnitCount, status_of

People = dict[str, dict[str, set[str]]]  # role → month → RPPS


def people_by_month(aggregates: Aggregates) -> People:
    people: People = {}
    for role in (NAMED, SENT, SENT_IN_GRACE, OTHER_SENT, OTHER_IN_GRACE):
        months: defaultdict[str, set[str]] = defaultdict(set)
        for month, rpps in aggregates.people(role):
            months[month].add(rpps)
        people[role] = months
    return people


def period_months(period: str, window: Window | None) -> list[str]:
    """The months of a row's period: itself, or the window's."""
    if period[:1].isdigit():
        return [period]
    if window is None or window.name != period:
        return []
    return list(window.months())


def period_end(months: Iterable[str]) -> date:
    return month_bounds(max(months))[1]


def correspondents(people: People, months: list[str]) -> Correspondents:
    """Rule 8 over a period's months (the window's tail: its last month's)."""

    def union(role: str, within: Iterable[str]) -> set[str]:
        return set().union(*(people[role].get(m, set()) for m in within))

    last = max(months)
    after = [m for m in people[SENT] if m > last]
    return Correspondents(
        named=union(NAMED, months),
        sent=union(SENT, months),
        sent_in_grace=union(SENT_IN_GRACE, [last]),
        other=union(OTHER_SENT, months) | union(OTHER_IN_GRACE, [last]),
        sent_after=union(SENT, after),
    )


def correspondent_deadline(months: list[str], settings: Settings) -> date:
    """DS 4.1: a message still reaches a correspondent until the period's end + grace."""
    return grace_end(period_end(months), settings)


def establishment_unit_counts(
    finess: str,
    aggregates: Aggregates,
    rows: list[IndicatorRow],
    window: Window | None,
    now: date | None,
    settings: Settings,
) -> list[UnitCount]:
    """For each row: its counted units (the numerator) and its uncounted ones by status and
    reason; they add up to the denominator."""
    uncounted: defaultdict[tuple[str, str], Counter[tuple[str, str]]] = defaultdict(Counter)
    for key, value in aggregates.uncounted():
        uncounted[(key.indicator, key.month)][(key.reason, key.deadline)] += value
    people = people_by_month(aggregates) if any(r.indicator == "DS4.1" for r in rows) else {}
    counts: list[UnitCount] = []
    for row in rows:
        months = period_months(row.period, window)
        by_status: Counter[tuple[str, str | None]] = Counter()
        if row.numerator:
            by_status[(COUNTED, None)] = row.numerator
        if row.indicator == "DS4.1":
            group = correspondents(people, months)
            deadline = correspondent_deadline(months, settings)
            for rpps in group.named:
                reason = group.outcome(rpps).reason
                if reason is not None:
                    by_status[(status_of(reason, deadline, now), reason)] += 1
        else:
            for month in months:
                for (reason, day), value in uncounted[(row.indicator, month)].items():
                    status = status_of(reason, date.fromisoformat(day), now)
                    by_status[(status, reason)] += value
        for (status, reason), value in sorted(by_status.items(), key=_order):
            counts.append(UnitCount(finess, row.indicator, row.period, status, reason, value))
    return counts


def _order(item: tuple[tuple[str, str | None], int]) -> tuple[int, int]:
    (status, reason), _ = item
    return STATUSES.index(status), -1 if reason is None else RANK[reason]
