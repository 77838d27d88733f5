"""Purge: facts past the horizon leave the store, the figures stay, later events change them
as if nothing had been purged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from processors import purge as purge_module
from processors import state as kinds
from processors.collection import Establishments
from processors.purge import purge_cutoff, refusal_horizon, refused_after_purge
from processors.retention import time_bounds_error
from processors.settings import Settings
from processors.state import parse_store_key
from processors.store import Change, MemoryStore
from tests.builders import (
    F1,
    F2,
    cancelled,
    deleted,
    deposited,
    discharged,
    establishment,
    mss_sent,
    parse,
)
from tests.processors.test_properties import event as any_event
from topics.records import Event
from topics.validation import TOO_LATE

# A small horizon: 500 days refused, + 100 + 30 + 32 days of margin before a fact is purged.
SETTINGS = Settings(retention_days=500, lookback_days=100, grace_days=30)
CLOCK = datetime(2023, 6, 1, tzinfo=UTC)  # H = 2022-01-17, cutoff = 2021-08-08
REGISTRY = [establishment(F1, window="F1"), establishment(F2, window="F2", has_lab=False)]
PRO = [{"document_id": "x", "type_code": "11490-0", "cda_level": 1, "ins_status": "qualifiee"}]


def ts(day: str, hour: int = 10) -> str:
    return f"{day}T{hour:02d}:30:00+01:00"


def event_of(obj: dict[str, Any]) -> Event:
    record = parse(obj)
    assert isinstance(record, Event)
    return record


def run(objects: list[dict[str, Any]], store: MemoryStore | None = None) -> Establishments:
    collection = Establishments(SETTINGS, store if store is not None else MemoryStore())
    for obj in REGISTRY + objects:
        collection.apply(parse(obj))
    collection.flush()
    return collection


def figures(collection: Establishments) -> Any:
    return (
        sorted(collection.rows(), key=repr),
        sorted(collection.unit_counts(), key=repr),
        {est.finess: (est.now, est.watermark) for est in collection.all() if est.now},
    )


def kinds_of(store: MemoryStore) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for key in store.data:
        _, kind, ident = parse_store_key(key)
        found.setdefault(kind, set()).add(ident)
    return found


def test_the_cutoff_is_the_refusal_horizon_less_lookback_grace_and_a_month() -> None:
    assert refusal_horizon(CLOCK, SETTINGS) == CLOCK - timedelta(days=500)
    assert purge_cutoff(CLOCK, SETTINGS) == CLOCK - timedelta(days=500 + 100 + 30 + 32)


def test_old_facts_leave_the_store_and_the_figures_stay() -> None:
    old = [
        discharged("S-old", patient="P-old", admitted=ts("2021-02-01"), discharged=ts("2021-02-03"),
                   correspondents=[{"rpps": "R1", "mss_address": "r1@x.mssante.fr"}]),
        deposited("D-old", "11490-0", stay_id="S-old", patient="P-old",
                  produced=ts("2021-02-03"), deposited_at=ts("2021-02-04")),
        deposited("D-old2", "11490-0", stay_id="S-old", patient="P-old",
                  produced=ts("2021-02-05"), deposited_at=ts("2021-02-05"), replaces="D-old"),
        mss_sent("pro", "R1", sent=ts("2021-02-04"), attachments=PRO),
        mss_sent("citoyenne", "p@patient.mssante.fr", stay_id="S-old", sent=ts("2021-02-06")),
    ]  # fmt: skip
    recent = [
        discharged("S-new", patient="P-new", admitted=ts("2023-03-01"), discharged=ts("2023-03-03")),
        mss_sent("pro", "R1", sent=ts("2023-03-04"), attachments=PRO),
    ]  # fmt: skip
    store = MemoryStore()
    collection = run(old + recent, store)
    before = figures(collection)

    purged = collection.purge(F1, CLOCK)

    assert purged.done
    assert purged.counts["stay"] == 1 and purged.counts["document"] == 2
    assert purged.counts["message"] == 1 and "recipient" not in purged.counts
    stored = kinds_of(store)
    assert stored[kinds.STAY] == {"S-new"}
    assert kinds.DOCUMENT not in stored
    assert stored[kinds.STAY_UNIT] == {"S-new"}
    assert kinds.REPORT_UNIT not in stored
    assert kinds.DOCS_OF_STAY not in stored and kinds.REPLACED_BY not in stored
    assert stored[kinds.STAYS_OF_PATIENT] == {"P-new"}
    assert kinds.DOCS_OF_PATIENT not in stored
    assert stored[kinds.ARCHIVE] == {"2021-01", "2021-02"}  # a message in grace of January
    recipient = collection.get(F1).state.recipient("R1")
    assert recipient is not None and len(recipient.qualifying_messages) == 1
    # no patient, stay or document id in what is kept of purged periods
    archive = [v for k, v in store.data.items() if parse_store_key(k)[1] == kinds.ARCHIVE]
    assert not any(word in raw for raw in archive for word in (b"S-old", b"P-old", b"D-old"))

    assert figures(collection) == before
    restarted = Establishments(SETTINGS, store)
    restarted.recover()
    for obj in REGISTRY:
        restarted.apply(parse(obj))
    assert figures(restarted) == before
    assert restarted.purge_horizon(F1) == refusal_horizon(CLOCK, SETTINGS)
    restarted.get(F1).recompute()  # a full recomputation keeps the archived months
    assert figures(restarted) == before


def test_a_later_event_for_a_purged_stay_is_refused_too_late() -> None:
    collection = run([discharged("S-old", admitted=ts("2021-02-01"), discharged=ts("2021-02-03"))])
    collection.purge(F1, CLOCK)
    again = event_of(discharged("S-old", admitted=ts("2021-02-01"), discharged=ts("2021-02-04")))
    # at the ingest stage, received at the clock: too late
    assert time_bounds_error(again, CLOCK, SETTINGS) is not None
    # and at the establishment stage, whatever its record timestamp said
    horizon = collection.purge_horizon(F1)
    refusal = refused_after_purge(again, horizon)
    assert refusal is not None and refusal.code == TOO_LATE
    assert "2021-02" in refusal.reason and "S-old" not in refusal.reason
    recent = event_of(discharged("S-new", admitted=ts("2023-03-01"), discharged=ts("2023-03-03")))
    assert refused_after_purge(recent, horizon) is None


def test_a_group_with_one_recent_fact_is_kept_whole() -> None:
    """The patient's second stay is recent: the first one (DS 1.4 reads it) stays, and so do
    the documents of both."""
    events = [
        discharged("S1", patient="P", admitted=ts("2021-02-01"), discharged=ts("2021-02-03")),
        deposited("D1", "11490-0", stay_id="S1", patient="P",
                  produced=ts("2021-02-03"), deposited_at=ts("2021-02-04")),
        discharged("S2", patient="P", admitted=ts("2021-09-01"), discharged=ts("2021-09-03")),
        cancelled("S3", occurred=ts("2021-01-01")),  # a stub alone: purged
        deleted("D9", occurred=ts("2022-03-01")),  # a recent stub alone: kept
    ]  # fmt: skip
    store = MemoryStore()
    collection = run(events, store)
    before = figures(collection)
    purged = collection.purge(F1, CLOCK)
    assert purged.counts["stay"] == 1
    stored = kinds_of(store)
    assert stored[kinds.STAY] == {"S1", "S2"}
    assert stored[kinds.DOCUMENT] == {"D1", "D9"}
    assert figures(collection) == before


class RecordingStore:
    """A store that remembers its writes in order: the changelog of one partition. A
    MemoryStore wrapped, not subclassed: compiled with mypyc, it takes no interpreted subclass."""

    def __init__(self) -> None:
        self.memory = MemoryStore()
        self.data = self.memory.data
        self.log: list[tuple[bytes, bytes | None]] = []

    def get(self, key: bytes) -> bytes | None:
        return self.memory.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.memory.set(key, value)
        self.log.append((key, value))

    def delete(self, key: bytes) -> None:
        self.memory.delete(key)
        self.log.append((key, None))

    def write(self, changes: Sequence[Change]) -> None:
        self.memory.write(changes)
        self.log.extend(changes)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self.memory.items(prefix)


@pytest.mark.parametrize("part_bytes", [purge_module.JOURNAL_PART_BYTES, 300])
def test_a_crash_amid_a_purge_loses_nothing_and_the_purge_is_finished(
    part_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every prefix of a purge's writes (a crash, the changelog holding only that much): the
    recovered figures are those before the purge, and so are they once the next bundle of
    the establishment has finished the purge; then nothing of it is left half done. With
    small journal parts too (several per chunk)."""
    monkeypatch.setattr(purge_module, "JOURNAL_PART_BYTES", part_bytes)
    old = [
        discharged(f"S{i}", patient=f"P{i}", admitted=ts("2021-02-01"),
                   discharged=ts("2021-02-03"),
                   correspondents=[{"rpps": "R1", "mss_address": "r1@x.mssante.fr"}])
        for i in range(3)
    ] + [
        deposited("D1", "11490-0", stay_id="S1", patient="P1", produced=ts("2021-02-03"),
                  deposited_at=ts("2021-02-04")),
        mss_sent("pro", "R1", sent=ts("2021-02-04"), attachments=PRO),
        mss_sent("pro", "R1", sent=ts("2023-03-04"), attachments=PRO),
        discharged("S-new", patient="P0", admitted=ts("2023-03-01"), discharged=ts("2023-03-03")),
    ]  # fmt: skip
    store = RecordingStore()
    collection = run(old, store)
    before, stored = figures(collection), dict(store.data)
    store.log.clear()
    while not collection.purge(F1, CLOCK, limit=4).done:
        pass
    purged_store = dict(store.data)
    writes = list(store.log)
    assert len(writes) > 10
    parts = {k for k, _ in writes if parse_store_key(k)[1] == kinds.PURGE_JOURNAL}
    assert len(parts) > (2 if part_bytes < 1000 else 1)
    for cut in range(len(writes) + 1):
        crashed = MemoryStore()
        crashed.data = dict(stored)
        for key, value in writes[:cut]:
            if value is None:
                crashed.data.pop(key, None)
            else:
                crashed.data[key] = value
        recovered = Establishments(SETTINGS, crashed)
        recovered.recover()
        for obj in REGISTRY:
            recovered.apply(parse(obj))
        assert figures(recovered) == before, cut
        recovered.settle(F1)  # the next bundle of F1
        while not recovered.purge(F1, CLOCK, limit=4).done:  # and the next purge
            pass
        assert crashed.data == purged_store, cut
        again = Establishments(SETTINGS, crashed)
        again.recover()
        for obj in REGISTRY:
            again.apply(parse(obj))
        assert figures(again) == before, cut


def test_a_returning_patient_finds_what_ds14_reads_after_a_purge() -> None:
    """The patient's stay of 2021-10-20 (within lookback_days of an admission at the horizon)
    keeps its group, the 2021-01 stay included; a new stay then counts as returning, as
    without a purge."""
    old = [
        discharged("S1", patient="P", admitted=ts("2021-01-01"), discharged=ts("2021-01-03")),
        discharged("S2", patient="P", admitted=ts("2021-10-18"), discharged=ts("2021-10-20")),
    ]
    new = discharged("S3", patient="P", admitted=ts("2022-01-20"), discharged=ts("2022-01-22"))
    store = MemoryStore()
    collection = run(old, store)
    assert collection.purge(F1, CLOCK).total == 0
    collection.apply(parse(new))
    assert figures(collection) == figures(run([*old, new]))
    assert any(row.indicator == "DS1.4" for row in collection.rows())


def test_an_establishment_counted_under_other_settings_is_recomputed_before_its_purge() -> None:
    store = MemoryStore()
    run([discharged("S1", admitted=ts("2021-02-01"), discharged=ts("2021-02-03"))], store)
    other = Settings(retention_days=500, lookback_days=100, grace_days=0)
    restarted = Establishments(other, store)
    restarted.recover()
    assert F1 in restarted.outdated
    assert restarted.purge(F1, CLOCK).total == 0  # its units are not those of these settings
    restarted.recompute(F1)
    assert restarted.purge(F1, CLOCK).counts["stay"] == 1


def test_nothing_is_purged_within_the_default_ten_years() -> None:
    collection = Establishments(Settings())
    for obj in [
        *REGISTRY,
        discharged("S1", admitted=ts("2021-01-01"), discharged=ts("2021-01-02")),
    ]:
        collection.apply(parse(obj))
    collection.flush()
    purged = collection.purge(F1, datetime(2031, 12, 31, tzinfo=UTC))
    assert purged.total == 0 and collection.purge_horizon(F1) is None


def test_a_purge_in_chunks_stops_at_its_limit_and_finishes_later() -> None:
    events = [
        discharged(f"S{i}", patient=f"P{i}", admitted=ts("2021-02-01"), discharged=ts("2021-02-03"))
        for i in range(5)
    ]
    store = MemoryStore()
    collection = run(events, store)
    before = figures(collection)
    first = collection.purge(F1, CLOCK, limit=3)
    assert not first.done and 0 < first.counts["stay"] < 5
    while not (result := collection.purge(F1, CLOCK, limit=3)).done:
        pass
    assert result.done and kinds.STAY not in kinds_of(store)
    assert figures(collection) == before


# --- property: purging changes no figure, now or after any event accepted later -------------

# Around the cutoff (2021-08-08) and the horizon (2022-01-17); 2021-10-20 is within
# lookback_days of an admission at the horizon.
OLD_DAYS = ["2021-01-05", "2021-07-30", "2021-08-20", "2021-10-20", "2022-01-20"]
NEW_DAYS = [
    "2022-01-20",
    "2022-02-10",
    "2023-05-30",
]  # patients are shared: a purged patient comes back


def event(days: list[str], prefix: str) -> st.SearchStrategy[dict[str, Any]]:
    """Events dated within `days`, naming stays and documents of `prefix` (the events
    accepted after a purge name new ones: see processors.purge on purged ids)."""
    stays, docs = [f"{prefix}S{i}" for i in range(5)], [f"{prefix}D{i}" for i in range(6)]
    return any_event(days, stays, docs)


PROPERTY = hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(
    before=st.lists(event(OLD_DAYS, "a"), min_size=1, max_size=30),
    after=st.lists(event(NEW_DAYS, "b"), max_size=20),
    limit=st.sampled_from([1, 10_000]),
)
def test_purging_then_any_accepted_event_gives_the_figures_of_no_purge(
    before: list[dict[str, Any]], after: list[dict[str, Any]], limit: int
) -> None:
    later = [event_of(o) for o in after]
    for record in later:  # every later event is accepted at the clock
        assert time_bounds_error(record, CLOCK, SETTINGS) is None
    reference = run(before + after)  # never purged
    store = MemoryStore()
    collection = run(before, store)
    for finess in (F1, F2):
        while not collection.purge(finess, CLOCK, limit).done:
            pass
    assert figures(collection) == figures(run(before))
    restarted = Establishments(SETTINGS, store, cache_entries=5)  # a restart after the purge
    restarted.recover()
    for obj in REGISTRY:
        restarted.apply(parse(obj))
    for record in later:
        assert refused_after_purge(record, restarted.purge_horizon(record.finess)) is None
        restarted.apply(record)
        restarted.flush()
    assert figures(restarted) == figures(reference)
    for est in restarted.all():  # and what is left derives from the facts left
        rows = est.rows()
        est.recompute()
        assert est.rows() == rows
