"""The aggregates: sums of every unit's contribution, per establishment, by calendar month.

A unit (a stay, a report chain, a correspondent) contributes counts under typed keys; the
aggregates are their sum. When a unit changes, its old contribution is taken out and its new
one put in, so a replayed event never counts twice. Keys are monthly only: the funding
window's figures are read from the months it spans (windows start and end on month
boundaries), so a registry change never has to recompute a contribution.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import NamedTuple

# RateKey.measure
DENOMINATOR = "den"
NUMERATOR = "num"
# PeopleKey.role, for DS 4.1 (rule 8)
NAMED = "named"  # in-scope stays of the month naming this equipped correspondent
SENT = "sent"  # qualifying MSS Pro messages to the correspondent sent in the month
SENT_IN_GRACE = "tail"  # ... sent after the month's end, within grace
# MSS Pro messages to the correspondent none of whose attachments qualifies (units' reasons)
OTHER_SENT = "other"  # sent in the month
OTHER_IN_GRACE = "othertail"  # sent after the month's end, within grace


class RateKey(NamedTuple):
    """A count of units: the denominator or numerator of an indicator in a month."""

    measure: str
    indicator: str
    month: str  # "2023-03"


class PeopleKey(NamedTuple):
    """DS 4.1: one correspondent (RPPS) in a month, by role."""

    role: str
    month: str
    rpps: str


class DischargeDay(NamedTuple):
    """Stays whose current version was discharged that Paris day: the watermark's source."""

    day: str  # "2023-03-20"


class EventDay(NamedTuple):
    """Units whose latest fact (discharge, production, deposit, message) is that Paris day:
    the establishment's `now`."""

    day: str  # "2023-03-20"
    # Keys are compared as tuples: this field keeps EventDay(d) apart from DischargeDay(d).
    of: str = "now"


class UnitKey(NamedTuple):
    """Units of an indicator's month not counted, by reason and deadline (processors.units):
    pending or missed is decided when read, against `now`."""

    indicator: str
    month: str
    reason: str
    deadline: str  # "2023-04-19": the last day the unit can still count


AggregateKey = RateKey | PeopleKey | DischargeDay | EventDay | UnitKey
Contribution = dict[AggregateKey, int]


def _shared(key: AggregateKey) -> AggregateKey:
    """The key a total is held under, with its strings interned: a decoded contribution's
    keys each carry their own copies of the same few months, indicators, reasons and days
    (~285 B a key; ~95 B shared). The totals outlive the contributions (a bounded cache),
    and there is one per indicator × month × reason × day, kept for every month."""
    intern = sys.intern
    return type(key)(*[intern(field) for field in key])


class Aggregates:
    """Totals of one establishment: what its figures are read from."""

    def __init__(self) -> None:
        self.totals: dict[AggregateKey, int] = {}

    def add(self, contribution: Contribution, sign: int = 1) -> None:
        totals = self.totals
        for key, value in contribution.items():
            held = totals.get(key)
            left = (held or 0) + sign * value
            if not left:
                del totals[key]
            elif held is None:
                totals[_shared(key)] = left
            else:
                totals[key] = left  # the dict keeps the key it holds

    def replace(self, old: Contribution, new: Contribution) -> None:
        if old:
            self.add(old, -1)
        if new:
            self.add(new)

    def clear(self) -> None:
        self.totals.clear()

    def rates(self) -> Iterator[tuple[RateKey, int]]:
        for key, value in self.totals.items():
            if isinstance(key, RateKey) and value > 0:
                yield key, value

    def people(self, role: str) -> Iterator[tuple[str, str]]:
        """(month, rpps) of every correspondent with that role."""
        for key, value in self.totals.items():
            if isinstance(key, PeopleKey) and key.role == role and value > 0:
                yield key.month, key.rpps

    def latest_discharge_day(self) -> str | None:
        days = [k.day for k, v in self.totals.items() if isinstance(k, DischargeDay) and v > 0]
        return max(days, default=None)

    def latest_event_day(self) -> str | None:
        days = [k.day for k, v in self.totals.items() if isinstance(k, EventDay) and v > 0]
        return max(days, default=None)

    def uncounted(self) -> Iterator[tuple[UnitKey, int]]:
        for key, value in self.totals.items():
            if isinstance(key, UnitKey) and value > 0:
                yield key, value


def total_of(contributions: Iterable[Contribution]) -> Aggregates:
    aggregates = Aggregates()
    for contribution in contributions:
        aggregates.add(contribution)
    return aggregates
