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
from datetime import datetime, timedelta
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
            if datetime in (hints[f.name], *get_args(hints[f.name]))
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
