"""The state cache: what a flush writes, and what it forgets beyond capacity (oldest first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processors.aggregates import EventDay, RateKey
from processors.facts import DocumentFacts, RecipientFacts, StayFacts
from processors.fingerprint import StateMeta
from processors.settings import Settings
from processors.state import (
    ARCHIVE,
    CODECS,
    CORRESPONDENT_UNIT,
    DOCS_OF_PATIENT,
    DOCS_OF_STAY,
    DOCUMENT,
    META,
    PURGE_HORIZON,
    RECIPIENT,
    REPLACED_BY,
    REPORT_UNIT,
    STAY,
    STAY_UNIT,
    STAYS_OF_PATIENT,
    EstablishmentState,
    StateCache,
    parse_store_key,
)
from processors.store import MemoryStore

_CONTRIBUTION = {RateKey("den", "DS1.1", "2023-01"): 1, EventDay("2023-01-12"): 2}
_SAMPLES: dict[str, Any] = {
    STAY: StayFacts("S1", citizen_messages={"m1": datetime.fromisoformat("2023-01-12T10:00Z")}),
    DOCUMENT: DocumentFacts("D1", deleted_at=datetime.fromisoformat("2023-01-12T11:00+01:00")),
    RECIPIENT: RecipientFacts("R1"),
    DOCS_OF_STAY: frozenset({"D2", "D1"}),
    DOCS_OF_PATIENT: frozenset({"D1"}),
    STAYS_OF_PATIENT: frozenset({"S1", "S2"}),
    REPLACED_BY: frozenset({"D3"}),
    STAY_UNIT: _CONTRIBUTION,
    REPORT_UNIT: _CONTRIBUTION,
    CORRESPONDENT_UNIT: _CONTRIBUTION,
    ARCHIVE: _CONTRIBUTION,
    PURGE_HORIZON: datetime.fromisoformat("2023-01-12T11:00+01:00"),
    META: StateMeta.current(Settings()),
}


def test_a_flush_writes_every_kind_with_its_codecs_encoder() -> None:
    """StateCache.flush writes each kind's entries with CODECS' encoder, keyed by store_key."""
    assert set(_SAMPLES) == set(CODECS)
    store = MemoryStore()
    cache = StateCache(store)
    state = EstablishmentState("F1", cache)
    for kind, value in _SAMPLES.items():
        state.put(kind, "x", value)
    assert cache.flush() == len(CODECS)
    written = {parse_store_key(key)[1]: raw for key, raw in store.data.items()}
    assert written == {kind: CODECS[kind][0](value) for kind, value in _SAMPLES.items()}


def test_a_flush_forgets_the_oldest_entries_first_and_keeps_within_capacity() -> None:
    cache = StateCache(MemoryStore(), capacity=64)
    state = EstablishmentState("F1", cache)
    for n in range(100):
        state.add_id(DOCS_OF_STAY, f"S{n}", f"D{n}")  # read (absent), then put
    state.add_id(DOCS_OF_STAY, "S0", "D0b")  # put again: it keeps its place, the oldest
    assert cache.flush() == 100
    kept = list(cache.entries)
    assert len(kept) <= 64
    # The newest entries, in their order: none of the oldest kept past a newer one.
    assert kept == [("F1", DOCS_OF_STAY, f"S{n}") for n in range(100 - len(kept), 100)]
    # Forgotten entries are read back from the store as they were written.
    assert state.ids(DOCS_OF_STAY, "S0") == frozenset({"D0", "D0b"})
    assert state.ids(DOCS_OF_STAY, "S99") == frozenset({"D99"})


def test_entries_put_after_a_flush_are_never_forgotten_before_they_are_written() -> None:
    cache = StateCache(MemoryStore(), capacity=8)
    state = EstablishmentState("F1", cache)
    for round_ in range(20):
        for n in range(5):
            state.add_id(DOCS_OF_STAY, f"S{round_}-{n}", "D")
        cache.flush()
        assert len(cache.entries) <= 8
    cache.forget()
    for round_ in range(20):
        for n in range(5):
            assert state.ids(DOCS_OF_STAY, f"S{round_}-{n}") == frozenset({"D"})
