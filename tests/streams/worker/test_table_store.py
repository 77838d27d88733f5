"""The worker's table store reads one prefix by seeking in each active RocksDB (real
rocksdict databases, as Faust's rocksdb:// store opens them), else by filtering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict

from processors.store import MemoryStore
from streams.worker.table_store import TableStore

ENTRIES = {
    b"750000001|s|S1": b"a",
    b"750000001|s|S2": b"b",
    b"750000001|d|D1": b"c",
    b"750000002|s|S1": b"d",
    b"75000000|s|X": b"e",  # a shorter FINESS-like prefix sorts before
}


class FaustRocksStore:
    """What TableStore reads of Faust's rocksdb Store: its active partitions' databases."""

    use_rocksdict = True

    def __init__(self, dbs: list[Rdict]) -> None:
        self.dbs = dbs

    def _dbs_for_actives(self) -> Iterator[Rdict]:
        return iter(self.dbs)


class Table:
    def __init__(self, data: Any, items: dict[bytes, bytes]) -> None:
        self.data = data
        self._items = items

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._items.items())


def test_a_prefix_is_read_by_seeking_in_every_partition(tmp_path: Path) -> None:
    dbs = [Rdict(str(tmp_path / f"p{p}"), options=Options(raw_mode=True)) for p in (0, 1)]
    for number, (key, value) in enumerate(ENTRIES.items()):
        dbs[number % 2][key] = value
    store = TableStore(Table(FaustRocksStore(dbs), {}))  # items() would give nothing
    try:
        assert dict(store.items(b"750000001|s|")) == {
            b"750000001|s|S1": b"a",
            b"750000001|s|S2": b"b",
        }
        assert dict(store.items(b"750000002|")) == {b"750000002|s|S1": b"d"}
        assert list(store.items(b"750000009|")) == []
    finally:
        for db in dbs:
            db.close()


def test_without_rocksdb_the_table_items_are_filtered() -> None:
    store = TableStore(Table(object(), ENTRIES))
    assert dict(store.items(b"750000001|s|")) == {
        b"750000001|s|S1": b"a",
        b"750000001|s|S2": b"b",
    }
    assert dict(store.items()) == ENTRIES


def test_the_memory_store_filters_too() -> None:
    memory = MemoryStore()
    for key, value in ENTRIES.items():
        memory.set(key, value)
    assert sorted(memory.items(b"750000001|")) == sorted(
        (k, v) for k, v in ENTRIES.items() if k.startswith(b"750000001|")
    )
