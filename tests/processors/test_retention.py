"""Retention: nothing a later event may need leaves the state; too-old and future events are
refused with a reason, judged against the time they were received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.collection import Establishments
from processors.report import checked_record, read_ndjson
from processors.retention import Bounds, time_bounds_error, within_bounds
from processors.settings import Settings
from processors.store import MemoryStore
from tests.builders import F1, cancelled, deposited, discharged, establishment, parse
from topics.records import Event
from topics.validation import FUTURE_TIMESTAMP, TOO_LATE, InvalidRecord

RECEIVED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LETTER = "11490-0"


def event(obj: dict[str, Any]) -> Event:
    record = parse(obj)
    assert isinstance(record, Event)
    return record


def error_of(obj: dict[str, Any], **settings: Any) -> InvalidRecord | None:
    return time_bounds_error(event(obj), RECEIVED, Settings(**settings))


def test_events_within_the_horizon_and_the_skew_are_accepted() -> None:
    assert error_of(discharged("S1")) is None  # 2023: within ten years of 2026-12-01
    tomorrow = "2026-12-02T08:00:00+01:00"  # 23 h after it was received
    assert error_of(discharged("S1", admitted=tomorrow, discharged=tomorrow)) is None


def test_an_event_older_than_the_horizon_is_too_late_naming_field_period_and_horizon() -> None:
    old = discharged("S1", admitted="2016-11-20T08:00:00+01:00",
                     discharged="2016-11-30T10:00:00+01:00")  # fmt: skip
    error = error_of(old)
    assert error is not None and error.code == TOO_LATE
    assert "field 'admitted_at'" in error.reason
    assert "period 2016-11" in error.reason
    assert "horizon 2016-11-30" in error.reason and "3653 days" in error.reason
    assert error_of(old, retention_days=4000) is None  # a setting


def test_a_future_timestamp_is_refused_naming_the_field_and_the_gap() -> None:
    typo = discharged("S1", discharged="2031-01-12T10:00:00+01:00", occurred=RECEIVED.isoformat())
    error = error_of(typo)
    assert error is not None and error.code == FUTURE_TIMESTAMP
    assert "field 'discharged_at'" in error.reason
    assert "1503 days after the event was received" in error.reason
    late_evening = "2026-12-02T12:00:00+01:00"  # 26 h ahead
    assert error_of(discharged("S1", discharged=late_evening), future_skew_hours=24) is not None
    assert error_of(discharged("S1", discharged=late_evening), future_skew_hours=48) is None


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00-05:00", "1989-12-31T23:59:59Z"]
)
def test_ancient_dates_are_too_late_without_an_exception(moment: str) -> None:
    error = error_of(deposited("D1", LETTER, produced=moment, deposited_at=moment))
    assert error is not None and error.code == TOO_LATE


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59+14:00"])
def test_far_future_dates_are_refused_without_an_exception(moment: str) -> None:
    error = error_of(discharged("S1", discharged=moment))
    assert error is not None and error.code == FUTURE_TIMESTAMP


def test_the_report_refuses_them_as_invalid_lines(tmp_path: Path) -> None:
    lines = [
        establishment(),
        discharged("S1"),
        discharged("S2", discharged="2031-01-12T10:00:00+01:00"),
    ]
    path = tmp_path / "feed.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(o) for o in lines))
    items = [item for _, item in read_ndjson(path, Settings(), RECEIVED)]
    assert [getattr(i, "code", "ok") for i in items] == ["ok", "ok", FUTURE_TIMESTAMP]
    with pytest.raises(InvalidRecord):
        checked_record(orjson.dumps(lines[2]), RECEIVED, Settings())


def test_a_cancelled_stay_stays_cancelled_when_its_older_discharge_arrives_two_years_later() -> (
    None
):
    collection = Establishments(Settings(), MemoryStore(), cache_entries=0)
    collection.apply(parse(establishment()))
    collection.apply(parse(discharged("S1", occurred="2023-01-12T10:00:00+01:00")))
    collection.apply(parse(cancelled("S1", occurred="2023-01-13T10:00:00+01:00")))
    collection.flush()
    # Two years of other stays later (nothing leaves the state), an older version is re-sent.
    for day in range(1, 28):
        collection.apply(parse(discharged(f"X{day}", patient=f"Q{day}",
                                          admitted=f"2025-01-{day:02d}T08:00:00+01:00",
                                          discharged=f"2025-01-{day:02d}T10:00:00+01:00")))  # fmt: skip
    collection.flush()
    collection.apply(parse(discharged("S1", occurred="2023-01-12T09:00:00+01:00")))
    rows = {(r.indicator, r.period): r.denominator for r in collection.rows()}
    assert ("DS1.1", "2023-01") not in rows


def test_a_returning_patient_stay_arriving_before_the_earlier_stay_counts_in_ds14() -> None:
    later = discharged("NEW", patient="P1")  # 2023-01-10 → 12
    history = deposited("H", LETTER, patient="P1", stay_id="OLD",
                        produced="2022-11-02T09:00:00+01:00", deposited_at="2023-01-11T09:00:00+01:00")  # fmt: skip
    earlier = discharged("OLD", patient="P1", admitted="2022-11-01T08:00:00+01:00",
                         discharged="2022-11-03T10:00:00+01:00")  # fmt: skip
    collection = Establishments(Settings(), MemoryStore(), cache_entries=0)
    for obj in (establishment(), later, history):
        collection.apply(parse(obj))
        collection.flush()
    rows = {(r.indicator, r.period): (r.numerator, r.denominator) for r in collection.rows()}
    assert ("DS1.4", "2023-01") not in rows  # not yet known to be a returning patient
    collection.apply(parse(earlier))
    rows = {(r.indicator, r.period): (r.numerator, r.denominator) for r in collection.rows()}
    assert rows[("DS1.4", "2023-01")] == (1, 1)
    assert rows[("DS1.4", "F2")] == (1, 1)


def test_the_cache_stays_within_its_capacity_and_the_store_holds_the_rest() -> None:
    store = MemoryStore()
    collection = Establishments(Settings(), store, cache_entries=50)
    collection.apply(parse(establishment()))
    for n in range(200):
        collection.apply(parse(discharged(f"S{n}", patient=f"P{n}")))
        collection.flush()
        assert len(collection.cache.entries) <= 50
    stays = [k for k in store.data if k.startswith(f"{F1}|s|".encode())]
    assert len(stays) == 200
    rows = {(r.indicator, r.period): r.denominator for r in collection.rows()}
    assert rows[("DS1.1", "2023-01")] == 200


def test_recover_reads_the_aggregates_from_stored_contributions_only() -> None:
    store = MemoryStore()
    first = Establishments(Settings(), store, cache_entries=0)
    for obj in (establishment(), discharged("S1"), deposited("D1", LETTER, stay_id="S1")):
        first.apply(parse(obj))
    first.flush()
    facts = {k: v for k, v in store.data.items() if b"|u" not in k and b"|m|" not in k}
    for key in facts:  # break every fact: recover must not read them
        store.data[key] = b"not json"
    second = Establishments(Settings(), store, cache_entries=0)
    second.apply(parse(establishment()))
    assert second.recover() > 0
    assert [r.as_json() for r in second.rows()] == [r.as_json() for r in first.rows()]


OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
           timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(minutes=-1))]  # fmt: skip


@st.composite
def near_bounds(draw: st.DrawFn) -> tuple[list[datetime], datetime, Settings]:
    """Timestamps on, just inside and just outside the bounds (to the microsecond, in any
    offset), and anywhere in 0001–9999; received at any Kafka timestamp (milliseconds, as
    the ingest reads it) since 1970."""
    millis = draw(st.integers(1, 4_102_444_800_000))
    received = datetime.fromtimestamp(millis / 1000, UTC)
    settings = Settings(
        retention_days=draw(st.sampled_from([400, 3653, 100_000])),
        future_skew_hours=draw(st.sampled_from([0, 1, 24])),
    )
    earliest = received - timedelta(days=settings.retention_days)
    latest = received + timedelta(hours=settings.future_skew_hours)
    anywhere = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))
    values = []
    for _ in range(draw(st.integers(1, 4))):
        edge = draw(st.sampled_from([earliest, latest, None]))
        if edge is None:
            moment = draw(anywhere).replace(tzinfo=UTC)
        else:
            moment = edge + timedelta(
                days=draw(st.sampled_from([0, 0, -3, -2, -1, 1, 2, 3])),
                hours=draw(st.sampled_from([0, 0, -13, -1, 1, 13])),
                microseconds=draw(st.integers(-3, 3)),
            )
        values.append(moment.astimezone(draw(st.sampled_from(OFFSETS))))
    return values, received, settings


@given(near_bounds())
def test_bounds_admit_exactly_what_within_bounds_admits(
    case: tuple[list[datetime], datetime, Settings],
) -> None:
    """The ingest's per-poll bounds (epoch floats, then datetimes when the floats cannot
    tell) against the datetime comparison they replace."""
    values, received, settings = case
    assert Bounds(received, settings).admit(values) == within_bounds(values, received, settings)
