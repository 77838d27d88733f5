"""The aggregates: sums of every unit's contribution, per establishment, by calendar month.

A unit (a stay, a report chain, a correspondent) contributes counts under typed keys; the
aggregates are their sum. When a unit changes, its old contribution is taken out and its new
one put in, so a replayed event never counts twice. Keys are monthly only: the funding
window's figures are read from the months it spans (windows start and end on month
boundaries), so a registry change never has to recompute a contribution.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from sys import intern
from typing import Final, NamedTuple

# RateKey.measure
DENOMINATOR: Final = "den"
NUMERATOR: Final = "num"
# PeopleKey.role, for DS 4.1 (rule 8)
NAMED: Final = "named"  # in-scope stays of the month naming this equipped correspondent
SENT: Final = "sent"  # qualifying MSS Pro messages to the correspondent sent in the month
SENT_IN_GRACE: Final = "tail"  # ... sent after the month's end, within grace
# MSS Pro messages to the correspondent none of whose attachments qualifies (units' reasons)
OTHER_SENT: Final = "other"  # sent in the month
OTHER_IN_GRACE: Final = "othertail"  # sent after the month's end, within grace


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

# A NamedTuple's constructor is generated Python, interpreted even in the compiled build (~1k
# instructions a key): the rules make their keys with tuple.__new__, in C. The same keys.
_new: Final = tuple.__new__


def people_key(role: str, month: str, rpps: str) -> PeopleKey:
    key: PeopleKey = _new(PeopleKey, (role, month, rpps))
    return key


def unit_key(indicator: str, month: str, reason: str, deadline: str) -> UnitKey:
    key: UnitKey = _new(UnitKey, (indicator, month, reason, deadline))
    return key


Contribution = dict[AggregateKey, int]


class DayCounts:
    """Counts by ISO day, as they move: the total of the positive ones and the latest day
    with a positive count are kept up to date, so reading them costs nothing. The latest
    day is searched again only when its own count falls to 0 or below."""

    __slots__ = ("_latest", "_stale", "counts", "total")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}  # day → count (never 0)
        self.total = 0  # of the positive counts
        self._latest: str | None = None
        self._stale = False

    def add(self, day: str, delta: int) -> None:
        counts = self.counts
        old = counts.get(day, 0)
        new = old + delta
        if new:
            # Days repeat across keys and establishments: one string per day.
            counts[day if old else intern(day)] = new
        else:
            counts.pop(day, None)
        if new > 0:
            self.total += new - old if old > 0 else new
            if not self._stale and day > (self._latest or ""):
                self._latest = day
        elif old > 0:
            self.total -= old
            if day == self._latest:
                self._stale = True

    def latest(self) -> str | None:
        if self._stale:
            self._latest = max((d for d, v in self.counts.items() if v > 0), default=None)
            self._stale = False
        return self._latest

    def positive(self) -> Iterator[tuple[str, int]]:
        return ((day, value) for day, value in self.counts.items() if value > 0)

    def copy(self) -> DayCounts:
        other = DayCounts()
        other.counts = dict(self.counts)
        other.total, other._latest, other._stale = self.total, self._latest, self._stale
        return other


class Aggregates:
    """Totals of one establishment: what its figures are read from. Held by kind, each
    reader reading only its own: rates, people by role → month → RPPS, uncounted units by
    (indicator, month) → reason → deadline, discharge and event days. `add` keeps every
    nonzero total (a reader sees the positive ones), exactly as one flat sum would
    (`totals`)."""

    __slots__ = ("_discharges", "_events", "_people", "_rates", "_uncounted")

    def __init__(self) -> None:
        self._rates: dict[RateKey, int] = {}
        self._people: dict[str, dict[str, dict[str, int]]] = {}  # role → month → RPPS → count
        self._uncounted: dict[tuple[str, str], dict[str, DayCounts]] = {}
        self._discharges = DayCounts()
        self._events = DayCounts()

    def add(self, contribution: Contribution, sign: int = 1) -> None:
        # On the apply path: inlined. A group emptied is kept (bounded by indicators ×
        # months × reasons, roles × months): taking it out and back costs more.
        rates = self._rates
        for key, value in contribution.items():
            delta = sign * value
            kind = type(key)  # the day keys (one or two a unit) by identity: no isinstance
            if kind is EventDay:
                self._events.add(key[0], delta)
            elif kind is DischargeDay:
                self._discharges.add(key[0], delta)
            elif isinstance(key, RateKey):
                held = rates.get(key)
                if held is None:
                    if not delta:
                        continue
                    measure, indicator, month = key
                    rates[RateKey(intern(measure), intern(indicator), intern(month))] = delta
                elif held + delta:
                    rates[key] = held + delta
                else:
                    del rates[key]
            elif isinstance(key, UnitKey):
                indicator, month, reason, deadline = key
                reasons = self._uncounted.get((indicator, month))
                if reasons is None:
                    reasons = self._uncounted[(intern(indicator), intern(month))] = {}
                days = reasons.get(reason)
                if days is None:
                    days = reasons[intern(reason)] = DayCounts()
                days.add(deadline, delta)
            elif isinstance(key, EventDay):
                self._events.add(key[0], delta)
            elif isinstance(key, DischargeDay):
                self._discharges.add(key[0], delta)
            elif isinstance(key, PeopleKey):
                role, month, rpps = key
                months = self._people.get(role)
                if months is None:
                    months = self._people[intern(role)] = {}
                people = months.get(month)
                if people is None:
                    people = months[intern(month)] = {}
                old = people.get(rpps)
                if old is None:
                    if delta:
                        people[intern(rpps)] = delta  # one string per correspondent
                elif old + delta:
                    people[rpps] = old + delta
                else:
                    del people[rpps]
            else:
                raise TypeError(f"not an aggregate key: {key!r}")

    def replace(self, old: Contribution, new: Contribution) -> None:
        """Take `old` out and put `new` in: only the keys whose count differs are moved
        (a unit's new contribution is mostly its old one)."""
        if not old or not new:
            if old:
                self.add(old, -1)
            if new:
                self.add(new)
            return
        moved: Contribution = {}
        for key, value in new.items():
            delta = value - old.get(key, 0)
            if delta:
                moved[key] = delta
        for key, value in old.items():
            if key not in new:
                moved[key] = -value
        if moved:
            self.add(moved)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def copy(self) -> Aggregates:
        other = Aggregates()
        other._rates = dict(self._rates)
        other._people = {
            role: {month: dict(people) for month, people in months.items()}
            for role, months in self._people.items()
        }
        other._uncounted = {
            group: {reason: days.copy() for reason, days in reasons.items()}
            for group, reasons in self._uncounted.items()
        }
        other._discharges, other._events = self._discharges.copy(), self._events.copy()
        return other

    @property
    def totals(self) -> dict[AggregateKey, int]:
        """Every nonzero total under its key, as one flat sum of the contributions would
        hold them (built on each call: for comparing aggregates, not for reading figures)."""
        totals: dict[AggregateKey, int] = {key: value for key, value in self._rates.items()}
        for role, months in self._people.items():
            for month, people in months.items():
                for rpps, value in people.items():
                    totals[PeopleKey(role, month, rpps)] = value
        for (indicator, month), reasons in self._uncounted.items():
            for reason, days in reasons.items():
                for day, value in days.counts.items():
                    totals[UnitKey(indicator, month, reason, day)] = value
        for day, value in self._discharges.counts.items():
            totals[DischargeDay(day)] = value
        for day, value in self._events.counts.items():
            totals[EventDay(day)] = value
        return totals

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Aggregates):
            return NotImplemented
        return self.totals == other.totals

    __hash__ = None  # type: ignore[assignment]

    def rates(self) -> Iterator[tuple[RateKey, int]]:
        for key, value in self._rates.items():
            if value > 0:
                yield key, value

    def people_by_month(self, role: str) -> dict[str, set[str]]:
        """Month → the RPPS of every correspondent with that role (a month with none is
        left out)."""
        out: dict[str, set[str]] = {}
        for month, people in self._people.get(role, {}).items():
            present = _present(people)
            if present:
                out[month] = present
        return out

    def people_of(self, role: str, month: str) -> set[str]:
        """The RPPS of the correspondents with that role in one month."""
        people = self._people.get(role, {}).get(month)
        return _present(people) if people else set()

    def people_months(self, role: str) -> list[str]:
        """The months that held a correspondent with that role (some may hold none now)."""
        return list(self._people.get(role, {}))

    def latest_discharge_day(self) -> str | None:
        return self._discharges.latest()

    def latest_event_day(self) -> str | None:
        return self._events.latest()

    def uncounted_of(self, indicator: str, month: str) -> dict[str, DayCounts]:
        """Reason → deadlines of a month's uncounted units of an indicator (read only)."""
        return self._uncounted.get((indicator, month), {})

    def uncounted(self, months: Container[str] | None = None) -> Iterator[tuple[UnitKey, int]]:
        """Every uncounted unit's key and count; of `months` only when given."""
        for (indicator, month), reasons in self._uncounted.items():
            if months is not None and month not in months:
                continue
            for reason, days in reasons.items():
                for day, value in days.positive():
                    yield UnitKey(indicator, month, reason, day), value


def _present(people: dict[str, int]) -> set[str]:
    """The RPPS counted above 0: mostly all of them, which `set()` copies at C speed."""
    if min(people.values(), default=1) > 0:
        return set(people)
    return {rpps for rpps, value in people.items() if value > 0}


def total_of(contributions: Iterable[Contribution]) -> Aggregates:
    aggregates = Aggregates()
    for contribution in contributions:
        aggregates.add(contribution)
    return aggregates
