"""Period attribution: Europe/Paris calendar dates, months and grace limits (rule 1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final
from zoneinfo import ZoneInfo

PARIS: Final = ZoneInfo("Europe/Paris")


def paris_date(moment: datetime) -> date:
    """The calendar date in Europe/Paris of an offset-aware timestamp.

    Read from a table rather than `moment.astimezone(PARIS).date()` (~4k instructions
    compiled, a few per event): the moment's UTC day and hour, from its fields and its fixed
    offset (whole hours: the contract's are), and the UTC hour at which that day's Paris
    date turns (zoneinfo's, kept per day). Any other moment, or a day with a transition,
    is converted. The same day for every instant (tests/processors/test_periods.py:
    against zoneinfo, over every DST transition)."""
    zone = moment.tzinfo
    if type(zone) is timezone:  # else naive, or a zone whose offset varies: converted
        shift = _ZONE_HOURS.get(zone)
        if shift is None:
            shift = _zone_hours(zone)
        if shift != _UNEVEN:
            hour = moment.hour - shift  # of the UTC day, maybe out of 0-23
            index = _days(moment.year, moment.month, moment.day) + hour // 24 - _FIRST_DAY
            if 0 <= index < _TABLE_DAYS:
                turn = _TURNS[index]
                if turn == _UNKNOWN:
                    turn = _turn(index)
                if turn != _VARIES:
                    return _date(index + 1 if hour % 24 >= turn else index)
    return moment.astimezone(PARIS).date()


def _days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    if month <= 2:
        year -= 1
    era = year // 400
    of_era = year - era * 400
    of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    return era * 146_097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719_468


_UNEVEN: Final = 1 << 40  # an offset not of whole hours: converted
_ZONE_HOURS: Final[dict[timezone, int]] = {}  # a fixed offset → its hours, or _UNEVEN
# The table's UTC days, 1990-2069 (~30k; a moment outside is converted): for each, the UTC
# hour from which Paris has the next date, found on the day's first use; and the dates.
_TABLE_START: Final = date(1990, 1, 1)
_FIRST_DAY: Final = _TABLE_START.toordinal() - date(1970, 1, 1).toordinal()
_TABLE_DAYS: Final = date(2070, 1, 1).toordinal() - _TABLE_START.toordinal()
_UNKNOWN: Final = -1
_VARIES: Final = 99  # Paris's offset changes that day (a DST transition): converted
_TURNS: Final[list[int]] = [_UNKNOWN] * _TABLE_DAYS
_DATES: Final[list[date | None]] = [None] * (_TABLE_DAYS + 1)


def _zone_hours(zone: timezone) -> int:
    offset = zone.utcoffset(None)
    seconds = offset.days * 86_400 + offset.seconds
    hours = _UNEVEN if seconds % 3600 or offset.microseconds else seconds // 3600
    _ZONE_HOURS[zone] = hours
    return hours


def _turn(index: int) -> int:
    """The UTC hour of the table's day `index` from which Paris has the next date: with one
    offset of whole hours all day (zoneinfo's), the Paris time is the UTC time plus it."""
    start = datetime.combine(_date(index), time(0), UTC)
    first = start.astimezone(PARIS).utcoffset()
    last = (start + _DAY_END).astimezone(PARIS).utcoffset()
    turn = _VARIES
    if (
        first is not None
        and first == last
        and not (first.days or first.seconds % 3600 or first.microseconds)
    ):
        turn = 24 - first.seconds // 3600  # 24: never (an offset of 0)
    _TURNS[index] = turn
    return turn


def _date(index: int) -> date:
    found = _DATES[index]
    if found is None:
        found = _DATES[index] = _TABLE_START + timedelta(days=index)
    return found


_DAY_END: Final = timedelta(days=1, microseconds=-1)


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
