"""Period attribution: Europe/Paris calendar dates, months and grace limits (rule 1)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

PARIS: Final = ZoneInfo("Europe/Paris")


def paris_date(moment: datetime) -> date:
    """The calendar date in Europe/Paris of an offset-aware timestamp."""
    return moment.astimezone(PARIS).date()


def paris_midnight(day: date) -> datetime:
    """The first instant of a Paris calendar day: `moment < paris_midnight(d)` is
    `paris_date(moment) < d`, without converting every moment."""
    return datetime.combine(day, time(0), tzinfo=PARIS)


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(key: str) -> tuple[date, date]:
    """First and last day of a month period "YYYY-MM"."""
    year, month = int(key[:4]), int(key[5:7])
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def previous_month(key: str) -> str:
    first, _ = month_bounds(key)
    return month_key(first - timedelta(days=1))


def within_grace(sent: date, reference: date, grace_days: int) -> bool:
    """True when `sent` is no later than `reference` + grace (calendar days)."""
    return sent <= reference + timedelta(days=grace_days)
