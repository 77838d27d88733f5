"""A store written by the previous release (no meta entry: state version 0), read by this
one: every establishment is recomputed from its facts, to `sunes report`'s figures and the
batch's units, unit for unit. The store was made by that release's code:
tests/fixtures/state/make_previous_release.py."""

from __future__ import annotations

from pathlib import Path

import orjson

from processors import state as kinds
from processors.collection import Establishments
from processors.report import compute_report
from processors.settings import Settings
from processors.state import parse_store_key
from processors.store import MemoryStore
from topics.validation import parse_record

FIXTURE = Path(__file__).parents[1] / "fixtures" / "state"


def previous_release() -> tuple[list[tuple[str, bytes, bytes]], dict[bytes, bytes]]:
    """The events (topic, key, value) and the store the previous release wrote from them."""
    events = []
    for line in (FIXTURE / "events.ndjson").read_bytes().splitlines():
        item = orjson.loads(line)
        events.append((item["topic"], item["key"].encode(), orjson.dumps(item["value"])))
    store = {}
    for line in (FIXTURE / "store.jsonl").read_bytes().splitlines():
        item = orjson.loads(line)
        store[item["key"].encode()] = item["value"].encode()
    return events, store


def batch(
    events: list[tuple[str, bytes, bytes]], store: MemoryStore | None = None
) -> Establishments:
    collection = Establishments(Settings(), store)
    for _, _, value in events:
        collection.apply(parse_record(value))
    return collection


def test_the_fixture_is_a_store_of_the_previous_release() -> None:
    _, data = previous_release()
    stored = {parse_store_key(key)[1] for key in data}
    assert kinds.META not in stored
    assert stored >= kinds.UNIT_KINDS | {kinds.STAY, kinds.DOCUMENT, kinds.RECIPIENT}


def test_the_previous_release_store_gives_the_batch_figures_and_units() -> None:
    events, data = previous_release()
    store = MemoryStore()
    store.data = dict(data)
    collection = Establishments(Settings(), store, 0)
    collection.recover()
    registry = [value for topic, _, value in events if topic == "sunes.establishments.v1"]
    for value in registry:
        collection.apply(parse_record(value))
    finess = {key.decode() for _, key, _ in events}
    assert collection.outdated == finess
    units = sum(collection.recompute(f) for f in sorted(finess))
    assert units > 0 and collection.outdated == set()

    expected = compute_report([parse_record(value) for _, _, value in events])
    assert collection.rows() == expected
    fresh = batch(events)
    for row in expected:
        assert collection.units(row.finess, row.indicator, row.period) == fresh.units(
            row.finess, row.indicator, row.period
        )
    again = Establishments(Settings(), store, 0)  # a restart: nothing left to recompute
    again.recover()
    assert again.outdated == set()
    fresh_store = MemoryStore()
    batch(events, fresh_store).flush()
    assert store.data == fresh_store.data  # the same entries as this release writes
