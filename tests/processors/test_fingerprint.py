"""Counting settings and the state version kept with the state: a store counted under other
settings, or written before the meta entry existed, is recomputed to a fresh run's figures."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from processors import state as kinds
from processors.codec import STATE_VERSION, decode_contribution
from processors.collection import Establishments
from processors.fingerprint import StateMeta, counting_settings
from processors.settings import Settings
from processors.state import parse_store_key
from processors.store import MemoryStore
from tests.builders import F1, discharged, parse
from tests.processors.test_properties import REGISTRY, SLOW, event_sets

OTHER = Settings(grace_days=10, lookback_days=200)
EXCLUDING = Settings(
    grace_days=0,
    stay_scope=frozenset({"hospitalisation_complete"}),
    exclude_dmp_opposition=True,
    exclude_deceased=True,
    exclude_unqualified_ins=True,
)


def test_the_fingerprint_holds_what_shapes_contributions_only() -> None:
    base = StateMeta.current(Settings())
    assert base.version == STATE_VERSION
    assert set(counting_settings(Settings())) == {
        "grace_days", "lookback_days", "stay_scope", "exclude_dmp_opposition",
        "exclude_deceased", "exclude_unqualified_ins",
    }  # fmt: skip
    # acceptance and the calendar's windows change no contribution
    assert StateMeta.current(Settings(retention_days=4000, future_skew_hours=1)) == base
    assert StateMeta.current(Settings(calendar_version="2023-v1")) == base
    assert StateMeta.current(OTHER) != base
    assert StateMeta.current(OTHER).differences(base) == [
        "grace_days 30 → 10", "lookback_days 365 → 200",
    ]  # fmt: skip
    assert base.differences(None) == ["state version 0 (no meta entry)"]
    assert StateMeta.current(Settings()).differences(StateMeta(0, base.settings)) == [
        f"state version 0 → {STATE_VERSION}"
    ]


def run(settings: Settings, objects: list[dict[str, Any]], store: MemoryStore) -> Establishments:
    collection = Establishments(settings, store, 0)
    for obj in REGISTRY + objects:
        collection.apply(parse(obj))
    collection.flush()
    return collection


def restarted(settings: Settings, store: MemoryStore) -> Establishments:
    """A worker started again on the same store with `settings`: recovery, then the outdated
    establishments recomputed one by one."""
    collection = Establishments(settings, store, 0)
    collection.recover()
    for obj in REGISTRY:
        collection.apply(parse(obj))
    for finess in sorted(collection.outdated):
        collection.recompute(finess)
    assert collection.outdated == set()
    return collection


def units_of(store: MemoryStore) -> dict[tuple[str, str, str], Any]:
    """Every stored unit entry, decoded."""
    units = {}
    for key, raw in store.items():
        finess, kind, ident = parse_store_key(key)
        if kind in kinds.UNIT_KINDS:
            units[(finess, kind, ident)] = decode_contribution(raw)
    return units


def assert_same(collection: Establishments, store: MemoryStore, fresh: Establishments) -> None:
    assert collection.rows() == fresh.rows()
    assert units_of(store) == units_of(fresh.store)  # type: ignore[arg-type]
    for row in fresh.rows():
        assert collection.units(row.finess, row.indicator, row.period) == fresh.units(
            row.finess, row.indicator, row.period
        )


@SLOW
@given(events=event_sets, other=st.sampled_from([OTHER, EXCLUDING]))
def test_a_store_recomputed_under_other_settings_equals_a_fresh_run(
    events: list[dict[str, Any]], other: Settings
) -> None:
    store = MemoryStore()
    run(Settings(), events, store)
    changed = restarted(other, store)
    assert_same(changed, store, run(other, events, MemoryStore()))
    back = restarted(Settings(), store)  # and back to the defaults
    assert_same(back, store, run(Settings(), events, MemoryStore()))


@SLOW
@given(events=event_sets)
def test_a_store_without_meta_entries_is_recomputed_as_version_0(
    events: list[dict[str, Any]],
) -> None:
    """A store of the previous release: no meta entry, and no unit entries either (a store
    older still): every establishment is outdated and recomputed to a fresh run's figures."""
    store = MemoryStore()
    run(Settings(), events, store)
    for key in list(store.data):
        if parse_store_key(key)[1] in kinds.UNIT_KINDS | {kinds.META}:
            del store.data[key]
    collection = Establishments(Settings(), store, 0)
    collection.recover()
    stored = {parse_store_key(key)[0] for key in store.data}
    assert collection.outdated == stored
    assert_same(restarted(Settings(), store), store, run(Settings(), events, MemoryStore()))


def test_matching_settings_recompute_nothing_and_new_events_keep_an_outdated_mark() -> None:
    store = MemoryStore()
    run(Settings(), [discharged("S1", finess=F1)], store)
    same = Establishments(Settings(), store, 0)
    same.recover()
    assert same.outdated == set()
    other = Establishments(OTHER, store, 0)
    other.recover()
    assert other.outdated == {F1}
    # an event before the recomputation: its units are counted under OTHER, the rest not yet;
    # the meta entry still says "defaults", so a restart finds the establishment outdated
    other.apply(parse(discharged("S2", finess=F1)))
    other.flush()
    assert other.get(F1).meta() == StateMeta.current(Settings())
    other.recompute(F1)
    assert other.get(F1).meta() == StateMeta.current(OTHER)
    again = Establishments(OTHER, store, 0)
    again.recover()
    assert again.outdated == set()


@SLOW
@given(events=event_sets, cut=st.integers(0, 40), step=st.sampled_from([1, 3]))
def test_events_applied_between_the_steps_of_a_recomputation_change_nothing(
    events: list[dict[str, Any]], cut: int, step: int
) -> None:
    """The worker recomputes `step` units at a time, and applies bundles in between: the
    result is still a fresh run's under the new settings."""
    store = MemoryStore()
    run(Settings(), events[:cut], store)
    collection = Establishments(OTHER, store, 0)
    collection.recover()
    for obj in REGISTRY:
        collection.apply(parse(obj))
    later = [parse(obj) for obj in events[cut:]]
    for finess in sorted(collection.outdated):
        steps = collection.recomputation(finess, step)
        for _ in steps:
            if later:
                collection.apply(later.pop(0))
                collection.flush()
    for record in later:
        collection.apply(record)
    collection.flush()
    assert collection.outdated == set()
    assert_same(collection, store, run(OTHER, events, MemoryStore()))
