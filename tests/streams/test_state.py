"""The worker's store: table writes, tombstones for facts that leave, rebuild by partition."""

from __future__ import annotations

import orjson

from processors.settings import Settings
from streams.state import EstablishmentStore, parse_table_key, partition_of, table_key
from tests.builders import F1, F2, discharged, establishment, parse
from topics.records import EstablishmentRecord, Event


def event(obj: dict[str, object]) -> Event:
    record = parse(obj)  # type: ignore[arg-type]
    assert isinstance(record, Event)
    return record


def registry(obj: dict[str, object]) -> EstablishmentRecord:
    record = parse(obj)  # type: ignore[arg-type]
    assert isinstance(record, EstablishmentRecord)
    return record


def test_table_keys_round_trip() -> None:
    key = table_key(F1, ("doc", "a|b"))
    assert parse_table_key(key) == (F1, ("doc", "a|b"))


def test_partition_of_matches_kafkas_default_partitioner() -> None:
    # Java's murmur2 of b"750000001" modulo 6, as Kafka clients compute it.
    from aiokafka.partitioner import DefaultPartitioner

    assert partition_of(F1, 6) == DefaultPartitioner()(F1.encode(), list(range(6)), list(range(6)))


def test_apply_returns_writes_and_tombstones_when_periods_close() -> None:
    store = EstablishmentStore(Settings(), partitions=4, close_after_days=60)
    store.set_registry(registry(establishment()))
    writes = store.apply([event(discharged("OLD", admitted="2021-01-01T10:00:00+01:00",
                                          discharged="2021-01-02T10:00:00+01:00"))])  # fmt: skip
    assert [k for k, _ in writes] == [table_key(F1, ("stay", "OLD"))]
    assert orjson.loads(writes[0][1] or b"")["stay_id"] == "OLD"
    # Two years later: January 2021 closes and OLD leaves the state.
    writes = dict(store.apply([event(discharged("NEW", patient="P2"))]))
    assert writes[table_key(F1, ("stay", "OLD"))] is None
    assert writes[table_key(F1, ("period", "2021-01"))] is not None
    rows = {(r.indicator, r.period): r.denominator for r in store.rows()}
    assert rows[("DS1.1", "2021-01")] == 1  # its figures stay


def test_rebuild_keeps_only_owned_partitions() -> None:
    store = EstablishmentStore(Settings(), partitions=4)
    items = []
    for finess in (F1, F2):
        for key, value in store.apply([event(discharged("S1", finess=finess))]):
            assert value is not None
            items.append((key, value))
    owned = {partition_of(F1, 4)}
    store.rebuild(items, owned)
    expected = {F1} if partition_of(F2, 4) not in owned else {F1, F2}
    assert set(store.establishments) == expected


def test_retain_forgets_the_establishments_of_lost_partitions() -> None:
    store = EstablishmentStore(Settings(), partitions=4)
    store.apply([event(discharged("S1", finess=F1)), event(discharged("S1", finess=F2))])
    store.retain({partition_of(F1, 4)})
    assert F1 in store.establishments
    assert (F2 in store.establishments) == (partition_of(F2, 4) == partition_of(F1, 4))


def test_bundles_are_split_under_the_size_limit() -> None:
    from streams.bundles import decode_bundle, encode_bundle
    from streams.ingest import chunks

    events = [orjson.dumps({"n": i, "pad": "x" * 100}) for i in range(50)]
    slices = chunks(events, 1000)
    assert [e for a, b in slices for e in events[a:b]] == events  # all, in order, once
    for a, b in slices:
        assert sum(len(e) + 1 for e in events[a:b]) <= 1000 or b - a == 1
        bundle = encode_bundle(events[a:b], [1.0] * (b - a))
        assert [orjson.dumps(obj) for obj, _ in decode_bundle(bundle)] == events[a:b]
    assert chunks([b"x" * 5000], 1000) == [(0, 1)]  # an event alone may exceed the limit
