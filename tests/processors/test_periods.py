"""Paris days: paris_date's arithmetic gives zoneinfo's day for every instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from hypothesis import given
from hypothesis import strategies as st

from processors.periods import PARIS, paris_date


def _zoneinfo_day(moment: datetime) -> date:
    return moment.astimezone(PARIS).date()


def _transition_days(first_year: int, last_year: int) -> list[date]:
    """The UTC days in which Paris's offset changes, found from zoneinfo alone."""
    days = []
    day = datetime(first_year, 1, 1, tzinfo=UTC)
    offset = day.astimezone(PARIS).utcoffset()
    while day.year <= last_year:
        following = day + timedelta(days=1)
        next_offset = following.astimezone(PARIS).utcoffset()
        if next_offset != offset:
            days.append(day.date())
        day, offset = following, next_offset
    return days


def test_every_minute_of_every_transition_day_since_1890() -> None:
    """Each minute's first and last microsecond, in UTC and at +01:00, on every UTC day in
    which Paris's offset changes (1890-2040: the end of Paris Mean Time, war time, double
    summer time, the EU rules)."""
    days = _transition_days(1890, 2040)
    assert len(days) > 180  # Paris Mean Time ended (1911), summer times since 1916
    plus_one = timezone(timedelta(hours=1))
    for day in days:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=3)
        for minute in range(30 * 60):
            moment = start + timedelta(minutes=minute)
            for instant in (moment, moment - timedelta(microseconds=1)):
                assert paris_date(instant) == _zoneinfo_day(instant), instant
            shifted = moment.astimezone(plus_one)
            assert paris_date(shifted) == _zoneinfo_day(shifted), shifted


def test_every_hour_of_seven_years_at_the_contracts_offsets() -> None:
    """The first and last microsecond of every UTC hour of 2020-2026, written at +01:00,
    +02:00 and Z: each day's table entry, either side of the hour Paris's date turns."""
    zones = [timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), UTC]
    hour = datetime(2020, 1, 1, tzinfo=UTC)
    while hour.year < 2027:
        for instant in (hour, hour + timedelta(hours=1, microseconds=-1)):
            expected = _zoneinfo_day(instant)
            for zone in zones:
                assert paris_date(instant.astimezone(zone)) == expected, instant
        hour += timedelta(hours=1)


_OFFSETS = st.builds(
    lambda seconds: timezone(timedelta(seconds=seconds)),
    st.integers(-(24 * 3600) + 1, 24 * 3600 - 1),  # any offset a timezone takes
)


@given(
    moment=st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1)),
    zone=st.one_of(_OFFSETS, st.just(PARIS), st.just(UTC)),
)
def test_any_aware_moment_has_zoneinfos_paris_day(moment: datetime, zone: tzinfo) -> None:
    """Any offset (seconds included), any year from before Paris Mean Time (an offset of
    9 min 21 s: astimezone's own path) to well after the last transition known."""
    aware = moment.replace(tzinfo=zone)
    assert paris_date(aware) == _zoneinfo_day(aware)


def test_a_naive_moment_reads_as_astimezone_reads_it() -> None:
    """Naive: the system's local time, as astimezone takes it (no arithmetic of ours)."""
    moment = datetime(2024, 3, 31, 1, 30)
    assert paris_date(moment) == _zoneinfo_day(moment)


def test_datetimes_limits_fail_as_astimezone_fails() -> None:
    late = datetime(9999, 12, 31, 23, 30, tzinfo=UTC)
    try:
        expected: object = _zoneinfo_day(late)
    except (OverflowError, ValueError) as error:
        expected = type(error)
    try:
        found: object = paris_date(late)
    except (OverflowError, ValueError) as error:
        found = type(error)
    assert found == expected
