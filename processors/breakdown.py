"""Unit counts by status and reason, read from an establishment's aggregates like its figures.

Counted units are each row's numerator; the uncounted ones are the rules' `UnitKey`s (months
added up to the window, as the rates) and, for DS 4.1, the correspondents of the period's
people keys. Pending or missed is decided here, against the establishment's `now`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date

from processors.aggregates import (
    NAMED,
    OTHER_IN_GRACE,
    OTHER_SENT,
    SENT,
    SENT_IN_GRACE,
    Aggregates,
    DayCounts,
)
from processors.calendar import Window
from processors.figures import IndicatorRow
from processors.periods import month_bounds
from processors.rules import Correspondents, grace_end
from processors.settings import Settings
from processors.units import (
    COUNTED,
    MESSAGE_LATE,
    MISSED,
    NO_MESSAGE,
    NO_QUALIFYING_ATTACHMENT,
    PENDING,
    RANK,
    STATUSES,
    UnitCount,
    status_of,
)


class People:
    """DS 4.1's correspondents by role and month, each month read from the aggregates when
    first asked: a scrape reads three periods of a history of years, not every month."""

    __slots__ = ("_aggregates", "_sets")

    def __init__(self, aggregates: Aggregates) -> None:
        self._aggregates = aggregates
        self._sets: dict[tuple[str, str], set[str]] = {}

    def of(self, role: str, month: str) -> set[str]:
        """The RPPS with that role in that month (read only)."""
        key = (role, month)
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = self._aggregates.people_of(role, month)
        return found

    def months(self, role: str) -> list[str]:
        """The months that may hold a correspondent with that role."""
        return self._aggregates.people_months(role)


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
        return set().union(*(people.of(role, m) for m in within))

    last = max(months)
    after = [m for m in people.months(SENT) if m > last]
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
    # (indicator, month) → (status, reason) → units: each month read once, months and window
    uncounted: dict[tuple[str, str], Counter[tuple[str, str]]] = {}
    people = People(aggregates)
    counts: list[UnitCount] = []
    for row in rows:
        months = period_months(row.period, window)
        by_status: Counter[tuple[str, str | None]] = Counter()
        if row.numerator:
            by_status[(COUNTED, None)] = row.numerator
        if row.indicator == "DS4.1":
            group = correspondents(people, months)
            deadline = correspondent_deadline(months, settings)
            for why, count in correspondent_reasons(group).items():
                if count:
                    by_status[(status_of(why, deadline, now), why)] += count
        else:
            for month in months:
                statuses = uncounted.get((row.indicator, month))
                if statuses is None:
                    reasons = aggregates.uncounted_of(row.indicator, month)
                    statuses = uncounted[(row.indicator, month)] = uncounted_statuses(reasons, now)
                by_status.update(statuses)
        for (status, reason), value in sorted(by_status.items(), key=_order):
            counts.append(UnitCount(finess, row.indicator, row.period, status, reason, value))
    return counts


def correspondent_reasons(group: Correspondents) -> dict[str, int]:
    """Uncounted correspondents of D by reason, decided as `Correspondents.outcome` decides
    each one (same order), for the whole group at once."""
    left = group.named - group.sent - group.sent_in_grace
    other = left & group.other
    left -= other
    late = left & group.sent_after
    return {
        NO_QUALIFYING_ATTACHMENT: len(other),
        MESSAGE_LATE: len(late),
        NO_MESSAGE: len(left) - len(late),
    }


def uncounted_statuses(reasons: dict[str, DayCounts], now: date | None) -> Counter[tuple[str, str]]:
    """(status, reason) → uncounted units of one indicator's month. A reason whose latest
    deadline is passed (or that is final) is missed as a whole; only a reason still pending
    on some day is read day by day (the recent months)."""
    statuses: Counter[tuple[str, str]] = Counter()
    for reason, days in reasons.items():
        latest = days.latest()
        if latest is None:
            continue
        if status_of(reason, date.fromisoformat(latest), now) != PENDING:
            statuses[(MISSED, reason)] += days.total
            continue
        for day, value in days.positive():
            statuses[(status_of(reason, date.fromisoformat(day), now), reason)] += value
    return statuses


def _order(item: tuple[tuple[str, str | None], int]) -> tuple[int, int]:
    (status, reason), _ = item
    return STATUSES.index(status), -1 if reason is None else RANK[reason]
