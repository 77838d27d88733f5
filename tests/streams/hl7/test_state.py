"""The converter's state leaves with the horizon: entries not written for retention_days
(on the converter's clock, the time messages are received) are purged, once a day of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from processors.store import KeyValueStore, MemoryStore
from streams.hl7.conversion import Hl7Converter
from streams.hl7.mapping import load_mapping
from streams.hl7.state import purge
from streams.hl7.state_store import RocksStore
from tests.streams.hl7.test_conversion import fixture

RETENTION = 400
THEN = datetime(2026, 1, 10, 17, tzinfo=UTC)
LATER = THEN + timedelta(days=RETENTION + 1)


def converter(store: KeyValueStore) -> Hl7Converter:
    return Hl7Converter(load_mapping(), store, retention_days=RETENTION)


def state_keys(store: MemoryStore) -> set[bytes]:
    return {k for k in store.data if k.split(b"\x1f")[1] in (b"stay", b"ins", b"msg")}


def test_an_admission_past_the_horizon_is_purged_and_its_discharge_refused() -> None:
    store = MemoryStore()
    convert = converter(store).convert
    assert convert(fixture("01"), THEN).ack_code == "AA"  # the admission: state only
    assert convert(fixture("03"), THEN).ack_code == "AA"  # a letter: INS → IPP, the message
    assert state_keys(store)
    kept = MemoryStore()
    kept.data = dict(store.data)
    # the discharge, received the day after the horizon: nothing is left to take from
    late = converter(store).convert(fixture("02"), LATER)
    assert late.ack_code != "AA" and not late.events
    assert not state_keys(store)
    assert set(store.data) == {b"hl7\x1fmeta\x1fdated"}  # the days went with their entries
    # within the horizon, the same discharge takes what the admission said
    (stay,) = converter(kept).convert(fixture("02"), LATER - timedelta(days=2)).events
    assert stay["admitted_at"] == "2026-01-05T08:00:00+01:00"


def test_an_entry_written_again_is_dated_again() -> None:
    store = MemoryStore()
    convert = converter(store).convert
    convert(fixture("01"), THEN)
    convert(fixture("01"), THEN + timedelta(days=300))  # the admission updated
    counts = purge(store, LATER, RETENTION)
    assert "admission" not in counts
    (stay,) = converter(store).convert(fixture("02"), LATER).events
    assert stay["admitted_at"] == "2026-01-05T08:00:00+01:00"
    assert purge(store, THEN + timedelta(days=300 + RETENTION + 1), RETENTION)["admission"] == 1


def test_entries_of_a_store_without_days_count_from_the_first_purge() -> None:
    store = MemoryStore()
    undated = MemoryStore()
    converter(store).convert(fixture("01"), THEN)
    undated.data = {k: v for k, v in store.data.items() if k.split(b"\x1f")[1] == b"stay"}
    assert not purge(undated, LATER, RETENTION)  # dated today: kept
    assert purge(undated, LATER + timedelta(days=RETENTION + 1), RETENTION)["admission"] == 1


def test_the_purge_on_disk(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "state")
    try:
        convert = converter(store).convert
        convert(fixture("01"), THEN)
        convert(fixture("03"), THEN)
        counts = purge(store, LATER, RETENTION)
        assert counts["admission"] == 1 and counts["message"] == 1
        assert list(store.items(b"hl7\x1fstay")) == []
        assert list(store.items(b"hl7\x1fby-day")) == []
    finally:
        store.close()


def test_a_purge_is_counted_by_kind_in_the_listener_metrics() -> None:
    from streams.hl7.metrics import ListenerMetrics

    store = MemoryStore()
    metrics = ListenerMetrics()
    convert = Hl7Converter(load_mapping(), store, RETENTION, metrics.state_purged).convert
    convert(fixture("01"), THEN)
    convert(fixture("03"), THEN)
    assert b"sunes_hl7_state_purged_total{" not in metrics.render()  # nothing purged yet
    convert(fixture("02"), LATER)  # the first message past the horizon purges first
    text = metrics.render().decode()
    counted = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("sunes_hl7_state_purged_total{")
    }
    assert counted.keys() >= {"admission", "ins_to_ipp"}
    assert all(count >= 1 for count in counted.values())
