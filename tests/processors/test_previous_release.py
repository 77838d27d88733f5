"""A store written by the previous release (no meta entry: state version 0), read by this
one: every establishment is recomputed from its facts, to `sunes report`'s figures and the
batch's units, unit for unit. And a store of an older release still, written before the units
were explained: the same figures, and the units of the facts it kept. The stores were made
by those releases' code: tests/fixtures/state/make_previous_release.py."""

from __future__ import annotations

from pathlib import Path

import orjson

from processors import state as kinds
from processors.collection import Establishments
from processors.report import compute_report
from processors.rules import qualifying_pro_message
from processors.settings import Settings
from processors.state import parse_store_key
from processors.store import MemoryStore
from topics.names import ESTABLISHMENTS
from topics.records import DocumentDepositFailed, MssSent
from topics.validation import parse_record

FIXTURE = Path(__file__).parents[1] / "fixtures" / "state"


def previous_release(
    name: str = "store.jsonl",
) -> tuple[list[tuple[str, bytes, bytes]], dict[bytes, bytes]]:
    """The events (topic, key, value) and the store the previous release wrote from them."""
    events = []
    for line in (FIXTURE / "events.ndjson").read_bytes().splitlines():
        item = orjson.loads(line)
        events.append((item["topic"], item["key"].encode(), orjson.dumps(item["value"])))
    store = {}
    for line in (FIXTURE / name).read_bytes().splitlines():
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
    registry = [value for topic, _, value in events if topic == ESTABLISHMENTS]
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


def kept_before_units(events: list[tuple[str, bytes, bytes]]) -> list[tuple[str, bytes, bytes]]:
    """The events whose facts a store written before the units were explained kept: not the
    refused deposits, nor the MSS Pro messages without a qualifying attachment."""
    kept = []
    for message in events:
        record = parse_record(message[2])
        refused = isinstance(record, DocumentDepositFailed)
        unqualified = (
            isinstance(record, MssSent)
            and record.channel == "pro"
            and not qualifying_pro_message(record)
        )
        if not (refused or unqualified):
            kept.append(message)
    return kept


def test_a_store_written_before_the_units_gives_the_figures_and_the_units_of_its_facts() -> None:
    events, data = previous_release("store-before-units.jsonl")
    kept = kept_before_units(events)
    assert len(kept) < len(events)  # the fixture has facts that store lacks
    store = MemoryStore()
    store.data = dict(data)
    collection = Establishments(Settings(), store, 0)
    collection.recover()
    for topic, _, value in events:
        if topic == ESTABLISHMENTS:  # the registry topic, read again at every start
            collection.apply(parse_record(value))
    assert collection.outdated == {key.decode() for _, key, _ in events}
    for finess in sorted(collection.outdated):
        collection.recompute(finess)

    expected = compute_report([parse_record(value) for _, _, value in events])
    assert collection.rows() == expected  # the lost facts never changed a figure
    fresh = batch(kept)
    for row in expected:
        assert collection.units(row.finess, row.indicator, row.period) == fresh.units(
            row.finess, row.indicator, row.period
        )
    fresh_store = MemoryStore()
    batch(kept, fresh_store).flush()
    assert store.data == fresh_store.data
