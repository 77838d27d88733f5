"""Retention: which events are too old, or too far in the future, to be counted.

The clock is the time an event was received — its Kafka record timestamp in the worker, the
time of the run for `sunes report` — never a date inside an event, so no wild timestamp can
move it. An event with any timestamp older than `retention_days` before that clock is
refused as `too_late` (nothing that old is kept for it to join); one with a timestamp more
than `future_skew_hours` after it is refused as `future_timestamp`. Both go to the
dead-letter topic with a reason that names the field, the period and the limit.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import get_args, get_type_hints

from processors.periods import month_key, paris_date
from processors.settings import Settings
from topics.records import Event
from topics.validation import FUTURE_TIMESTAMP, TOO_LATE, InvalidRecord


def timestamps_of(event: Event) -> list[tuple[str, datetime]]:
    """(field, value) of every timestamp the event carries."""
    return [
        (name, value)
        for name in _field_names(type(event))
        if isinstance(value := getattr(event, name), datetime)
    ]


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    """The fields of a record class that may hold a timestamp (typed datetime, or an
    optional one), read once: dataclasses.fields builds its tuple on every call."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        hints = get_type_hints(kind)
        names = _FIELD_NAMES[kind] = tuple(
            f.name
            for f in dataclasses.fields(kind)
            if hints[f.name] is datetime or datetime in get_args(hints[f.name])
        )
    return names


@functools.cache
def _margins(future_skew_hours: int, retention_days: int) -> tuple[timedelta, timedelta]:
    return timedelta(hours=future_skew_hours), timedelta(days=retention_days)


def within_bounds(values: Sequence[datetime], received: datetime, settings: Settings) -> bool:
    """Whether an event with these timestamps (`timestamps_of`'s values), received at
    `received`, is in the retention's bounds: exactly when `time_bounds_error` gives None."""
    ahead, kept = _margins(settings.future_skew_hours, settings.retention_days)
    return min(values) >= received - kept and max(values) <= received + ahead


class Bounds:
    """`within_bounds` for one reception time, its bounds computed once (the worker's ingest
    asks it of every event of a poll, most received at a few distinct times), for aware
    datetimes (timestamps with their offsets, as `topics.validation` gives them).

    An aware datetime's comparison with one of another offset calls both offsets' methods
    and subtracts; its `timestamp()` builds a timedelta. Its local date's ordinal is a plain
    read: an offset is under 24 h, so a timestamp whose local date is two days or more inside
    the bounds' UTC dates is inside the bounds (an event received days after it happened:
    a replay, a catch-up). Otherwise (a live event, hours old: the upper bound is 24 h after
    its reception) its `timestamp()`: the exact microseconds since the epoch divided by 10**6,
    correctly rounded, so it never decreases as the time grows, and a strict inequality
    between two such floats proves the same between their datetimes. Only when the floats
    do not prove it (equal, or out) are the datetimes compared."""

    __slots__ = ("earliest", "earliest_s", "first_day", "last_day", "latest", "latest_s")

    def __init__(self, received: datetime, settings: Settings) -> None:
        ahead, kept = _margins(settings.future_skew_hours, settings.retention_days)
        self.earliest = received - kept
        self.latest = received + ahead
        self.earliest_s = self.earliest.timestamp()
        self.latest_s = self.latest.timestamp()
        # local dates strictly between these are inside (the UTC instant of a local date d is
        # after midnight of d - 1 and before midnight of d + 2)
        self.first_day = self.earliest.astimezone(UTC).toordinal() + 1
        self.last_day = self.latest.astimezone(UTC).toordinal() - 1

    def admit(self, values: Sequence[datetime]) -> bool:
        """`within_bounds(values, received, settings)`, exactly."""
        first, last = self.first_day, self.last_day
        for value in values:
            if not first < value.toordinal() < last:
                return self._near(values)
        return bool(values) or min(values) >= self.earliest  # none: raises as within_bounds

    def _near(self, values: Sequence[datetime]) -> bool:
        earliest, latest = self.earliest_s, self.latest_s
        for value in values:
            if not earliest < value.timestamp() < latest:
                return min(values) >= self.earliest and max(values) <= self.latest
        return True


def time_bounds_error(event: Event, received: datetime, settings: Settings) -> InvalidRecord | None:
    """Why this event, received at `received`, must not be counted; None when it may."""
    # the values alone first: the worker asks this of every event, nearly all in bounds
    values = [
        value
        for name in _field_names(type(event))
        if isinstance(value := getattr(event, name), datetime)
    ]
    if within_bounds(values, received, settings):
        return None
    stamps = timestamps_of(event)
    latest, earliest = max(values), min(values)
    ahead, kept = _margins(settings.future_skew_hours, settings.retention_days)
    horizon = received - kept
    if latest > received + ahead:
        latest_field = next(name for name, value in stamps if value == latest)
        gap = latest - received
        return InvalidRecord(
            FUTURE_TIMESTAMP,
            f"field '{latest_field}': {latest.isoformat()} is {_duration(gap)} after the event "
            f"was received ({received.isoformat()}); at most {settings.future_skew_hours} h "
            "ahead is accepted: check the producer's clock or the date typed",
        )
    if earliest < horizon:
        earliest_field = next(name for name, value in stamps if value == earliest)
        return InvalidRecord(
            TOO_LATE,
            f"field '{earliest_field}': {earliest.isoformat()} (period "
            f"{_month_of(earliest)}) is before the retention horizon "
            f"{paris_date(horizon).isoformat()} ({settings.retention_days} days before the event "
            "was received): its period is no longer kept, the event is not counted",
        )
    return None


def _month_of(moment: datetime) -> str:
    try:
        return month_key(paris_date(moment))
    except OverflowError:  # year 1 east of Paris: no Paris date exists
        return month_key(moment.date())


def _duration(gap: timedelta) -> str:
    if gap >= timedelta(days=2):
        return f"{gap.days} days"
    return f"{gap.total_seconds() / 3600:.1f} h"
